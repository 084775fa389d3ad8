"""InstaNAS's reward: right answers earn a parabola in latency between two shrinking bounds.

With ``z`` a child's table latency after ``t`` of ``T`` search epochs, InstaNAS (section 3.3)
uses the upper bound ``U_t = a L_all - (a L_all - b L_mbv2) t / T`` (``a = 0.7``,
``b = 0.5``), the lower bound ``L = L_min``, the latency reward
``R_lat = max(0, -(z - U_t)(z - L) / ((U_t - L)^2 / 4))`` (1 halfway between the bounds, 0
outside them), and ``R = pos_w R_lat`` for a right prediction, ``neg_w`` for a wrong one. The
trainer counts ``t`` in fractions of an epoch (mini-batches done over mini-batches per epoch),
so the bound shrinks a little at every controller step and reaches ``b L_mbv2`` at the last
one. Everything here takes and returns tensors; nothing trains.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def latency_reward(z: torch.Tensor, *, upper: float, lower: float) -> torch.Tensor:
    """``max(0, -(z - upper)(z - lower) / ((upper - lower)^2 / 4))``, elementwise."""
    if not upper > lower:
        raise ValueError(f"Got upper={upper!r} and lower={lower!r}, but expected upper > lower.")
    return torch.clamp(-(z - upper) * (z - lower) / ((upper - lower) ** 2 / 4.0), min=0.0)


@dataclass(frozen=True)
class RewardSchedule:
    """InstaNAS's reward with its shrinking upper bound.

    Args:
        all_latency:
            ``L_all``: table latency of the child with every option on (seconds).
        mbv2_latency:
            ``L_mbv2``: table latency of MobileNetV2's child (seconds).
        min_latency:
            ``L_min``: table latency of the cheapest child, the lower bound (seconds).
        epochs:
            ``T``: number of search epochs over which the upper bound shrinks.
        upper_start:
            ``a``: the first upper bound is ``a L_all``. Default 0.7.
        upper_end:
            ``b``: the last upper bound is ``b L_mbv2``. Default 0.5.
        pos_w:
            Reward scale of a right prediction. Default 30.
        neg_w:
            Reward of a wrong prediction. Default 0.
    """

    all_latency: float
    mbv2_latency: float
    min_latency: float
    epochs: int
    upper_start: float = 0.7
    upper_end: float = 0.5
    pos_w: float = 30.0
    neg_w: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"Got epochs={self.epochs!r}, but expected a positive integer.")
        if not (0.0 <= self.min_latency < self.all_latency and self.mbv2_latency > 0):
            raise ValueError(
                f"Got min_latency={self.min_latency!r}, mbv2_latency={self.mbv2_latency!r}, "
                f"all_latency={self.all_latency!r}, but expected 0 <= L_min < L_all and "
                "L_mbv2 > 0."
            )
        for name in ("upper_start", "upper_end"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Got {name}={getattr(self, name)!r}, but expected > 0.")
        for epoch in (0, self.epochs):
            if not self.upper(epoch) > self.min_latency:
                raise ValueError(
                    f"Got upper_start={self.upper_start!r} and upper_end={self.upper_end!r}, "
                    f"but the upper bound at epoch {epoch} ({self.upper(epoch):.3g} s) is not "
                    f"above L_min ({self.min_latency:.3g} s) on this latency table; expected "
                    "larger bounds."
                )

    def upper(self, epoch: float) -> float:
        """``U_t`` after ``epoch`` search epochs (fractional; clipped to ``[0, T]``)."""
        start = self.upper_start * self.all_latency
        end = self.upper_end * self.mbv2_latency
        fraction = min(max(epoch, 0), self.epochs) / self.epochs
        return start - (start - end) * fraction

    def latency_reward(self, z: torch.Tensor, epoch: float) -> torch.Tensor:
        """``R_lat`` of table latencies ``z`` after ``epoch`` search epochs."""
        return latency_reward(z, upper=self.upper(epoch), lower=self.min_latency)

    def __call__(self, z: torch.Tensor, correct: torch.Tensor, epoch: float) -> torch.Tensor:
        """Reward ``pos_w R_lat`` where ``correct``, else ``neg_w``; shape of ``z``."""
        positive = self.pos_w * self.latency_reward(z, epoch)
        return torch.where(correct, positive, torch.full_like(positive, self.neg_w))
