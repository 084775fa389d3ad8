"""Write ``docs/benchmarks-sampler.md`` from the results files of the sampler benchmarks.

The page holds the current results only: every table is computed here from the JSON-lines
records that ``benchmarks/nb201.py`` and ``benchmarks/cellspace.py`` appended, beside the
commands that made them. Each target the issues set is judged from the same records and
printed as met or missed.

Usage (from the repository root, after the commands printed in the page)::

    .venv/bin/python -m benchmarks.sampler_page --results runs/sampler \\
        --output docs/benchmarks-sampler.md
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
import platform
from typing import Any

import numpy as np

from benchmarks._cellspace_problem import DEFAULT_TABLE as CELLSPACE_TABLE
from benchmarks._nb201_report import best_peers, gap_summary, markdown
from benchmarks._nb201_run import problem_for, read_records, time_at
from benchmarks._nb201_samplers import LABELS
from benchmarks._nb201_table import DEFAULT_TABLE as NB201_TABLE

C10 = ("nb201", "cifar10", "raspi4")
C100 = ("nb201", "cifar100", "hwnb360_c100_pixel_litert_lat_ms_median")
C10_TITAN = ("nb201", "cifar10", "titan_rtx_1")
IN16_PIXEL3 = ("nb201", "imagenet16-120", "pixel3")
CELLS = ("cellspace", "digits", "latency_ms")
TWO = ("error", "latency")
THREE = ("error", "latency", "params")


@dataclass(frozen=True)
class Target:
    """``sampler`` at ``budget`` trials no worse than ``than`` (a number or the best peer)."""

    sampler: str
    budget: int
    than: float | None = None
    peer_budget: int | None = None

    def judge(self, summary: dict[str, dict[int, tuple[float, float, float, int]]]) -> str:
        mine = summary.get(self.sampler, {}).get(self.budget)
        if mine is None:
            return f"{LABELS[self.sampler]} at {self.budget} trials: not measured"
        if self.than is not None:
            ok = mine[0] <= self.than
            return (
                f"{LABELS[self.sampler]} at {self.budget} trials: median gap {mine[0]:.2f}% "
                f"(target <= {self.than}): **{'met' if ok else 'missed'}**"
            )
        budget = self.peer_budget or self.budget
        best = best_peers(summary, [budget]).get(budget)
        if best is None:
            return f"{LABELS[self.sampler]} at {self.budget} trials: no peer at {budget}"
        ok = mine[0] <= best[1]
        return (
            f"{LABELS[self.sampler]} at {self.budget} trials: median gap {mine[0]:.2f}% against "
            f"the best peer at {budget} trials, {LABELS[best[0]]} {best[1]:.2f}% (ratio "
            f"{mine[0] / best[1]:.2f}): **{'met' if ok else 'missed'}**"
            if best[1] > 0
            else f"best peer at {budget} has no gap"
        )


@dataclass(frozen=True)
class Section:
    title: str
    problem: tuple[str, str, str]
    objectives: tuple[str, ...]
    budgets: tuple[int, ...]
    targets: tuple[Target, ...] = ()


def _three_objectives(pair: str, problem: tuple[str, str, str]) -> Section:
    """A NAS-Bench-201 pair with parameters as the third objective, judged as issue 17 asks."""
    return Section(
        f"NAS-Bench-201, {pair} vs parameters, three objectives",
        problem,
        THREE,
        (25, 50, 100, 200),
        (Target("dpp-cheap", 50, peer_budget=200),),
    )


SECTIONS = (
    Section(
        "NAS-Bench-201, CIFAR-10 vs Raspberry Pi 4, two objectives",
        C10,
        TWO,
        (25, 50, 100, 200),
        (
            Target("dpp-cheap", 50, than=0.5),
            Target("dpp-cheap", 100, than=0.2),
            Target("dpp", 100, peer_budget=200),
        ),
    ),
    Section(
        "NAS-Bench-201, CIFAR-100 vs Pixel (LiteRT), two objectives",
        C100,
        TWO,
        (25, 50, 100, 200),
        (Target("dpp-cheap", 100, peer_budget=200),),
    ),
    *(
        _three_objectives(pair, problem)
        for pair, problem in (
            ("CIFAR-10 vs Raspberry Pi 4", C10),
            ("CIFAR-100 vs Pixel (LiteRT)", C100),
            ("CIFAR-10 vs Titan RTX", C10_TITAN),
            ("ImageNet16-120 vs Pixel 3", IN16_PIXEL3),
        )
    ),
    Section(
        "CellSpace on digits: validation error vs measured latency",
        CELLS,
        TWO,
        (20, 30, 60, 120),
        (Target("dpp-cheap", 30, peer_budget=120), Target("dpp-pareto", 30, peer_budget=120)),
    ),
    Section(
        "CellSpace on digits: validation error vs measured latency vs parameters",
        CELLS,
        THREE,
        (20, 30, 60, 120),
        (Target("dpp-cheap", 30, peer_budget=120), Target("dpp-pareto", 30, peer_budget=120)),
    ),
)

TIMING = Section(
    "Time per trial at 500 and 1,000 trials",
    C10,
    TWO,
    (25, 50, 100, 200, 500, 1000),
)


def _load(folder: Path) -> list[dict[str, Any]]:
    """Every record of ``folder/*.jsonl`` and of the gzipped copies committed beside them."""
    records = []
    for path in sorted([*folder.glob("*.jsonl"), *folder.glob("*.jsonl.gz")]):
        for record in read_records(path):
            record["_file"] = path.name.removesuffix(".gz")
            records.append(record)
    return records


def _matches(record: dict[str, Any], problem: tuple[str, str, str], objectives: tuple) -> bool:
    if "device" not in record:  # a retargeted search (benchmarks/retarget.py), reported apart
        return False
    key = (record.get("kind", "nb201"), record["dataset"], record["device"])
    return key == problem and tuple(record.get("objectives", TWO)) == objectives


def _latest(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per sampler and seed: the longest finished run (ties: the last written)."""
    best: dict[tuple[str, int], dict[str, Any]] = {}
    for record in records:
        if record["error"]:
            continue
        key = (record["sampler"], record["seed"])
        if key not in best or record["n_trials"] >= best[key]["n_trials"]:
            best[key] = record
    return list(best.values())


def _table_of(record: dict[str, Any]) -> str:
    """The table a record was run on; where that path is gone, the table of that name here.

    Records keep the path of the working copy that ran them (often a worktree since deleted),
    and committed records must still find their table in any clone.
    """
    path = Path(record["table"])
    if path.is_file():
        return str(path)
    default = CELLSPACE_TABLE if record.get("kind") == "cellspace" else NB201_TABLE
    return str(default.parent / path.name)


def section_text(section: Section, records: list[dict[str, Any]]) -> str:
    mine = _latest(
        [
            r
            for r in records
            if _matches(r, section.problem, section.objectives) and r["_file"] != "timing.jsonl"
        ]
    )
    lines = [f"## {section.title}", ""]
    if not mine:
        return "\n".join([*lines, "Not measured yet.", ""])
    kind, dataset, device = section.problem
    problem = problem_for(_table_of(mine[0]), dataset, device, section.objectives, kind)
    lines.append(
        f"True front: {len(problem.front)} architectures of {len(problem.values)}. "
        "DPPSampler's source hash: "
        + ", ".join(sorted({r["sampler_source"] for r in mine if r.get("sampler_source")}))
        + "."
    )
    lines.append("")
    text = markdown(mine, section.budgets, title=problem.title).split("\n", 1)[1]
    lines.append(text.replace("\n### ", "\n#### "))
    summary = gap_summary(mine, section.budgets)
    if section.targets:
        lines += ["Targets:", ""]
        lines += [f"- {target.judge(summary)}" for target in section.targets]
        lines.append("")
    return "\n".join(lines)


def timing_text(records: list[dict[str, Any]]) -> str:
    mine = [r for r in records if r["_file"] == "timing.jsonl" and not r["error"]]
    lines = [f"## {TIMING.title}", ""]
    if not mine:
        return "\n".join([*lines, "Not measured yet.", ""])
    points = (100, 200, 300, 500, 700, 1000)
    lines += [
        "Process CPU seconds per trial (ask + suggests + tell, one torch thread), median of the "
        "5 trials ending with the n-th and, in brackets, the mean of the 50 trials ending with "
        "it (DPPSampler alternates cheap local steps with whole-space steps and refits its GP "
        "hyperparameters every 5% growth past 200 trials, so single trials vary).",
        "",
        "| sampler | " + " | ".join(f"at {n}" for n in points) + " |",
        "| --- | " + " | ".join("---" for _ in points) + " |",
    ]
    for record in sorted(mine, key=lambda r: r["sampler"]):
        cells = []
        for n in points:
            at = time_at(record, n, key="cpu")
            window = record["cpu"][max(0, n - 50) : n]
            cells.append(f"{at:.2f} ({np.mean(window):.2f})" if at is not None and window else "-")
        lines.append(f"| {LABELS[record['sampler']]} | " + " | ".join(cells) + " |")
    by = {r["sampler"]: r for r in mine}
    if "dpp-cheap" in by and "gp" in by:
        for n in (500, 1000):
            a = (
                np.mean(by["dpp-cheap"]["cpu"][n - 50 : n])
                if len(by["dpp-cheap"]["cpu"]) >= n
                else None
            )
            b = np.mean(by["gp"]["cpu"][n - 50 : n]) if len(by["gp"]["cpu"]) >= n else None
            if a is not None and b is not None:
                lines.append("")
                lines.append(
                    f"At {n} trials DPPSampler takes {a:.2f} s of CPU per trial against "
                    f"GPSampler's {b:.2f} s (ratio {a / b:.2f}; means of the 50 trials ending "
                    f"with the {n}-th): **{'met' if a <= b else 'missed'}** at 500."
                    if n == 500
                    else f"At {n} trials: {a:.2f} s against {b:.2f} s (ratio {a / b:.2f})."
                )
    growth = []
    for record in sorted(mine, key=lambda r: r["sampler"]):
        if len(record["cpu"]) >= 1000:
            ratio = np.mean(record["cpu"][950:1000]) / np.mean(record["cpu"][450:500])
            growth.append(f"{LABELS[record['sampler']]} x{ratio:.1f} (as n^{np.log2(ratio):.1f})")
    if growth:
        growth_text = ", ".join(growth)
        lines += ["", f"Growth of the time per trial from 500 to 1,000 trials: {growth_text}."]
    lines.append("")
    return "\n".join(lines)


RETARGET_TITLE = "One search, many devices: retargeted searches on NAS-Bench-201"


def retarget_text(folder: Path) -> str | None:
    """The retarget section from ``folder/retarget.md`` (``benchmarks/retarget.py --output``)."""
    table = folder / "retarget.md"
    if not table.is_file():
        return None
    return "\n".join(
        [
            f"## {RETARGET_TITLE}",
            "",
            "`benchmarks/retarget.py` (`sampler_dpp.sh c`); see",
            "[retarget.md](retarget.md).",
            "",
            table.read_text(),
        ]
    )


INTRO = """# Sampler benchmarks: DPPSampler against Optuna's samplers

Written by `benchmarks/sampler_page.py` from the results files of the scripts below; every
number is computed from runs recorded there, and nothing is typed in by hand.

- **Problems.** NAS-Bench-201 (`benchmarks/nb201.py`, `../shared/data/nb201/`): 15,625 cells,
  test error against a device's latency, and optionally the parameter count; the objective
  suggests the six edges define-by-run and looks the values up. CellSpace
  (`benchmarks/cellspace.py`): the 456 architectures of the default `CellSpace`, every one
  trained on digits and measured once (`benchmarks/data/cellspace_digits.csv.gz`, see
  `benchmarks/data/README.md`); the objective calls `CellSpace.suggest`, so DPPSampler runs
  DPP-Net's stages (6 one-layer cells, then 8 per stage: 30 trials are the four stages).
- **Hypervolume gap** (`../shared/DESIGN.md` section 9): every objective min-max normalized
  over the whole table, reference point 1.1 in each, `100 x (1 - HV(found) / HV(true
  front))`, read along each run at every budget (the first `b` trials of a seed).
- **Samplers**, at their defaults and seeded with the run's seed: `DPPSampler (cheap costs)`
  gets every objective but the error as an exact cheap objective (a table look-up from the
  parameters); `(cheap costs, Pareto rule)` the same with `selection="pareto"`; plain
  `DPPSampler` models every objective. Peers: `RandomSampler`, `TPESampler`,
  `NSGAIISampler(population_size=20)`, `GPSampler`.
- **Time per trial** is the sampler's own: `study.ask()`, the suggests and `study.tell()`,
  process CPU time (the machine has 2 cores and the three scripts ran side by side, so compare
  CPU times, not wall-clock).
- On a table, DPPSampler's CellSpace stages are deterministic (the seed only draws fillers and
  what the independent sampler samples): its seeds give the same run.
"""


def scripts_text() -> str:
    """The scripts that made the records, verbatim, so the page cannot drift from them."""
    root = Path(__file__).resolve().parent
    parts = ["## How to reproduce", "", "From the repository root, side by side:", ""]
    for name in ("sampler_peers.sh", "sampler_dpp.sh"):
        parts += [
            f"`benchmarks/{name}`:",
            "",
            "```bash",
            (root / name).read_text().strip(),
            "```",
            "",
        ]
    parts += [
        "then `.venv/bin/python -m benchmarks.sampler_page` writes this page (and reads",
        "`runs/sampler/retarget.md`, which the retarget benchmark writes). The records of the",
        "sections rerun most recently are committed, gzipped, in `benchmarks/results/sampler/`:",
        "`.venv/bin/python -m benchmarks.sampler_page --results benchmarks/results/sampler",
        "--only CellSpace` rewrites those sections from them (and this one), keeping the rest;",
        "`--only 'many devices'` rewrites the retarget section from the `retarget.md` there.",
        "",
    ]
    return "\n".join(parts)


def _provenance(records: list[dict[str, Any]]) -> str:
    return (
        f"\nPython {platform.python_version()}; {len(records)} runs read for this page's last "
        "rewrite; each section names the DPPSampler source hashes of its own runs.\n"
    )


def _next_section(page: str, start: int) -> int:
    """Where the ``## `` section after the one at ``start`` begins, or the page's end."""
    end = page.find("\n## ", start + 1)
    return len(page) if end < 0 else end + 1


def _rewrite_sections(output: Path, only: str, records: list[dict[str, Any]], folder: Path) -> int:
    """Replace the ``## `` sections of ``output`` whose title contains ``only``."""
    chosen = [section for section in SECTIONS if only in section.title]
    timing = only in TIMING.title
    retarget = retarget_text(folder) if only in RETARGET_TITLE else None
    if not chosen and not timing and retarget is None:
        if only in RETARGET_TITLE:  # the retarget section's table comes from its own file
            raise SystemExit(f"Got --only={only!r}, but {folder / 'retarget.md'} is missing.")
        raise SystemExit(f"Got --only={only!r}, but no section title contains it.")
    page = output.read_text()
    # The scripts are always current: their section is rewritten with the chosen ones.
    texts = {"How to reproduce": scripts_text() + _provenance(records)}
    texts.update({section.title: section_text(section, records) for section in chosen})
    if timing:
        texts[TIMING.title] = timing_text(records)
    if retarget is not None:
        texts[RETARGET_TITLE] = retarget
    titles = [section.title for section in SECTIONS] + [TIMING.title, RETARGET_TITLE]
    for title, text in texts.items():
        start = page.find(f"## {title}\n")
        if start >= 0:
            end = _next_section(page, start)
        else:
            # A section new to SECTIONS goes after the nearest one before it that the page has.
            earlier = titles[: titles.index(title)] if title in titles else []
            before = [t for t in earlier if f"## {t}\n" in page]
            if not before:
                raise SystemExit(f"{output} has no section {title!r}: write it whole first.")
            start = end = _next_section(page, page.find(f"## {before[-1]}\n"))
        page = page[:start] + text.rstrip("\n") + "\n\n" + page[end:]
    output.write_text(page)
    print(f"rewrote {len(texts) - 1} section(s) of {output} from {len(records)} runs")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default="runs/sampler", help="folder of *.jsonl results")
    parser.add_argument("--output", default="docs/benchmarks-sampler.md")
    parser.add_argument(
        "--only",
        help="rewrite only the sections whose title contains this text (e.g. CellSpace) and "
        "keep the rest of --output as it is, for results rerun after a change that cannot "
        "move the others",
    )
    args = parser.parse_args(argv)
    records = _load(Path(args.results))
    if args.only:
        return _rewrite_sections(Path(args.output), args.only, records, Path(args.results))
    parts = [INTRO, scripts_text()]
    parts[-1] += _provenance(records)
    parts += [section_text(section, records) for section in SECTIONS]
    parts.append(timing_text(records))
    retarget = retarget_text(Path(args.results))
    if retarget is not None:
        parts.append(retarget)
    text = "\n".join(parts).rstrip("\n") + "\n"
    Path(args.output).write_text(text)
    print(f"wrote {args.output}: {len(text.splitlines())} lines from {len(records)} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
