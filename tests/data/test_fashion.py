from __future__ import annotations

import gzip
from pathlib import Path
import shutil

import pytest
import torch

from optuna_devnas import DataNotFoundError, load_fashion_mnist
from optuna_devnas.data import DEBIAN_FOLDER, load_data

needs_debian_files = pytest.mark.skipif(
    not Path(DEBIAN_FOLDER).is_dir(),
    reason="Debian's dataset-fashion-mnist is not installed (make test installs it)",
)


@needs_debian_files
def test_split_subset_and_holdout_sizes() -> None:
    a = load_fashion_mnist(train_size=2000, val_size=500, seed=0)
    assert a.train_x.shape == (2000, 1, 28, 28) and a.val_x.shape == (500, 1, 28, 28)
    assert a.num_classes == 10 and a.name == "fashion_mnist"
    assert torch.bincount(a.train_y).tolist() == [200] * 10  # stratified
    assert torch.bincount(a.val_y).tolist() == [50] * 10
    assert abs(float(a.train_x.mean())) < 0.1 and abs(float(a.train_x.std()) - 1.0) < 0.1
    b, c = (
        load_fashion_mnist(train_size=2000, val_size=500, seed=0),
        load_fashion_mnist(train_size=2000, val_size=500, seed=1),
    )
    assert torch.equal(a.val_x, b.val_x) and not torch.equal(a.val_x, c.val_x)
    # The training subset is drawn from what the split leaves: the split does not depend on it.
    full = load_fashion_mnist(val_size=500, seed=0)
    assert full.train_x.shape[0] == 60_000 - 500 and torch.equal(full.val_x, a.val_x)


@needs_debian_files
def test_test_holdout_and_32x32_variant() -> None:
    reported = load_fashion_mnist(train_size=100, val_size=1000, holdout="test")
    assert reported.val_x.shape == (1000, 1, 28, 28)
    rgb = load_data("fashion_mnist32")
    assert rgb.input_shape == (3, 32, 32) and rgb.val_x.shape[0] == 10_000
    assert torch.equal(rgb.train_x[:5, 0], rgb.train_x[:5, 2])


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="train_size=0"):
        load_fashion_mnist(train_size=0)
    with pytest.raises(ValueError, match="val_size=60000"):
        load_fashion_mnist(val_size=60000)
    with pytest.raises(ValueError, match="holdout='train'"):
        load_fashion_mnist(holdout="train")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fashion_mnist32"):
        load_data("fashion")


def test_missing_files_name_the_debian_package(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path)
    with pytest.raises(DataNotFoundError, match="t10k-labels-idx1-ubyte"):
        for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
            (tmp_path / name).write_bytes(b"")
        (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"")
        load_fashion_mnist(tmp_path)


def _idx(images: int, labels: int) -> tuple[bytes, bytes]:
    image_file = (0x0803).to_bytes(4, "big") + b"".join(
        n.to_bytes(4, "big") for n in (images, 28, 28)
    )
    label_file = (0x0801).to_bytes(4, "big") + labels.to_bytes(4, "big")
    return image_file + bytes(images * 784), label_file + bytes(labels)


def test_corrupt_or_short_files_are_reported(tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.mkdir()
    for prefix in ("train", "t10k"):
        images, labels = _idx(10, 10)  # valid IDX files, but 10 images instead of 60,000
        (short / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(images))
        (short / f"{prefix}-labels-idx1-ubyte").write_bytes(labels)  # mixed .gz and plain
    with pytest.raises(DataNotFoundError, match="expected 60000 training images"):
        load_fashion_mnist(short)
    broken = tmp_path / "broken"
    shutil.copytree(short, broken)
    data = (broken / "train-images-idx3-ubyte.gz").read_bytes()
    (broken / "train-images-idx3-ubyte.gz").write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(DataNotFoundError, match="incomplete or corrupted"):
        load_fashion_mnist(broken)


@needs_debian_files
def test_torchvision_layout_is_read(tmp_path: Path) -> None:
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for path in Path(DEBIAN_FOLDER).glob("*.gz"):
        shutil.copy(path, raw / path.name)
    data = load_fashion_mnist(tmp_path, train_size=100, val_size=100)
    assert data.train_x.shape == (100, 1, 28, 28)
