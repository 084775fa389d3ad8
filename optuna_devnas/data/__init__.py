"""Data sets: scikit-learn's digits and CIFAR-10/100 from a local folder, as tensors."""

from optuna_devnas.data._tensors import TensorData, load_cifar, load_data, load_digits

__all__ = ["TensorData", "load_cifar", "load_data", "load_digits"]
