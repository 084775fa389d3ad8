from __future__ import annotations

from pathlib import Path

import pytest
import torch

from optuna_devnas import DataNotFoundError, load_cifar, load_digits
from optuna_devnas.data import load_data


def test_digits_split_is_seeded_and_stratified() -> None:
    a, b, c = load_digits(seed=0), load_digits(seed=0), load_digits(seed=1)
    assert a.train_x.shape == (1437, 1, 8, 8) and a.val_x.shape == (360, 1, 8, 8)
    assert torch.equal(a.val_y, b.val_y) and not torch.equal(a.val_y, c.val_y)
    assert torch.bincount(a.val_y).min() >= 35  # every class in validation
    assert a.input_shape == (1, 8, 8) and a.num_classes == 10
    assert -1.0 <= float(a.train_x.min()) and float(a.train_x.max()) <= 1.0


def test_digits_resized_to_cifar_shape() -> None:
    data = load_data("digits32")
    assert data.input_shape == (3, 32, 32)
    assert torch.equal(data.train_x[:, 0], data.train_x[:, 2])


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="val_fraction=1.5"):
        load_digits(val_fraction=1.5)
    with pytest.raises(ValueError, match="imagenet"):
        load_data("imagenet")


def test_missing_cifar_folder_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataNotFoundError, match="nowhere"):
        load_cifar(missing)
    with pytest.raises(DataNotFoundError, match="cifar-100-python"):
        load_cifar(tmp_path, name="cifar100")


def test_corrupt_cifar_folder_is_reported(tmp_path: Path) -> None:
    (tmp_path / "cifar-10-batches-py").mkdir()
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"not a pickle")
    with pytest.raises(DataNotFoundError, match="incomplete or corrupted"):
        load_cifar(tmp_path)


def test_download_passes_through_to_torchvision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pickle

    import numpy as np
    import torchvision

    calls = []

    class FakeCIFAR10(torchvision.datasets.CIFAR10):
        def __init__(self, root: str, train: bool = True, download: bool = False) -> None:
            calls.append((root, train, download))
            if download:  # what torchvision's download leaves: the extracted python folder
                folder = Path(root) / "cifar-10-batches-py"
                folder.mkdir(exist_ok=True)
                batch = {
                    "data": np.zeros((4, 3072), dtype=np.uint8),
                    "labels": [0, 1, 2, 3],
                }
                for name in ("data_batch_1", "test_batch"):
                    (folder / name).write_bytes(pickle.dumps(batch))
                return
            self.data = np.zeros((4, 32, 32, 3), dtype=np.uint8)
            self.targets = [0, 1, 2, 3]

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    with pytest.raises(DataNotFoundError, match="download=True"):
        load_cifar(tmp_path)  # off by default: nothing fetched
    assert calls == []
    data = load_data("cifar10", root=str(tmp_path), download=True)
    assert [c[2] for c in calls] == [True, True, False, False]
    assert data.train_x.shape == (4, 3, 32, 32) and data.num_classes == 10
