"""DPP-Net's progressive stages over a :class:`~optuna_devnas.spaces.CellSpace`, as plain values.

Use these functions to know which cells a stage may train. They take architectures and the
finished trials' outcomes (never a ``Study``), so every worker that sees the same finished trials
computes the same candidates.

- Stage 1 trains every one-layer cell (DPP-Net, Dong et al. ECCV 2018, section 3.2).
- Stage ``s`` for ``1 < s <= max_layers`` chooses among the children (one appended layer) of
  the usable ``(s - 1)``-layer cells trained so far: the parents were selected by the stages
  before, so this is DPP-Net's "expand the selected cells". The children of shorter usable
  cells that no stage trained stay candidates too: a stage ranks them beside its own, so a
  deeper stage whose children cannot improve the front spends its trials where they can
  (DPP-Net's fixed depth schedule would spend them on the deeper cells regardless). A trained
  ``a`` also stands for ``a-identity``, the same network one layer longer, so cells with an
  inner ``identity`` (``a-identity-conv3x3``) are grown too.
- After the last stage the search goes on over the one-layer changes (append, remove the last
  layer, replace one layer) of the current Pareto set, so any trial budget is used.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from optuna_devnas.samplers._pareto import Maximized, pareto_mask
from optuna_devnas.spaces import IDENTITY, Architecture, CellSpace, choices_at


@dataclass(frozen=True)
class Outcome:
    """A finished trial as the stages see it.

    Args:
        architecture:
            The cell the trial trained.
        stage:
            The stage that proposed it (0 for trials the stages did not propose).
        values:
            Objective values, maximized (``_pareto.Maximized``; ``None`` unless the trial
            completed).
        usable:
            Whether the trial may become a parent: it completed, with finite values, and
            satisfied its constraints.
    """

    architecture: Architecture
    stage: int
    values: Maximized | None
    usable: bool


def pareto_set(outcomes: Sequence[Outcome]) -> list[Architecture]:
    """The usable architectures no other usable architecture dominates, in trial order."""
    usable = [(o.architecture, o.values) for o in outcomes if o.usable and o.values is not None]
    if not usable:
        return []
    mask = pareto_mask([values for _, values in usable]).tolist()
    return _unique(arch for (arch, _), keep in zip(usable, mask) if keep)


def neighbours(space: CellSpace, arch: Architecture) -> list[Architecture]:
    """Cells one layer change away from ``arch``: append, remove the last layer, or replace one.

    Only the last layer can be removed: removing an inner layer would shift every later layer
    onto a position that takes the other kind (convolution or normalization).
    """
    found: list[Architecture] = []
    if arch.n_layers < space.max_layers:
        found.extend(arch.children())
    if arch.n_layers > 1:
        found.append(arch.with_layers(arch.layers[:-1]))
    for position, current in enumerate(arch.layers):
        for name in choices_at(position):
            if name != current:
                layers = list(arch.layers)
                layers[position] = name
                found.append(arch.with_layers(layers))
    return found


def stage_candidates(
    space: CellSpace, stage: int, outcomes: Sequence[Outcome]
) -> list[Architecture]:
    """The architectures stage ``stage`` chooses from, given the outcomes of earlier stages.

    Args:
        space:
            The cell space.
        stage:
            The stage, from 1.
        outcomes:
            The finished trials of the stages before ``stage``.

    Returns:
        Distinct networks in a deterministic order, each as its canonical architecture
        (:meth:`~optuna_devnas.spaces.Architecture.canonical`: a child that appends
        ``identity`` is its parent), evaluated ones included: the caller removes what is held.
    """
    if stage < 1:
        raise ValueError(f"Got stage={stage}, but expected a stage >= 1.")
    if stage == 1:
        return _unique(space.initial())
    if stage <= space.max_layers:
        trained = _unique(o.architecture for o in outcomes if o.usable)
        if any(a.n_layers == stage - 1 for a in trained):
            # ``a-identity`` is a trained cell one layer longer (it builds ``a``'s network), so
            # its children (``a-identity-conv3x3``) belong to the stage after ``a``'s children.
            usable = trained + [p for p in (_padded(space, a) for a in trained) if p is not None]
            parents = [a for a in usable if a.n_layers == stage - 1]
            # The stage's own children first, then those earlier stages left untrained.
            shorter = sorted(
                (a for a in usable if a.n_layers < stage - 1), key=lambda a: -a.n_layers
            )
            return _unique(child for parent in parents + shorter for child in parent.children())
        # No usable cell of ``stage - 1`` layers (all failed or infeasible): grow the Pareto set
        # by one-layer changes instead, as after the last stage.
    return _unique(
        neighbour for parent in pareto_set(outcomes) for neighbour in neighbours(space, parent)
    )


def _padded(space: CellSpace, arch: Architecture) -> Architecture | None:
    """``arch`` with a trailing ``identity`` when the next position takes one, else ``None``."""
    if arch.n_layers >= space.max_layers or IDENTITY not in choices_at(arch.n_layers):
        return None
    return arch.with_layers((*arch.layers, IDENTITY))


def _unique(archs: Iterable[Architecture]) -> list[Architecture]:
    """The distinct networks of ``archs`` as canonical architectures, in first-seen order."""
    seen: set[Architecture] = set()
    out: list[Architecture] = []
    for arch in (a.canonical() for a in archs):
        if arch not in seen:
            seen.add(arch)
            out.append(arch)
    return out
