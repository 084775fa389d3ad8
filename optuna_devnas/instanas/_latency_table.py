"""InstaNAS's latency lookup table: every option of every block timed on the device at hand.

Each option is timed alone at batch size 1 on its real feature-map shape with
:func:`optuna_devnas.objectives.measure_latency` (the package's one timing function); a child's
table latency is the sum of its selected options (InstaNAS section 3.3). The parts every child
runs (stem, head, classifier) are timed too, as ``fixed_seconds``, so the table can also predict a
child's whole latency and be checked against measurement. The table is plain data: it saves to
and loads from JSON, so it can be measured once on a target device and used anywhere.

CPUs shared with other work make single timings noisy, so :meth:`OptionLatencyTable.measure`
times every entry in several interleaved rounds and keeps each entry's median (the timing helper
``LatencyTable`` profiles with too).

An option timed alone, with its weights and input hot in the caches, runs faster than inside a
network, and not by the same factor for every option: on a 2-core CPU (meta-graph width 1.0,
32x32 inputs, stride-2 stem) the inverted residuals cost 1.19-1.34 times their table entries
inside a whole child, the basic block 1.01 times (``benchmarks/instanas_table_check.py``). A
reward that ranks children by uncorrected sums then buys inverted residuals it thinks are
cheap. So ``measure`` also times whole children (the cheapest one, and for each option the one
that adds it to every block) and scales each option's entries by its
``(child - cheapest child) / (sum of its entries)``: one factor per option, fitted in context.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import copy
import json
import os
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from optuna_devnas._checks import check_positive_int
from optuna_devnas._files import write_text_atomic
from optuna_devnas.instanas._meta_graph import MetaBlock, MetaGraph, policy_to_child
from optuna_devnas.instanas._options import OPTION_NAMES
from optuna_devnas.objectives import (
    LatencyTableMismatchError,
    describe_device,
    interleaved_medians,
    resolve_clock,
)

TABLE_FORMAT = "optuna-devnas/instanas-option-latency"
TABLE_VERSION = 1


def meta_graph_layout(meta_graph: MetaGraph) -> dict[str, Any]:
    """What a table's entries depend on besides the device: input shape and widths."""
    return {
        "input_shape": list(meta_graph.input_shape),
        "width_mult": meta_graph.width_mult,
        "stem_stride": meta_graph.stem_stride,
        "blocks": [
            [spec.in_channels, spec.out_channels, spec.stride, *spec.input_size]
            for spec in meta_graph.specs
        ],
    }


def _timed_entries(
    model: MetaGraph, children: Sequence[torch.Tensor], generator: torch.Generator
) -> list[tuple[nn.Module, torch.Tensor]]:
    """What one measurement times, in this order: every option of every block, the stem, the
    classifier, then one whole child per calibration policy (``children``)."""
    device = next(model.parameters()).device

    def example(*shape: int) -> torch.Tensor:
        return torch.randn(1, *shape, generator=generator).to(device)

    entries: list[tuple[nn.Module, torch.Tensor]] = []
    for spec, block in zip(model.specs, model.blocks, strict=True):
        x = example(spec.in_channels, *spec.input_size)
        entries.extend((option, x) for option in cast(MetaBlock, block).options)
    last = model.specs[-1]
    entries.append((model.stem, example(*model.input_shape)))
    entries.append((_Classify(model), example(last.out_channels, *last.output_size)))
    image = example(*model.input_shape)
    entries.extend((_Child(model, policy), image) for policy in children)
    return entries


