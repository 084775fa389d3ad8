"""The settings of an InstaNAS run, validated when made; defaults follow the paper's CIFAR runs.

The paper's values (InstaNAS sections 3.3-3.4 and its released code): reward weights
``pos_w = 30``, ``neg_w = 0``; upper bound from ``0.7 L_all`` to ``0.5 L_mbv2``; drop rate rising
to 0.5; exploration ``alpha = 0.8``; entropy bonus 0.8. Epoch counts and widths default to
CPU-sized runs; raise them on a GPU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from optuna_devnas._checks import check_positive_int
from optuna_devnas._device import resolve_device


@dataclass(frozen=True, kw_only=True)
class InstaNASConfig:
    """Settings of :class:`~optuna_devnas.instanas.InstaNAS`.

    Args:
        width_mult:
            MobileNetV2 width multiplier of the meta-graph. Default 1.0.
        stem_stride:
            Stride of the stem; None: 1 for inputs of 32 pixels or less, else 2. Default None.
        pretrain_epochs:
            Meta-graph pre-training epochs (phase 1). Default 2.
        search_epochs:
            Alternating controller / meta-graph epochs (phase 2); ``T`` of the bound. Default 4.
        finetune_epochs:
            Meta-graph epochs with the controller frozen (phase 3). Default 1.
        lr:
            Meta-graph learning rate (SGD, Nesterov, cosine over all phases). Default 0.05.
        controller_lr:
            Controller learning rate (Adam). Default 1e-3.
        weight_decay:
            Meta-graph weight decay. Default 4e-5 (MobileNetV2's).
        batch_size:
            Mini-batch size. Default 64.
        pos_w:
            Reward scale of a right prediction. Default 30.
        neg_w:
            Reward of a wrong prediction. Default 0.
        upper_start:
            First upper latency bound, as a fraction of ``L_all``. Default 0.7.
        upper_end:
            Last upper latency bound, as a fraction of ``L_mbv2``. Default 0.5.
        max_drop_rate:
            Drop rate reached at the end of pre-training. Default 0.5.
        exploration:
            ``alpha`` of ``p' = alpha p + (1 - alpha)(1 - p)``. Default 0.8.
        entropy_weight:
            Weight of the policy-entropy bonus, the entropy of an image's 17 x 5 Bernoullis
            summed (as the policy gradient's log-probability is). Default 0.8.
        controller_resolution:
            Side of the down-sampled image the controller sees. Default 16.
        controller_width:
            Channels of the controller's first stage. Default 16.
        latency_images:
            Validation images timed one by one for the measured latency. Default 64.
        measure_every_epoch:
            Also measure latency after every search and fine-tune epoch. Default True.
        table_rounds:
            Interleaved rounds when measuring the option latency table. Default 3.
        threads:
            Intra-op threads for training and timing. Default 1.
        seed:
            Seed of weights, batch order, dropped options and sampled policies. Default 0.
        device:
            Torch device, ``"cpu"`` or ``"cuda"``. Default ``"cpu"``.
    """

    width_mult: float = 1.0
    stem_stride: int | None = None
    pretrain_epochs: int = 2
    search_epochs: int = 4
    finetune_epochs: int = 1
    lr: float = 0.05
    controller_lr: float = 1e-3
    weight_decay: float = 4e-5
    batch_size: int = 64
    pos_w: float = 30.0
    neg_w: float = 0.0
    upper_start: float = 0.7
    upper_end: float = 0.5
    max_drop_rate: float = 0.5
    exploration: float = 0.8
    entropy_weight: float = 0.8
    controller_resolution: int = 16
    controller_width: int = 16
    latency_images: int = 64
    measure_every_epoch: bool = True
    table_rounds: int = 3
    threads: int = 1
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        positive_ints = (
            "search_epochs",
            "batch_size",
            "controller_resolution",
            "controller_width",
            "latency_images",
            "table_rounds",
            "threads",
        )
        for name in positive_ints:
            value = getattr(self, name)
            check_positive_int(value, name)
        for name in ("pretrain_epochs", "finetune_epochs"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"Got {name}={value!r}, but expected a non-negative integer.")
        for name in ("width_mult", "lr", "controller_lr", "upper_start", "upper_end", "pos_w"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Got {name}={getattr(self, name)!r}, but expected > 0.")
        if self.weight_decay < 0 or self.entropy_weight < 0:
            raise ValueError(
                f"Got weight_decay={self.weight_decay!r} and entropy_weight="
                f"{self.entropy_weight!r}, but expected non-negative numbers."
            )
        if not 0.0 <= self.max_drop_rate < 1.0:
            raise ValueError(
                f"Got max_drop_rate={self.max_drop_rate!r}, but expected a value in [0, 1)."
            )
        if not 0.5 < self.exploration <= 1.0:
            raise ValueError(
                f"Got exploration={self.exploration!r}, but expected a value in (0.5, 1]."
            )
        if self.stem_stride not in (None, 1, 2):
            raise ValueError(f"Got stem_stride={self.stem_stride!r}, but expected 1, 2 or None.")
        resolve_device(self.device)

    @property
    def total_epochs(self) -> int:
        """Meta-graph training epochs over all phases (the static baseline's budget)."""
        return self.pretrain_epochs + self.search_epochs + self.finetune_epochs

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
