"""``LatencyTable``: a space's layers profiled once on a device, summed to predict any network.

The lookup-table approach of FBNet (Wu et al., CVPR 2019, section 3.2), ProxylessNAS and
InstaNAS (section 3.3): time every layer choice at every shape it takes in the space's networks
on the target device, once; the latency of an architecture is then the sum of its layers'
entries plus what every network runs alike, with no device at hand. Layer shapes come from
:mod:`._layer_shapes` (one entry per choice and shape, shared by all positions with that
shape).

Two things make the sum honest. The fixed overhead (stem, poolings, concatenations, head,
dispatch around the cells) is measured on a skeleton network whose cells cost nothing. And a
layer timed alone in a tight loop runs faster than inside a network (hot caches and branch
predictors, less interpreter work between kernels), by a factor that depends on the kind of
layer: a 3x3 convolution loses more than a 1x1 one. So each kind of layer gets its own factor,
and the overhead one, fitted on whole calibration networks measured on the device
(:meth:`LatencyTable.calibrate`); the raw sum is kept (:meth:`LatencyTable.layer_sum`) so their
effect can be checked. Entries, overhead and calibration networks are timed in interleaved
rounds and each keeps its median, so a burst of load on a shared machine touches all of them
alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import json
import math
import os
from pathlib import Path
import statistics
from typing import TYPE_CHECKING, Any

from torch import nn

from optuna_devnas._errors import DevnasError, InvalidArchitectureError
from optuna_devnas._files import write_text_atomic
from optuna_devnas.objectives._base import (
    Objective,
    ParamsObjective,
    batched_shape,
    check_num_classes,
)
from optuna_devnas.objectives._layer_shapes import layer_shapes, space_layer_shapes
from optuna_devnas.spaces import Architecture, CellSpace

if TYPE_CHECKING:
    from optuna_devnas.objectives._profiling import ProgressCallback

TABLE_FORMAT = "optuna-devnas/latency-table"
TABLE_VERSION = 2
_READABLE_VERSIONS = (1, 2)  # version 1 tables have one scale for every kind of layer
_REQUIRED_KEYS = ("space", "input_shape", "num_classes", "overhead", "scale", "entries")


class LatencyTableMismatchError(DevnasError, ValueError):
    """A latency table is used for another space or input shape than it was profiled for."""


def _comparable(space: CellSpace) -> dict[str, Any]:
    # The parameter prefix does not change a network; everything else does.
    description = space.to_dict()
    del description["name"], description["max_layers"]
    return description


class LatencyTable(Objective):
    """Predicted latency of a space's networks from per-layer timings on a device (minimize).

    Build one with :meth:`profile` on the target device (or ``devnas profile``), :meth:`save`
    it, and :meth:`load` it anywhere to predict. ``predict(arch) = overhead + scale *
    layer_sum(arch)``; see the module docstring for why each term is there.

    Example:

        .. code-block:: python

            space = CellSpace(max_layers=4)
            table = LatencyTable.profile(space, input_shape=(1, 1, 8, 8))
            table.save("cpu.json")
            table = LatencyTable.load("cpu.json", space=space, input_shape=(1, 1, 8, 8))
            seconds = table.predict(space.architecture(["conv3x3", "bn_relu"]))
            sampler = DPPSampler(cheap_objectives={1: table.for_space(space)})

    Args:
        space:
            The space the table covers.
        input_shape:
            ``(batch, channels, height, width)`` the entries were timed for.
        entries:
            Seconds per layer, keyed by :attr:`LayerShape.key`; every shape of ``space`` needed.
        overhead:
            Seconds of the skeleton network (everything but the cells).
        scale:
            Calibration factor of every kind of layer without one of its own. Default 1.
        kind_scales:
            Calibration factor per kind of layer (``"conv3x3"``, ``"bn_relu"``, ...), fitted by
            :meth:`calibrate`. Default none: every kind takes ``scale``.
        overhead_scale:
            Calibration factor of the overhead. Default 1.
        num_classes:
            Classes of the profiled networks' head. Default 10.
        device:
            Description of the device (see :func:`describe_device`). Default empty.
        settings:
            How the table was profiled (threads, clock, rounds, ...). Default empty.
        calibration:
            Per calibration network: ``layers``, ``measured`` and ``layer_sum`` seconds.
    """

    name = "latency"
    direction = "minimize"

    def __init__(
        self,
        *,
        space: CellSpace,
        input_shape: Sequence[int],
        entries: Mapping[str, float],
        overhead: float,
        scale: float = 1.0,
        kind_scales: Mapping[str, float] | None = None,
        overhead_scale: float = 1.0,
        num_classes: int = 10,
        device: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
        calibration: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        if not isinstance(space, CellSpace):
            raise TypeError(f"Got space={space!r}, but expected a CellSpace.")
        self.space = space
        self.batch_shape = batched_shape(input_shape)
        self.input_shape = self.batch_shape[1:]
        self.num_classes = check_num_classes(num_classes)
        for label, value in [("overhead", overhead), ("scale", scale)]:
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"Got {label}={value!r}, but expected a non-negative number.")
        if scale == 0:
            raise ValueError(f"Got scale={scale!r}, but expected a positive number.")
        self.overhead = float(overhead)
        self.scale = float(scale)
        self.kind_scales = _check_scales(kind_scales or {}, "kind_scales")
        self.overhead_scale = _check_scales({"overhead": overhead_scale}, "overhead_scale")[
            "overhead"
        ]
        needed = [shape.key for shape in space_layer_shapes(space, self.input_shape)]
        missing = [key for key in needed if key not in entries]
        if missing:
            raise LatencyTableMismatchError(
                f"Got entries without {len(missing)} of the {len(needed)} layer shapes of "
                f"{space!r} on input shape {self.batch_shape} (first: {missing[:3]}); was the "
                "table profiled for another space or input shape?"
            )
        bad = {k: v for k, v in entries.items() if not (math.isfinite(v) and v >= 0)}
        if bad:
            raise ValueError(f"Got entries {bad}, but expected non-negative seconds.")
        self.entries = {key: float(entries[key]) for key in sorted(entries)}
        self.device = dict(device or {})
        self.settings = dict(settings or {})
        self.calibration = [dict(row) for row in calibration]

    # -- profiling ---------------------------------------------------------------------------
    @classmethod
    def profile(
        cls,
        space: CellSpace,
        *,
        input_shape: Sequence[int] = (1, 3, 32, 32),
        num_classes: int = 10,
        device: str = "cpu",
        threads: int = 1,
        warmup: int = 3,
        min_run_time: float = 0.005,
        rounds: int = 3,
        calibration: int = 48,
        clock: str = "auto",
        seed: int = 0,
        progress: ProgressCallback | None = None,
        backend: str = "torch",
    ) -> LatencyTable:
        """Time every layer shape of ``space``, the overhead and calibration networks here.

        Args:
            space:
                The space to profile.
            input_shape:
                ``(batch, channels, height, width)`` (batch 1 when given as ``(channels,
                height, width)``). Default (1, 3, 32, 32).
            num_classes:
                Classes of the networks' head. Default 10.
            device:
                Torch device to profile, ``"cpu"`` or ``"cuda"``. Default ``"cpu"``.
            threads:
                Intra-op CPU threads. Default 1.
            warmup:
                Untimed calls before each timing. Default 3.
            min_run_time:
                Seconds of timed calls per item and round. Default 0.005.
            rounds:
                Interleaved rounds over all items; each item keeps its median. Default 3.
            calibration:
                Networks measured whole to fit the calibration factors (0: none). Default 48.
            clock:
                ``"auto"``, ``"wall"`` or ``"thread"`` (see ``resolve_clock``). Default
                ``"auto"``.
            seed:
                Seed of the choice of calibration networks. Default 0.
            progress:
                Called as ``progress(done, total, label)`` after each timing.
            backend:
                ``"torch"`` (eager PyTorch) or ``"onnxruntime"`` (each layer, the overhead and
                each calibration network exported to ONNX and timed in an ONNX Runtime CPU
                session, as ``Latency(backend="onnxruntime")`` measures); kept in
                ``settings["backend"]``. A table predicts the runtime it was profiled in.
                Default ``"torch"``.
        """
        from optuna_devnas.objectives._profiling import profile_table

        return profile_table(
            cls,
            space,
            input_shape=input_shape,
            num_classes=num_classes,
            device=device,
            threads=threads,
            warmup=warmup,
            min_run_time=min_run_time,
            rounds=rounds,
            calibration=calibration,
            clock=clock,
            seed=seed,
            progress=progress,
            backend=backend,
        )

    @property
    def backend(self) -> str:
        """The runtime the table was profiled in: ``"torch"`` or ``"onnxruntime"``."""
        return str(self.settings.get("backend", "torch"))

    def calibrate(self, measured: Mapping[Architecture, float]) -> None:
        """Fit the calibration factors to whole networks' measured seconds on the table's device.

        ``scale`` becomes the median over the networks of ``(measured - overhead) /
        layer_sum``. With at least :data:`KIND_FIT_MIN_EXTRA` more networks than kinds of
        layer, each kind of layer and the overhead also get a factor of their own, the
        non-negative least-squares fit of the relative errors (scipy's ``nnls``), pulled
        slightly towards ``scale`` so a kind that few networks use keeps a sensible factor.
        :meth:`profile` calls this with the calibration networks it measured; call it again
        with measurements of your own (networks deployed on the device) to recalibrate.
        """
        archs = list(measured)
        seconds = [float(measured[arch]) for arch in archs]
        sums = [self.layer_sum(arch) for arch in archs]
        ratios = [
            (m - self.overhead) / s for m, s in zip(seconds, sums) if s > 0 and m > self.overhead
        ]
        self.scale = float(statistics.median(ratios)) if ratios else 1.0
        self.kind_scales, self.overhead_scale = {}, 1.0
        by_kind = [self.kind_sums(arch) for arch in archs]
        kinds = sorted({kind for sums_ in by_kind for kind in sums_})
        if len(archs) >= len(kinds) + KIND_FIT_MIN_EXTRA:
            factors = _fit_factors(by_kind, seconds, kinds, self.overhead, self.scale)
            self.overhead_scale = factors.pop("overhead")
            self.kind_scales = factors
        self.calibration = [
            {"layers": list(arch.layers), "measured": m, "layer_sum": s}
            for arch, m, s in zip(archs, seconds, sums)
        ]

    @classmethod
    def combine(cls, tables: Sequence[LatencyTable]) -> LatencyTable:
        """One table from several profiles of the same space and input shape: the medians.

        Profiles taken at different times (say, before and after a search on a shared
        machine) combine into a table less sensitive to the load of any one of them: every
        entry, the overhead and each calibration network's measurement is the median over the
        tables, and ``scale`` is fitted again.
        """
        if not tables:
            raise ValueError("Got no tables, but expected at least one.")
        first = tables[0]
        for table in tables[1:]:
            table.check(space=first.space, input_shape=first.batch_shape)
            if table.space.max_layers != first.space.max_layers:
                raise LatencyTableMismatchError(
                    f"Got tables for {first.space!r} and {table.space!r}; combine tables of "
                    "one space."
                )
        measured: dict[Architecture, list[float]] = {}
        for table in tables:
            for row in table.calibration:
                arch = first.space.architecture(row["layers"])
                measured.setdefault(arch, []).append(float(row["measured"]))
        combined = cls(
            space=first.space,
            input_shape=first.batch_shape,
            entries={
                key: statistics.median(t.entries[key] for t in tables) for key in first.entries
            },
            overhead=statistics.median(t.overhead for t in tables),
            num_classes=first.num_classes,
            device=first.device,
            settings={**first.settings, "combined_tables": len(tables)},
        )
        combined.calibrate({arch: statistics.median(v) for arch, v in measured.items()})
        return combined

    # -- prediction --------------------------------------------------------------------------
    def check(
        self, *, space: CellSpace | None = None, input_shape: Sequence[int] | None = None
    ) -> None:
        """Raise :class:`LatencyTableMismatchError` unless the table fits the given arguments."""
        if space is not None and (
            _comparable(space) != _comparable(self.space)
            or space.max_layers > self.space.max_layers
        ):
            raise LatencyTableMismatchError(
                f"Got {space!r}, but this latency table was profiled for {self.space!r} "
                "(same macro settings and at most as many layers needed); profile a table for "
                "this space (devnas profile)."
            )
        if input_shape is not None and batched_shape(input_shape) != self.batch_shape:
            raise LatencyTableMismatchError(
                f"Got input_shape={tuple(input_shape)}, but this latency table was profiled for "
                f"{self.batch_shape}; profile a table for this input shape (devnas profile)."
            )

    def _check_architecture(self, arch: Architecture) -> None:
        try:
            self.space.validate(arch)
        except InvalidArchitectureError as error:
            raise LatencyTableMismatchError(
                f"This latency table, profiled for {self.space!r}, cannot predict {arch!r}: "
                f"{error}"
            ) from error

    def layer_sum(self, arch: Architecture) -> float:
        """Sum of the entries of ``arch``'s layers (seconds), before overhead and scale."""
        self._check_architecture(arch)
        return sum(self.entries[shape.key] for shape in layer_shapes(arch, self.input_shape))

    def kind_sums(self, arch: Architecture) -> dict[str, float]:
        """Sum of the entries of ``arch``'s layers per kind of layer (seconds)."""
        self._check_architecture(arch)
        sums: dict[str, float] = {}
        for shape in layer_shapes(arch, self.input_shape):
            sums[shape.layer] = sums.get(shape.layer, 0.0) + self.entries[shape.key]
        return sums

    def predict(self, arch: Architecture) -> float:
        """Predicted seconds per forward pass of ``arch``'s deployed network on the device.

        ``overhead_scale * overhead`` plus, per kind of layer, its factor times the sum of
        the entries of that kind.
        """
        layers = sum(
            self.kind_scales.get(kind, self.scale) * seconds
            for kind, seconds in self.kind_sums(arch).items()
        )
        return self.overhead_scale * self.overhead + layers

    def evaluate(self, model: nn.Module) -> float:
        arch = getattr(model, "architecture", None)
        if not isinstance(arch, Architecture):
            raise TypeError(
                f"Got a {type(model).__name__}, but a latency table predicts networks built from "
                "an Architecture; measure other modules with Latency."
            )
        self.check(input_shape=getattr(model, "input_shape", self.input_shape))
        return self.predict(arch)

    def __call__(self, target: nn.Module | Architecture, **kwargs: Any) -> float:
        if isinstance(target, Architecture):
            return self.predict(target)
        return self.evaluate(target)

    def for_space(self, space: CellSpace) -> ParamsObjective:
        self.check(space=space)
        return ParamsObjective(self, space)

    # -- persistence -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": TABLE_FORMAT,
            "version": TABLE_VERSION,
            "space": self.space.to_dict(),
            "input_shape": list(self.batch_shape),
            "num_classes": self.num_classes,
            "device": self.device,
            "settings": self.settings,
            "overhead": self.overhead,
            "scale": self.scale,
            "kind_scales": self.kind_scales,
            "overhead_scale": self.overhead_scale,
            "calibration": self.calibration,
            "entries": self.entries,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencyTable:
        """The table :meth:`to_dict` described; ``ValueError`` for anything else."""
        if not isinstance(data, Mapping):
            raise ValueError(
                f"Got a {type(data).__name__}, but expected a {TABLE_FORMAT!r} table (an object)."
            )
        if data.get("format") != TABLE_FORMAT or data.get("version") not in _READABLE_VERSIONS:
            raise ValueError(
                f"Got format={data.get('format')!r} version={data.get('version')!r}, but "
                f"expected a {TABLE_FORMAT!r} version {TABLE_VERSION} file."
            )
        missing = [key for key in _REQUIRED_KEYS if key not in data]
        if missing:
            raise ValueError(f"Got a latency table without {missing}.")
        entries = data["entries"]
        if not isinstance(entries, Mapping) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in entries.values()
        ):
            raise ValueError("Got entries that are not a mapping of layer keys to seconds.")
        try:
            return cls(
                space=CellSpace.from_dict(data["space"]),
                input_shape=data["input_shape"],
                entries=entries,
                overhead=data["overhead"],
                scale=data["scale"],
                kind_scales=data.get("kind_scales"),
                overhead_scale=data.get("overhead_scale", 1.0),
                num_classes=data["num_classes"],
                device=data.get("device"),
                settings=data.get("settings"),
                calibration=data.get("calibration", ()),
            )
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(
                f"Got a malformed latency table: {type(error).__name__}: {error}"
            ) from None

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the table as JSON to ``path``, atomically.

        The JSON goes to a temporary file in the same folder, which then replaces ``path``: a
        write that fails (a full disk) leaves the previous table as it was.
        """
        write_text_atomic(path, json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        space: CellSpace | None = None,
        input_shape: Sequence[int] | None = None,
    ) -> LatencyTable:
        """Read a table saved by :meth:`save`, checked against ``space`` and ``input_shape``."""
        text = Path(path).read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"Got {str(path)!r}, which is not JSON: {error}") from error
        try:
            table = cls.from_dict(data)
        except LatencyTableMismatchError:
            raise
        except ValueError as error:
            raise ValueError(f"{str(path)!r}: {error}") from None
        table.check(space=space, input_shape=input_shape)
        return table

    def __repr__(self) -> str:
        return (
            f"LatencyTable({len(self.entries)} entries, space={self.space!r}, "
            f"input_shape={self.batch_shape}, device={self.device.get('cpu_model', '?')!r})"
        )


KIND_FIT_MIN_EXTRA = 8
"""Calibration networks needed beyond one per kind of layer to fit a factor per kind."""

KIND_PRIOR_WEIGHT = 0.01
"""How strongly each kind's factor is pulled towards the one ``scale`` (per network)."""


