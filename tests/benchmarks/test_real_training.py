from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import real_training
from optuna_devnas.data import DEBIAN_FOLDER


@pytest.mark.slow
@pytest.mark.skipif(not Path(DEBIAN_FOLDER).is_dir(), reason="dataset-fashion-mnist missing")
def test_fashion_mnist_run_writes_a_table_and_keys_its_cache(tmp_path: Path) -> None:
    cache, output = tmp_path / "errors.jsonl", tmp_path / "real.md"
    args = [
        "--data", "fashion_mnist", "--train-size", "100", "--val-size", "50",
        "--trials", "3", "--seeds", "1", "--max-layers", "1", "--epochs", "1",
        "--samplers", "tpe,dpp", "--latency-rounds", "1",
        "--cache", str(cache), "--output", str(output), "--records", str(tmp_path / "r.jsonl"),
    ]  # fmt: skip
    assert real_training.main(args) == 0
    text = output.read_text()
    assert "fashion_mnist (100 training, 50 validation images)" in text
    assert "TPESampler" in text and "DPPSampler" in text
    assert "Command: `python -m benchmarks.real_training --data fashion_mnist" in text
    assert "seed 0: DPPSampler" in text
    assert "ahead of every other sampler on 0 of 1 seeds" in text or "on 1 of 1 seeds" in text
    records = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [r["sampler"] for r in records] == ["tpe", "dpp"]
    assert all(len(r["values"]) == 3 for r in records)
    rows = [json.loads(line) for line in cache.read_text().splitlines()]
    assert rows and all(row["data"].startswith("fashion_mnist (100") for row in rows)
    # Errors cached for another data set are not reused for this one.
    digits = real_training.MemoizedError(
        real_training.ValidationError(epochs=1), str(cache), "digits"
    )
    assert digits.known == {}
