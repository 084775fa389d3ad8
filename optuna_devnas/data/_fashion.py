"""Fashion-MNIST from a local folder, by default the one Debian's ``dataset-fashion-mnist`` fills.

Fashion-MNIST (60,000 training and 10,000 test images, 28x28 grey, 10 classes) is hard enough to
tell networks apart where digits no longer does, and small enough for CPU runs with the subset
and split options below. The official test set is kept for reporting: by default the
validation images are a fixed, seeded, stratified split of the training set, so that choices
tuned on validation never see the reported images.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
import tempfile
from typing import Literal

import torch

from optuna_devnas._errors import DataNotFoundError
from optuna_devnas.data._tensors import TensorData, resize

DEBIAN_FOLDER = "/usr/share/datasets/fashion-mnist"
"""Where Debian's package ``dataset-fashion-mnist`` puts the four gzipped IDX files."""

_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_SIZES = {True: 60_000, False: 10_000}
# Per-pixel mean and standard deviation of the 60,000 training images (scaled to [0, 1]).
_MEAN, _STD = 0.2860, 0.3530


def _locate(folder: Path, name: str) -> Path | None:
    for candidate in (folder, folder / "FashionMNIST" / "raw"):
        for path in (candidate / name, candidate / f"{name}.gz"):
            if path.is_file():
                return path
    return None


def _read(folder: Path) -> dict[bool, tuple[torch.Tensor, torch.Tensor]]:
    """Both splits (keyed by ``train``) through torchvision's ``FashionMNIST`` reader.

    torchvision reads only uncompressed files laid out as ``FashionMNIST/raw/``, while Debian
    ships them gzipped in one flat folder: the files are decompressed into that layout in a
    temporary folder (a second or so) rather than parsed here by hand.
    """
    import torchvision

    names = [*_FILES[True], *_FILES[False]]
    paths = [_locate(folder, name) for name in names]
    missing = [name for name, path in zip(names, paths) if path is None]
    if missing:
        raise DataNotFoundError(
            f"Fashion-MNIST not found in {str(folder)!r}: {', '.join(missing)} (or .gz) "
            "missing. Install Debian's package with `apt-get install dataset-fashion-mnist` "
            f"(it fills {DEBIAN_FOLDER}), pass root=<folder with the four IDX files>, or "
            "download=True with internet access."
        )
    splits = {}
    try:
        with tempfile.TemporaryDirectory(prefix="devnas-fashion-") as tmp:
            raw = Path(tmp) / "FashionMNIST" / "raw"
            raw.mkdir(parents=True)
            for name, path in zip(names, paths):
                assert path is not None
                data = path.read_bytes()
                (raw / name).write_bytes(gzip.decompress(data) if path.suffix == ".gz" else data)
            for train in (True, False):
                split = torchvision.datasets.FashionMNIST(tmp, train=train, download=False)
                splits[train] = (split.data, split.targets)
    except (OSError, EOFError, AssertionError, TypeError, ValueError, RuntimeError) as error:
        raise DataNotFoundError(
            f"Fashion-MNIST in {str(folder)!r} is incomplete or corrupted ({error!r})."
        ) from error
    for train, (images, labels) in splits.items():
        if images.shape != (_SIZES[train], 28, 28) or labels.shape != (_SIZES[train],):
            raise DataNotFoundError(
                f"Fashion-MNIST in {str(folder)!r} is incomplete or corrupted: expected "
                f"{_SIZES[train]} {'training' if train else 'test'} images of 28x28 and as many "
                f"labels, found images of shape {tuple(images.shape)} and {labels.shape[0]} "
                "labels."
            )
    return splits