class OptionLatencyTable:
    """Seconds per image of each option of each block of a meta-graph on one device.

    Example:

        .. code-block:: python

            meta_graph = MetaGraph(num_classes=10, input_shape=(3, 32, 32), width_mult=0.5)
            table = OptionLatencyTable.measure(meta_graph)
            table.save("options-cpu.json")
            table = OptionLatencyTable.load("options-cpu.json")
            table.check(meta_graph)
            table.reference("mbv2"), table.latency(meta_graph.reference_policy("min"))

    Args:
        seconds:
            ``blocks x options`` latencies in seconds.
        layout:
            The meta-graph layout the entries were measured on (:func:`meta_graph_layout`).
        fixed_seconds:
            Latency of the parts every child runs (stem, head, classifier). Default 0.
        device:
            Description of the device (``optuna_devnas.objectives.describe_device``).
        settings:
            How the entries were timed (threads, clock, rounds, ...).
    """

    def __init__(
        self,
        *,
        seconds: Sequence[Sequence[float]],
        layout: Mapping[str, Any],
        fixed_seconds: float = 0.0,
        device: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        table = torch.tensor([[float(s) for s in row] for row in seconds], dtype=torch.float64)
        if table.dim() != 2 or table.shape[1] != len(OPTION_NAMES) or not (table >= 0).all():
            raise ValueError(
                f"Got seconds of shape {tuple(table.shape)}, but expected non-negative "
                f"(blocks, {len(OPTION_NAMES)}) latencies."
            )
        blocks = layout.get("blocks")
        if not isinstance(blocks, Sequence) or len(blocks) != table.shape[0]:
            raise ValueError(
                f"Got a layout with blocks={blocks!r}, but expected {table.shape[0]} blocks."
            )
        if not fixed_seconds >= 0:
            raise ValueError(f"Got fixed_seconds={fixed_seconds!r}, but expected >= 0.")
        self.seconds = table
        self.layout = dict(layout)
        # A block changes shape when its stride or its channels change.
        self.changes_shape = torch.tensor(
            [bool(block[2] != 1 or block[0] != block[1]) for block in blocks]
        )
        self.fixed_seconds = float(fixed_seconds)
        self.device = dict(device or {})
        self.settings = dict(settings or {})

    @classmethod
    def measure(
        cls,
        meta_graph: MetaGraph,
        *,
        threads: int = 1,
        rounds: int = 3,
        min_run_time: float = 0.01,
        clock: str = "auto",
        device: str | torch.device = "cpu",
        seed: int = 0,
        calibrate: bool = True,
    ) -> OptionLatencyTable:
        """Time every option of ``meta_graph`` (and its fixed parts) at batch size 1.

        Args:
            meta_graph:
                The meta-graph; a copy is moved to ``device`` and put in eval mode.
            threads:
                Intra-op threads for the measurement. Default 1.
            rounds:
                Interleaved rounds over all entries, in alternating order; each entry keeps
                its median. Default 3.
            min_run_time:
                Seconds of timed calls per entry and round. Default 0.01.
            clock:
                ``"auto"``, ``"wall"`` or ``"thread"`` (see
                ``optuna_devnas.objectives.resolve_clock``); ``"auto"`` counts only this
                thread's CPU time on a one-thread CPU, so other processes disturb it less.
                Default ``"auto"``.
            device:
                Torch device to time on. Default ``"cpu"``.
            seed:
                Seed of the random example inputs. Default 0.
            calibrate:
                Also time whole children and scale each option's entries to what it costs
                inside a network (see the module docstring); the factors are kept in
                ``settings["calibration"]``. Default True.
        """
        check_positive_int(rounds, "rounds")
        torch_device = torch.device(device)
        resolved = resolve_clock(clock, device=torch_device, threads=threads)
        model = copy.deepcopy(meta_graph).to(torch_device).eval()
        children = calibration_policies(model) if calibrate else []
        entries = _timed_entries(model, children, torch.Generator().manual_seed(seed))
        medians = interleaved_medians(
            entries, rounds=rounds, threads=threads, min_run_time=min_run_time, clock=resolved
        )
        n = len(OPTION_NAMES)
        options = n * model.num_blocks
        seconds = torch.tensor(medians[:options], dtype=torch.float64).view(-1, n)
        fixed = medians[options] + medians[options + 1]
        settings: dict[str, Any] = {
            "threads": threads,
            "rounds": rounds,
            "min_run_time": min_run_time,
            "clock": resolved,
            "batch_size": 1,
        }
        if calibrate:
            measured = torch.tensor(medians[options + 2 :], dtype=torch.float64)
            seconds, fixed, scales = calibrate_entries(
                seconds, torch.stack(children).to(torch.float64), measured, fixed_alone=fixed
            )
            settings["calibration"] = dict(zip(OPTION_NAMES, scales, strict=True))
        return cls(
            seconds=seconds.tolist(),
            layout=meta_graph_layout(model),
            fixed_seconds=fixed,
            device=describe_device(torch_device, threads),
            settings=settings,
        )

    @property
    def num_blocks(self) -> int:
        return int(self.seconds.shape[0])

    def check(self, meta_graph: MetaGraph) -> None:
        """Raise ``LatencyTableMismatchError`` unless measured on ``meta_graph``'s layout."""
        expected = meta_graph_layout(meta_graph)
        if self.layout != expected:
            raise LatencyTableMismatchError(
                f"Got a table measured on the layout {self.layout!r}, but the meta-graph has "
                f"{expected!r}; measure a table for this input shape, width_mult and "
                "stem_stride."
            )

    def latency(self, policy: torch.Tensor) -> torch.Tensor:
        """Table latency (seconds) of normalized ``... x blocks x options`` policies."""
        table = self.seconds.to(device=policy.device, dtype=torch.float32)
        return (policy.to(torch.float32) * table).sum(dim=(-2, -1))

    def predict(self, policy: torch.Tensor) -> torch.Tensor:
        """Whole-network latency: the fixed parts plus :meth:`latency`."""
        return self.fixed_seconds + self.latency(policy)

    def reference(self, name: str) -> float:
        """``L_mbv2`` (``"mbv2"``), ``L_all`` (``"all"``) or ``L_min`` (``"min"``), in seconds."""
        seconds = self.seconds
        if name == "all":
            return float(seconds.sum())
        if name == "mbv2":
            return float(seconds[:, 0].sum())
        if name == "min":
            return float(seconds[self.changes_shape, -1].sum())
        raise ValueError(f"Got name={name!r}, but expected 'mbv2', 'all' or 'min'.")

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": TABLE_FORMAT,
            "version": TABLE_VERSION,
            "options": list(OPTION_NAMES),
            "layout": self.layout,
            "device": self.device,
            "settings": self.settings,
            "fixed_seconds": self.fixed_seconds,
            "seconds": self.seconds.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OptionLatencyTable:
        if data.get("format") != TABLE_FORMAT or data.get("version") != TABLE_VERSION:
            raise ValueError(
                f"Got format={data.get('format')!r} version={data.get('version')!r}, but "
                f"expected a {TABLE_FORMAT!r} version {TABLE_VERSION} file."
            )
        if list(data.get("options", [])) != list(OPTION_NAMES):
            raise ValueError(
                f"Got options={data.get('options')!r}, but expected {list(OPTION_NAMES)}."
            )
        return cls(
            seconds=data["seconds"],
            layout=data["layout"],
            fixed_seconds=data.get("fixed_seconds", 0.0),
            device=data.get("device"),
            settings=data.get("settings"),
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the table as JSON to ``path``, atomically (a failed write keeps the old one)."""
        write_text_atomic(path, json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> OptionLatencyTable:
        """Read a table written by :meth:`save`."""
        text = Path(path).read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"Got {str(path)!r}, which is not JSON: {error}") from error
        return cls.from_dict(data)

    def __repr__(self) -> str:
        return (
            f"OptionLatencyTable(blocks={self.num_blocks}, "
            f"L_min={self.reference('min'):.3g} s, L_mbv2={self.reference('mbv2'):.3g} s, "
            f"L_all={self.reference('all'):.3g} s, fixed={self.fixed_seconds:.3g} s)"
        )


CALIBRATION_RANGE = (0.25, 4.0)
"""Bounds of an option's calibration factor: beyond them a timing went wrong, not the table."""


def calibration_policies(meta_graph: MetaGraph) -> list[torch.Tensor]:
    """The children timed whole for calibration: the cheapest, then each option everywhere."""
    cheapest = meta_graph.reference_policy("min")
    policies = [cheapest]
    for option in range(len(OPTION_NAMES)):
        policy = cheapest.clone()
        policy[:, option] = True
        policies.append(meta_graph.normalize(policy.unsqueeze(0))[0])
    return policies


def calibrate_entries(
    seconds: torch.Tensor,
    policies: torch.Tensor,
    measured: torch.Tensor,
    *,
    fixed_alone: float = 0.0,
) -> tuple[torch.Tensor, float, list[float]]:
    """Scale each option's entries to the whole children measured with them.

    Args:
        seconds:
            ``blocks x options`` entries timed alone.
        policies:
            The :func:`calibration_policies`, ``(1 + options) x blocks x options`` (0/1).
        measured:
            Their measured whole-network seconds, ``1 + options``.
        fixed_alone:
            The fixed parts (stem, classifier) timed alone.

    Returns:
        The scaled entries, the fixed seconds (the cheapest child's measurement less its
        scaled entries, at least ``CALIBRATION_RANGE[0] * fixed_alone``: every child runs the
        stem and the classifier, so a noisy measurement must not make them free) and the
        factor of each option. The factor of option ``k`` is
        ``(measured[k + 1] - measured[0]) / (entries policy k + 1 adds)``, kept within
        :data:`CALIBRATION_RANGE`.
    """
    cheapest = policies[0]
    scales = []
    for option in range(seconds.shape[1]):
        added = (policies[option + 1] - cheapest).clamp_min(0)
        alone = float((added * seconds).sum())
        gained = float(measured[option + 1] - measured[0])
        factor = gained / alone if alone > 0 else 1.0
        scales.append(min(max(factor, CALIBRATION_RANGE[0]), CALIBRATION_RANGE[1]))
    scaled = seconds * torch.tensor(scales, dtype=seconds.dtype)
    floor = CALIBRATION_RANGE[0] * fixed_alone
    fixed = max(float(measured[0] - (cheapest * scaled).sum()), floor)
    return scaled, fixed, scales


class _Child(nn.Module):
    def __init__(self, model: MetaGraph, policy: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.child = policy_to_child(policy)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_child(x, self.child)


class _Classify(nn.Module):
    def __init__(self, model: MetaGraph) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model._classify(x)
