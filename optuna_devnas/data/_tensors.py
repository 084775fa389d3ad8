"""Data sets as tensors in memory: digits (shipped with scikit-learn), CIFAR from a folder.

Small data sets fit in memory, so training loops index tensors directly instead of going
through a ``DataLoader`` (no worker processes, exact reproducibility with a seed). Nothing is
downloaded unless a caller passes ``download=True`` (torchvision's download, for users with
internet access): machines without it get a clear error naming the missing folder.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
from pathlib import Path

import torch
import torch.nn.functional as F

from optuna_devnas._errors import DataNotFoundError


@dataclass(frozen=True)
class TensorData:
    """A classification data set split into training and validation tensors.

    ``train_x`` and ``val_x`` are float tensors of shape ``(n, channels, height, width)``,
    ``train_y`` and ``val_y`` int64 tensors of shape ``(n,)``.
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        channels, height, width = self.train_x.shape[1:]
        return int(channels), int(height), int(width)


def resize(images: torch.Tensor, size: int | None) -> torch.Tensor:
    """Images resized to ``size x size`` (bilinear); unchanged when ``size`` is None."""
    if size is None or images.shape[-1] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)


def load_digits(
    *, seed: int = 0, val_fraction: float = 0.2, size: int | None = None, channels: int = 1
) -> TensorData:
    """scikit-learn's 1,797 handwritten digits (8x8, 10 classes) as a seeded split.

    Args:
        seed:
            Seed of the stratified train/validation split. Default 0.
        val_fraction:
            Share of images held out for validation. Default 0.2.
        size:
            Resize images to ``size x size`` (bilinear), e.g. 32 to mimic CIFAR. Default: 8x8.
        channels:
            Repeat the grey channel this many times (3 to feed RGB networks). Default 1.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"Got val_fraction={val_fraction!r}, but expected a value in (0, 1).")
    if size is not None and size < 1:
        raise ValueError(f"Got size={size!r}, but expected a positive integer or None.")
    if channels < 1:
        raise ValueError(f"Got channels={channels!r}, but expected a positive integer.")
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = sklearn_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (n, 1, 8, 8)
    images = (images - 0.5) / 0.5
    labels = torch.tensor(bunch.target, dtype=torch.int64)
    train_idx, val_idx = train_test_split(
        range(len(labels)), test_size=val_fraction, random_state=seed, stratify=bunch.target
    )
    images = resize(images, size).repeat(1, channels, 1, 1)
    train_index, val_index = torch.tensor(train_idx), torch.tensor(val_idx)
    return TensorData(
        name="digits",
        train_x=images[train_index],
        train_y=labels[train_index],
        val_x=images[val_index],
        val_y=labels[val_index],
        num_classes=10,
    )


_CIFAR_MEAN = {"cifar10": (0.4914, 0.4822, 0.4465), "cifar100": (0.5071, 0.4865, 0.4409)}
_CIFAR_STD = {"cifar10": (0.2470, 0.2435, 0.2616), "cifar100": (0.2673, 0.2564, 0.2762)}


def load_cifar(
    root: str | os.PathLike[str],
    *,
    name: str = "cifar10",
    limit: int | None = None,
    download: bool = False,
) -> TensorData:
    """CIFAR-10 or CIFAR-100 from a local folder (the test split serves as validation).

    The folder is the one torchvision uses: it contains ``cifar-10-batches-py`` (or
    ``cifar-100-python``). Nothing is downloaded unless ``download=True``; a missing or
    incomplete folder raises :class:`~optuna_devnas.DataNotFoundError` naming it.

    Args:
        root:
            The folder holding the extracted data set.
        name:
            ``"cifar10"`` or ``"cifar100"``. Default ``"cifar10"``.
        limit:
            Keep only the first ``limit`` images of each split (quick runs). Default: all.
        download:
            Let torchvision download and extract the data set into ``root`` when it is
            missing (needs internet access). Default ``False``.
    """
    if name not in _CIFAR_MEAN:
        raise ValueError(f"Got name={name!r}, but expected 'cifar10' or 'cifar100'.")
    if limit is not None and limit < 1:
        raise ValueError(f"Got limit={limit!r}, but expected a positive integer or None.")
    import torchvision

    folder = Path(root).expanduser()
    sub = "cifar-10-batches-py" if name == "cifar10" else "cifar-100-python"
    cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
    if download and not (folder / sub).is_dir():
        for train in (True, False):
            cls(str(folder), train=train, download=True)
    if not (folder / sub).is_dir():
        raise DataNotFoundError(
            f"{name} not found: the folder {str(folder / sub)!r} does not exist. Extract the "
            f"python version of {name} into {str(folder)!r}, or pass download=True with "
            "internet access."
        )
    try:
        train = cls(str(folder), train=True, download=False)
        test = cls(str(folder), train=False, download=False)
    except RuntimeError as error:  # torchvision's integrity check failed
        raise DataNotFoundError(
            f"{name} in {str(folder / sub)!r} is incomplete or corrupted ({error})."
        ) from error
    mean = torch.tensor(_CIFAR_MEAN[name]).view(1, 3, 1, 1)
    std = torch.tensor(_CIFAR_STD[name]).view(1, 3, 1, 1)

    def to_tensors(split: object) -> tuple[torch.Tensor, torch.Tensor]:
        data = split.data[:limit]  # type: ignore[attr-defined]  # (n, 32, 32, 3) uint8
        targets = split.targets[:limit]  # type: ignore[attr-defined]
        images = torch.from_numpy(data).permute(0, 3, 1, 2).float() / 255.0
        return (images - mean) / std, torch.tensor(targets, dtype=torch.int64)

    train_x, train_y = to_tensors(train)
    val_x, val_y = to_tensors(test)
    return TensorData(name, train_x, train_y, val_x, val_y, 10 if name == "cifar10" else 100)


def load_data(
    name: str,
    *,
    seed: int = 0,
    root: str | None = None,
    size: int | None = None,
    download: bool = False,
) -> TensorData:
    """A data set by name.

    ``"digits"``, ``"digits32"`` (3x32x32), ``"fashion_mnist"``, ``"fashion_mnist32"``
    (3x32x32; both from ``root`` or Debian's folder), ``"cifar10"`` or ``"cifar100"`` (CIFAR
    needs ``root``, the local folder). ``download=True`` lets torchvision fetch a missing
    Fashion-MNIST or CIFAR (internet access needed; off by default).
    """
    if name == "digits":
        return load_digits(seed=seed, size=size)
    if name == "digits32":
        return load_digits(seed=seed, size=32, channels=3)
    if name in ("fashion_mnist", "fashion_mnist32"):
        from optuna_devnas.data._fashion import load_fashion_mnist

        if name == "fashion_mnist32":
            return load_fashion_mnist(root, seed=seed, size=32, channels=3, download=download)
        return load_fashion_mnist(root, seed=seed, size=size, download=download)
    if name in _CIFAR_MEAN:
        if root is None:
            raise DataNotFoundError(f"{name} needs a local folder: pass root=<folder>.")
        return load_cifar(root, name=name, download=download)
    raise ValueError(f"Got data set {name!r}, but expected one of {', '.join(DATA_SETS)}.")


DATA_SETS = ("digits", "digits32", "fashion_mnist", "fashion_mnist32", "cifar10", "cifar100")
"""The names :func:`load_data` accepts."""