def _stratified(labels: torch.Tensor, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of a seeded stratified sample of ``size`` labels, and of the rest."""
    from sklearn.model_selection import train_test_split

    if size >= len(labels):
        return torch.arange(len(labels)), torch.arange(0)
    rest, chosen = train_test_split(
        range(len(labels)), test_size=size, random_state=seed, stratify=labels.numpy()
    )
    return torch.tensor(chosen), torch.tensor(rest)


Split = tuple[torch.Tensor, torch.Tensor]


def _split(
    splits: dict[bool, Split],
    holdout: str,
    train_size: int | None,
    val_size: int,
    seed: int,
) -> tuple[Split, Split]:
    """The training and validation images and labels, as :func:`load_fashion_mnist` says."""
    images, labels = splits[True]
    if holdout == "split":
        val_index, train_index = _stratified(labels, val_size, seed)
        val = images[val_index], labels[val_index]
        images, labels = images[train_index], labels[train_index]
    else:
        test_images, test_labels = splits[False]
        val_index, _ = _stratified(test_labels, val_size, seed)
        val = test_images[val_index], test_labels[val_index]
    if train_size is not None:
        keep, _ = _stratified(labels, train_size, seed)
        images, labels = images[keep], labels[keep]
    return (images, labels), val


def _check_arguments(
    train_size: int | None, val_size: int, holdout: str, size: int | None, channels: int
) -> None:
    if train_size is not None and (isinstance(train_size, bool) or train_size < 1):
        raise ValueError(f"Got train_size={train_size!r}, but expected a positive integer.")
    if isinstance(val_size, bool) or not isinstance(val_size, int) or val_size < 1:
        raise ValueError(f"Got val_size={val_size!r}, but expected a positive integer.")
    if holdout not in ("split", "test"):
        raise ValueError(f"Got holdout={holdout!r}, but expected 'split' or 'test'.")
    if holdout == "split" and val_size >= _SIZES[True]:
        raise ValueError(
            f"Got val_size={val_size!r}, but a split of the {_SIZES[True]} training images "
            "must leave some for training."
        )
    if size is not None and size < 1:
        raise ValueError(f"Got size={size!r}, but expected a positive integer or None.")
    if channels < 1:
        raise ValueError(f"Got channels={channels!r}, but expected a positive integer.")


def load_fashion_mnist(
    root: str | os.PathLike[str] | None = None,
    *,
    seed: int = 0,
    train_size: int | None = None,
    val_size: int = 10_000,
    holdout: Literal["split", "test"] = "split",
    size: int | None = None,
    channels: int = 1,
    download: bool = False,
) -> TensorData:
    """Fashion-MNIST as a seeded training/validation split.

    Example:

        .. code-block:: python

            from optuna_devnas.data import load_fashion_mnist

            data = load_fashion_mnist(train_size=5000, val_size=1000)  # a quick CPU run

    Args:
        root:
            Folder holding the four IDX files, gzipped or not, flat (Debian's layout) or under
            ``FashionMNIST/raw`` (torchvision's). Default: Debian's
            ``/usr/share/datasets/fashion-mnist`` (``apt-get install dataset-fashion-mnist``).
        seed:
            Seed of the stratified validation split and of the training subset. Default 0.
        train_size:
            Keep a stratified subset of this many training images (CPU runs). Default: all
            that are not held out.
        val_size:
            Number of validation images: held out of the 60,000 training images
            (``holdout="split"``), or a stratified subset of the 10,000 test images
            (``holdout="test"``). Default 10,000.
        holdout:
            ``"split"`` validates on images held out of the training set, so that tuning never
            sees the test set; ``"test"`` validates on the official test set, for the numbers
            one reports. Default ``"split"``.
        size:
            Resize images to ``size x size`` (bilinear), e.g. 32 for MobileNetV2-style
            networks. Default: 28x28.
        channels:
            Repeat the grey channel this many times (3 to feed RGB networks). Default 1.
        download:
            Let torchvision download the files into ``root`` (default
            ``~/.cache/optuna-devnas``) when they are missing; needs internet access.
            Default ``False``: nothing is downloaded.

    Raises:
        :class:`~optuna_devnas.DataNotFoundError`: The files are missing (the message names the
        Debian package) or corrupted.
    """
    _check_arguments(train_size, val_size, holdout, size, channels)
    if root is None:
        root = DEBIAN_FOLDER if not download else Path.home() / ".cache" / "optuna-devnas"
    folder = Path(root).expanduser()
    if download and _locate(folder, _FILES[True][0]) is None:
        import torchvision

        for train in (True, False):
            torchvision.datasets.FashionMNIST(str(folder), train=train, download=True)

    (images, labels), (val_images, val_labels) = _split(
        _read(folder), holdout, train_size, val_size, seed
    )

    def to_float(x: torch.Tensor) -> torch.Tensor:
        scaled = (x.unsqueeze(1).float() / 255.0 - _MEAN) / _STD
        return resize(scaled, size).repeat(1, channels, 1, 1)

    return TensorData(
        "fashion_mnist", to_float(images), labels, to_float(val_images), val_labels, 10
    )
