"""The sampler page: written whole, then sections rewritten from gzipped records."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from benchmarks import cellspace, sampler_page
from benchmarks._cellspace_problem import DEFAULT_TABLE


@pytest.mark.skipif(not DEFAULT_TABLE.is_file(), reason="CellSpace table missing")
def test_only_rewrites_the_chosen_sections_from_gzipped_records(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    plain = results / "runs.jsonl"
    argv = ["--seeds=2", "--budgets=20,30", "--samplers=random,tpe", f"--results={plain}"]
    assert cellspace.main([*argv, "--objectives=error,latency"]) == 0
    page = tmp_path / "page.md"
    assert sampler_page.main([f"--results={results}", f"--output={page}"]) == 0
    whole = page.read_text()
    assert "## CellSpace on digits: validation error vs measured latency\n" in whole
    # Every section but the one measured, and the timing section, say so.
    assert whole.count("Not measured yet.") == len(sampler_page.SECTIONS) - 1 + 1
    # The records go into the gzipped form the repository commits; the NB201 sections, which
    # these records do not cover, must be kept as they are.
    # Records keep the table path of the copy that ran them, which may be gone.
    moved = plain.read_text().replace(str(DEFAULT_TABLE), f"/gone/{DEFAULT_TABLE.name}")
    assert "/gone/" in moved
    (results / "runs.jsonl.gz").write_bytes(gzip.compress(moved.encode()))
    plain.unlink()
    marker = "A line the rewrite must keep.\n"
    page.write_text(whole.replace("Not measured yet.\n", marker, 1))
    assert sampler_page.main([f"--results={results}", f"--output={page}", "--only=CellSpace"]) == 0
    after = page.read_text()
    assert marker in after
    assert after.count("| TPESampler | 2 |") == 1  # The two-objective CellSpace section.
    assert "## Time per trial" in after and after.endswith("\n")
    with pytest.raises(SystemExit, match="no section title contains"):
        sampler_page.main([f"--results={results}", f"--output={page}", "--only=nothing"])
    # A section new to SECTIONS (here: cut from the page) goes in after the one before it.
    title = "## CellSpace on digits: validation error vs measured latency vs parameters\n"
    start = after.index(title)
    end = after.index("\n## ", start) + 1
    page.write_text(after[:start] + after[end:])
    argv = [f"--results={results}", f"--output={page}", "--only=latency vs parameters"]
    assert sampler_page.main(argv) == 0
    inserted = page.read_text()
    previous = "## CellSpace on digits: validation error vs measured latency\n"
    assert inserted.index(previous) < inserted.index(title) < inserted.index("## Time per trial")
    assert inserted.count(title) == 1 and marker in inserted


def test_only_rewrites_the_retarget_section_from_its_table(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    page = tmp_path / "page.md"
    assert sampler_page.main([f"--results={results}", f"--output={page}"]) == 0
    title = f"## {sampler_page.RETARGET_TITLE}\n"
    assert title not in page.read_text()  # no table yet, no section
    with pytest.raises(SystemExit, match="retarget.md is missing"):
        sampler_page.main([f"--results={results}", f"--output={page}", "--only=many devices"])
    (results / "retarget.md").write_text("| pair | seeds |\n| --- | --- |\n| a -> b | 10 |\n")

    argv = [f"--results={results}", f"--output={page}", "--only=many devices"]
    assert sampler_page.main(argv) == 0
    first = page.read_text()
    assert first.index("## Time per trial") < first.index(title)  # after the last section
    assert "| a -> b | 10 |" in first
    (results / "retarget.md").write_text("| pair | seeds |\n| --- | --- |\n| a -> b | 20 |\n")
    assert sampler_page.main(argv) == 0
    second = page.read_text()
    assert "| a -> b | 20 |" in second and "| a -> b | 10 |" not in second
    assert second.count(title) == 1 and second.replace("| 20 |", "| 10 |") == first
