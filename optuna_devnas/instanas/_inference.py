"""Instance-aware inference: each image runs the child its controller picks, and nothing else.

:class:`InstanceAwareNetwork` is what InstaNAS deploys: the controller's greedy policy picks a
child per image, images that share a child run together, and only the child's options are
computed, so the measured latency of an image reflects its own child.
:func:`export_policy` records which child each input gets and how often each child is used;
:class:`ChildNetwork` runs one child as a static network and :func:`evaluate_children` scores
every child the controller chose that way, the single architectures an instance-aware network
must beat; :func:`measure_per_image_latency` times images one at a time, controller included.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from optuna_devnas._checks import check_positive_int
from optuna_devnas.instanas._controller import Controller, greedy
from optuna_devnas.instanas._latency_table import OptionLatencyTable
from optuna_devnas.instanas._meta_graph import Child, MetaGraph, child_to_policy, policy_to_child
from optuna_devnas.instanas._options import OPTION_NAMES
from optuna_devnas.objectives import evaluate_error, measure_latency


class InstanceAwareNetwork(nn.Module):
    """A trained controller and meta-graph: ``network(x)`` runs each image's own child.

    Args:
        controller:
            Gives the option probabilities of each image.
        meta_graph:
            Runs the selected options.
        max_groups:
            A batch with at most this many distinct children runs child by child; with more,
            each option runs once on the images that selected it. Default 8.
    """

    def __init__(
        self, *, controller: Controller, meta_graph: MetaGraph, max_groups: int = 8
    ) -> None:
        super().__init__()
        check_positive_int(max_groups, "max_groups")
        self.controller = controller
        self.meta_graph = meta_graph
        self.max_groups = max_groups

    def policy(self, x: torch.Tensor) -> torch.Tensor:
        """The normalized greedy policy of each image, ``batch x blocks x options`` bool."""
        return self.meta_graph.normalize(greedy(self.controller(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        policy = self.policy(x)
        if x.shape[0] == 1:
            return self.meta_graph.forward_child(x, policy_to_child(policy[0]))
        rows, group = torch.unique(policy.flatten(1), dim=0, return_inverse=True)
        if rows.shape[0] > self.max_groups:
            # Many children: run each option once on the images that selected it instead of
            # once per child (the same outputs, fewer operator calls).
            return self.meta_graph(x, policy)
        # Group the images by child: each group runs only its child's options.
        out: torch.Tensor | None = None
        for g in range(rows.shape[0]):
            index = (group == g).nonzero().squeeze(1)  # (n_in_group,)
            child = policy_to_child(rows[g].view_as(policy[0]))
            logits = self.meta_graph.forward_child(x.index_select(0, index), child)
            if out is None:
                out = logits.new_empty(x.shape[0], logits.shape[1])
            out[index] = logits
        assert out is not None
        return out


@dataclass(frozen=True)
class PolicyExport:
    """Which child each input gets, and how often each child is used.

    Attributes:
        children:
            The distinct children, most used first; each is, per block, the indices of the
            options that run (``()`` is the identity).
        assignment:
            For each input, in order, the index of its child in ``children``.
        option_names:
            Names of the option indices.
    """

    children: tuple[Child, ...]
    assignment: tuple[int, ...]
    option_names: tuple[str, ...] = OPTION_NAMES

    @property
    def counts(self) -> tuple[int, ...]:
        """How many inputs use each child (aligned with ``children``)."""
        counter = Counter(self.assignment)
        return tuple(counter[i] for i in range(len(self.children)))

    def coverage(self, fraction: float = 0.9) -> int:
        """How many of the most used children together serve at least ``fraction`` of inputs.

        One number for how instance-aware a policy is: 1 when a single child serves that share.
        """
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"Got fraction={fraction!r}, but expected 0 < fraction <= 1.")
        served = 0
        for used, count in enumerate(self.counts, start=1):
            served += count
            if served >= fraction * len(self.assignment):
                return used
        return len(self.children)

    def child_names(self, index: int) -> list[list[str]]:
        """Child ``index`` with option names instead of indices."""
        return [[self.option_names[k] for k in block] for block in self.children[index]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "option_names": list(self.option_names),
            "children": [[list(block) for block in child] for child in self.children],
            "counts": list(self.counts),
            "assignment": list(self.assignment),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyExport:
        return cls(
            children=tuple(
                tuple(tuple(int(k) for k in block) for block in child)
                for child in data["children"]
            ),
            assignment=tuple(int(i) for i in data["assignment"]),
            option_names=tuple(data["option_names"]),
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the export as JSON to ``path``."""
        Path(path).write_text(json.dumps(self.to_dict()))


