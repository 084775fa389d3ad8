from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from optuna_devnas.cli import main
from optuna_devnas.objectives import LatencyTable
from optuna_devnas.spaces import CellSpace

QUICK = ["--min-run-time", "0.001", "--rounds", "1", "--calibration", "2"]


def test_profile_writes_a_table_and_shows_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "cpu.json"
    argv = ["profile", "--input-shape", "1,8,8", "--max-layers", "1", "-o", str(output), *QUICK]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert f"Wrote {output}: 36 layer entries" in captured.out
    assert "[  39/39]" in captured.err  # 36 entries, the overhead, 2 calibration networks
    table = LatencyTable.load(output, space=CellSpace(max_layers=1), input_shape=(1, 8, 8))
    assert table.device["threads"] == 1 and table.settings["rounds"] == 1
    assert table.backend == "torch"


def test_profile_in_onnxruntime(tmp_path: Path) -> None:
    output = tmp_path / "ort.json"
    argv = ["profile", "--input-shape", "1,8,8", "--max-layers", "1", "-o", str(output), "-q"]
    assert main([*argv, *QUICK, "--backend", "onnxruntime"]) == 0
    assert LatencyTable.load(output, space=CellSpace(max_layers=1)).backend == "onnxruntime"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--device", "tpu"], "device='tpu'"),
        (["--threads", "0"], "threads=0"),
        (["--input-shape", "1,1,1"], "at least 4x4"),
        (["--growth-rates", "8,16"], "growth_rates"),
        (["--backend", "tflite"], "backend='tflite'"),
    ],
)
def test_bad_arguments_exit_with_code_2_and_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    argv = ["profile", "--input-shape", "1,8,8", "-o", str(tmp_path / "t.json"), *QUICK, *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("devnas profile: error:") and message in err[0]


def test_missing_output_folder_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["profile", "-o", str(tmp_path / "missing" / "t.json"), *QUICK]
    assert main(argv) == 2
    assert "folder does not exist" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("{tmp}", "which is not a regular file (a folder or a device)"),
        ("/dev/full", "which is not a regular file (a folder or a device)"),
        ("/sys/devnas-table.json", "but its folder cannot be written"),
        ("/proc/devnas-table.json", "but its folder cannot be written"),
    ],
)
def test_an_unwritable_output_is_refused_before_measuring(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], output: str, message: str
) -> None:
    argv = ["profile", "--input-shape", "1,8,8", "-o", output.format(tmp=tmp_path), *QUICK]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("devnas profile: error:"), err
    assert message in err[0]  # and no progress line: nothing was measured


def test_a_failed_final_write_keeps_the_measurements(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "cpu.json"
    save = LatencyTable.save

    def disk_full_at_output(self: LatencyTable, path: str | os.PathLike[str]) -> None:
        if Path(path) == output:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        save(self, path)

    monkeypatch.setattr(LatencyTable, "save", disk_full_at_output)
    argv = ["profile", "--input-shape", "1,8,8", "--max-layers", "1", "-o", str(output), *QUICK]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"devnas profile: error: Could not write '{output}' (No space left")
    kept = Path(err.split("the table was written to ")[1].removesuffix(" instead."))
    try:
        table = LatencyTable.load(kept, space=CellSpace(max_layers=1), input_shape=(1, 8, 8))
        assert len(table.entries) == 36
    finally:
        kept.unlink()
    assert not output.exists()