def _check_scales(scales: Mapping[str, float], argument: str) -> dict[str, float]:
    for kind, value in scales.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"Got {argument}[{kind!r}]={value!r}, but expected a number.")
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(
                f"Got {argument}[{kind!r}]={value!r}, but expected a non-negative number."
            )
    return {str(kind): float(value) for kind, value in sorted(scales.items())}


def _fit_factors(
    by_kind: Sequence[Mapping[str, float]],
    seconds: Sequence[float],
    kinds: Sequence[str],
    overhead: float,
    prior: float,
) -> dict[str, float]:
    """Per kind of layer and for ``"overhead"``, the factors that fit ``seconds`` best.

    Non-negative least squares on relative errors (each network's row divided by its
    measured time), with one extra row per factor pulling it towards ``prior`` (1 for the
    overhead) with weight :data:`KIND_PRIOR_WEIGHT` per network. scipy has the solver; what it
    does not know is which columns a network has, so the design matrix is built here.
    """
    import numpy as np
    from scipy.optimize import nnls

    X = np.array([[row.get(kind, 0.0) for kind in kinds] + [overhead] for row in by_kind])
    y = np.asarray(seconds, dtype=float)
    weight = math.sqrt(KIND_PRIOR_WEIGHT * len(y))
    A = np.vstack([X / y[:, None], weight * np.eye(X.shape[1])])
    b = np.concatenate([np.ones(len(y)), weight * np.r_[np.full(len(kinds), prior), 1.0]])
    factors, _ = nnls(A, b)
    return {**dict(zip(kinds, map(float, factors[:-1]))), "overhead": float(factors[-1])}