@torch.no_grad()
def export_policy(
    network: InstanceAwareNetwork, x: torch.Tensor, *, batch_size: int = 256
) -> PolicyExport:
    """The greedy child of every image of ``x`` (network put in eval mode)."""
    network.eval()
    device = next(network.parameters()).device
    children: list[Child] = []
    for start in range(0, x.shape[0], batch_size):
        policy = network.policy(x[start : start + batch_size].to(device))
        children.extend(policy_to_child(row) for row in policy)
    ranked = [child for child, _ in Counter(children).most_common()]
    position = {child: i for i, child in enumerate(ranked)}
    return PolicyExport(
        children=tuple(ranked), assignment=tuple(position[child] for child in children)
    )


def measure_per_image_latency(
    model: Callable[[torch.Tensor], object],
    images: torch.Tensor,
    *,
    threads: int = 1,
    min_run_time: float = 0.05,
    clock: str = "auto",
) -> float:
    """Mean seconds per image when ``images`` go through ``model`` one at a time.

    One timed call runs every image at batch size 1, so an instance-aware network pays for
    its controller and for each image's own child; the median over timed calls comes from
    :func:`optuna_devnas.objectives.measure_latency`.

    Args:
        model:
            A module in eval mode (or any callable of a batch).
        images:
            ``n x channels x height x width``, on the device to time on.
        threads:
            Intra-op threads. Default 1.
        min_run_time:
            Seconds of timed calls at least. Default 0.05.
        clock:
            ``"auto"``, ``"wall"`` or ``"thread"`` (see
            ``optuna_devnas.objectives.resolve_clock``). Default ``"auto"``: this thread's CPU
            time on a one-thread CPU, so other processes on the machine disturb it less.
    """
    if images.dim() != 4 or images.shape[0] < 1:
        raise ValueError(
            f"Got images of shape {tuple(images.shape)}, but expected (n, channels, height, "
            "width) with n >= 1."
        )
    inputs: Sequence[torch.Tensor] = [images[i : i + 1] for i in range(images.shape[0])]

    def run_all(_: torch.Tensor) -> None:
        for image in inputs:
            model(image)

    total = measure_latency(
        run_all, images, threads=threads, warmup=1, min_run_time=min_run_time, clock=clock
    )
    return total / len(inputs)


class ChildNetwork(nn.Module):
    """One child of a meta-graph as a static network: every image runs ``child``'s options.

    Args:
        meta_graph:
            The trained meta-graph (its weights are shared, not copied).
        child:
            Per block, the indices of the options that run (as in :class:`PolicyExport`).
    """

    def __init__(self, *, meta_graph: MetaGraph, child: Child) -> None:
        super().__init__()
        if len(child) != meta_graph.num_blocks:
            raise ValueError(
                f"Got a child of {len(child)} blocks, but the meta-graph has "
                f"{meta_graph.num_blocks}."
            )
        self.meta_graph = meta_graph
        self.child = child

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.meta_graph.forward_child(x, self.child)


@dataclass(frozen=True)
class ChildEvaluation:
    """A child the controller chose, scored as a static network on all images.

    Attributes:
        child:
            The child (per block, the indices of its options).
        images:
            How many of the images the controller gives this child.
        error:
            Classification error of the child run on every image.
        table_latency:
            The option table's whole-network latency of the child (seconds, fixed parts
            included).
    """

    child: Child
    images: int
    error: float
    table_latency: float


@torch.no_grad()
def evaluate_children(
    network: InstanceAwareNetwork,
    x: torch.Tensor,
    y: torch.Tensor,
    table: OptionLatencyTable,
    *,
    max_children: int | None = None,
) -> list[ChildEvaluation]:
    """Every child the controller picks on ``x``, run alone on all of ``(x, y)``, most used first.

    An instance-aware network earns its controller only if it beats these single
    architectures: at equal error faster, or at equal latency more accurate.

    Args:
        network:
            The trained instance-aware network (put in eval mode).
        x, y:
            Images and labels, e.g. the validation split.
        table:
            The option latency table that prices each child.
        max_children:
            Score only the most used children, at most this many. Default None: all.
    """
    if max_children is not None:
        check_positive_int(max_children, "max_children")
    export = export_policy(network, x)
    device = next(network.parameters()).device
    evaluations = []
    for child, count in list(zip(export.children, export.counts, strict=True))[:max_children]:
        policy = child_to_policy(child, network.meta_graph.num_options).to(device)
        alone = ChildNetwork(meta_graph=network.meta_graph, child=child)
        evaluations.append(
            ChildEvaluation(
                child=child,
                images=count,
                error=evaluate_error(alone, x, y),
                table_latency=float(table.predict(policy)),
            )
        )
    return evaluations
