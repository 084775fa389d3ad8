"""Data sets as tensors: scikit-learn's digits, Fashion-MNIST and CIFAR-10/100 from a folder."""

from optuna_devnas.data._fashion import DEBIAN_FOLDER, load_fashion_mnist
from optuna_devnas.data._tensors import DATA_SETS, TensorData, load_cifar, load_data, load_digits

__all__ = [
    "DATA_SETS",
    "DEBIAN_FOLDER",
    "TensorData",
    "load_cifar",
    "load_data",
    "load_digits",
    "load_fashion_mnist",
]
