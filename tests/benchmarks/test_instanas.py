from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import instanas
from optuna_devnas.data import DEBIAN_FOLDER


@pytest.mark.slow
@pytest.mark.skipif(not Path(DEBIAN_FOLDER).is_dir(), reason="dataset-fashion-mnist missing")
def test_fashion_mnist_run_reports_both_networks(tmp_path: Path) -> None:
    output = tmp_path / "insta.md"
    argv = [
        "--data", "fashion_mnist32", "--train-size", "60", "--val-size", "30",
        "--width-mult", "0.25", "--widths", "1.0", "--epochs", "1,1,1", "--seeds", "0",
        "--upper-ends", "0.8", "--rounds", "1", "--table-rounds", "1",
        "--latency-images", "4", "--output", str(output),
    ]  # fmt: skip
    assert instanas.main(argv) == 0
    text = output.read_text()
    assert "fashion_mnist32 (Fashion-MNIST at 3x32x32: 60 training images, 30 validation" in text
    assert "| MobileNetV2 1.0x | 0 |" in text and "InstaNAS (U_T = 0.8 L_mbv2)" in text
