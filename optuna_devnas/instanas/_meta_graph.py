"""InstaNAS's one-shot meta-graph: MobileNetV2's 17 blocks, each a sum of five options.

A *policy* is a boolean tensor of shape ``batch x 17 x 5``: which options of which block run for
each image. A block's output is the sum of its selected options, plus the identity when the block
keeps the shape; a block with none selected is the identity, and a block that changes shape falls
back to its basic block (InstaNAS section 3.1). :func:`normalize_policy` applies that rule, so a
policy, its *child* (per block, the tuple of option indices that run) and its latency agree.

Only selected options are computed: in :meth:`MetaGraph.forward` each option runs on the images
that selected it (gathered, then scattered back), and :meth:`MetaGraph.forward_child` runs one
child's options on a whole batch. Skipped options cost nothing, in training and at inference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import nn
from torchvision.ops.misc import Conv2dNormActivation

from optuna_devnas._errors import InputShapeError
from optuna_devnas.instanas._options import (
    BASIC_OPTION,
    MBV2_OPTION,
    OPTION_NAMES,
    BlockSpec,
    block_specs,
    build_option,
    check_input_shape,
)

Child = tuple[tuple[int, ...], ...]
"""Per block, the indices (into ``OPTION_NAMES``) of the options that run; ``()`` = identity."""


class MetaBlock(nn.Module):
    """One block of the meta-graph: five parallel options whose selected outputs are summed."""

    def __init__(self, spec: BlockSpec) -> None:
        super().__init__()
        self.spec = spec
        self.residual = not spec.changes_shape
        self.options = nn.ModuleList(build_option(spec, k) for k in range(len(OPTION_NAMES)))

    def zero_init(self) -> None:
        """Zero the last normalization of each option of a residual block.

        Five summed branches added to the identity at each of ten residual blocks would make
        the residual stream's variance explode at initialization; with the last scale at zero
        every residual block starts as the identity (Goyal et al. 2017, section 5.1).
        """
        if self.residual:
            for option in self.options:
                last = list(option.modules())[-1]
                assert isinstance(last, nn.BatchNorm2d)
                nn.init.zeros_(last.weight)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x``: ``batch x C x H x W``; ``mask``: ``batch x 5`` bool, already normalized."""
        if self.residual:
            out = x
        else:
            height, width = self.spec.output_size
            out = x.new_zeros(x.shape[0], self.spec.out_channels, height, width)
        for k, option in enumerate(self.options):
            index = mask[:, k].nonzero().squeeze(1)  # (n_selected,)
            if index.numel() == 0:
                continue
            if index.numel() == x.shape[0]:
                out = out + option(x)
            else:
                out = out.index_add(0, index, option(x.index_select(0, index)))
        return out

    def forward_options(self, x: torch.Tensor, options: tuple[int, ...]) -> torch.Tensor:
        """Run only ``options`` on the whole batch (the child's view of the block)."""
        out = x if self.residual else None
        for k in options:
            y = self.options[k](x)
            out = y if out is None else out + y
        if out is None:
            raise ValueError(
                f"Got options=() for block {self.spec.index}, but a block that changes shape "
                "needs at least one option (normalize the policy first)."
            )
        return out


class MetaGraph(nn.Module):
    """MobileNetV2's stem, 17 meta-blocks of five options each, and MobileNetV2's head.

    Args:
        num_classes:
            Number of classes of the classifier.
        input_shape:
            ``(channels, height, width)`` of the images. Default ``(3, 32, 32)``.
        width_mult:
            MobileNetV2's width multiplier (channels rounded to multiples of 8). Default 1.0.
        stem_stride:
            Stride of the stem convolution; None picks 1 for inputs of 32 pixels or less and 2
            otherwise. Default None.
        dropout:
            Dropout before the classifier, as in MobileNetV2. Default 0.2.
    """

    changes_shape: torch.Tensor  # (blocks,) bool buffer: which blocks cannot be the identity

    def __init__(
        self,
        *,
        num_classes: int,
        input_shape: Sequence[int] = (3, 32, 32),
        width_mult: float = 1.0,
        stem_stride: int | None = None,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"Got num_classes={num_classes!r}, but expected an integer >= 2.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"Got dropout={dropout!r}, but expected a value in [0, 1).")
        self.input_shape = check_input_shape(input_shape)
        self.width_mult = float(width_mult)
        stride, stem_channels, last_channels, specs = block_specs(
            self.input_shape, width_mult=width_mult, stem_stride=stem_stride
        )
        self.stem_stride = stride
        self.specs = tuple(specs)
        self.stem = Conv2dNormActivation(
            self.input_shape[0], stem_channels, stride=stride, activation_layer=nn.ReLU6
        )
        self.blocks = nn.ModuleList(MetaBlock(spec) for spec in specs)
        self.head = Conv2dNormActivation(
            specs[-1].out_channels, last_channels, kernel_size=1, activation_layer=nn.ReLU6
        )
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last_channels, num_classes))
        self.register_buffer(
            "changes_shape", torch.tensor([spec.changes_shape for spec in specs]), persistent=False
        )
        _init_like_torchvision(self)
        for block in self.meta_blocks:
            block.zero_init()

    @property
    def meta_blocks(self) -> list[MetaBlock]:
        """The 17 blocks, typed."""
        return [cast(MetaBlock, block) for block in self.blocks]

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    @property
    def num_options(self) -> int:
        return len(OPTION_NAMES)

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise InputShapeError(
                f"Got an input of shape {tuple(x.shape)}, but expected (batch, "
                f"{', '.join(map(str, self.input_shape))})."
            )

    def _classify(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        x = nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.classifier(x)

    def forward(self, x: torch.Tensor, policy: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of ``x`` where each image runs its own row of ``policy`` (None: all on).

        Args:
            x:
                Images, ``batch x channels x height x width``.
            policy:
                ``batch x 17 x 5`` booleans (or 0/1 floats); normalized here.
        """
        self._check(x)
        if policy is None:
            policy = torch.ones(
                x.shape[0], self.num_blocks, self.num_options, dtype=torch.bool, device=x.device
            )
        if tuple(policy.shape) != (x.shape[0], self.num_blocks, self.num_options):
            raise InputShapeError(
                f"Got a policy of shape {tuple(policy.shape)}, but expected "
                f"({x.shape[0]}, {self.num_blocks}, {self.num_options})."
            )
        policy = self.normalize(policy)
        x = self.stem(x)
        for b, block in enumerate(self.meta_blocks):
            x = block(x, policy[:, b])
        return self._classify(x)

    def forward_child(self, x: torch.Tensor, child: Child) -> torch.Tensor:
        """Logits of ``x`` running only ``child``'s options (the same child for every image)."""
        x = self.stem(x)
        for block, options in zip(self.meta_blocks, child, strict=True):
            x = block.forward_options(x, options)
        return self._classify(x)

    def normalize(self, policy: torch.Tensor) -> torch.Tensor:
        """``policy`` as booleans with the basic block on wherever a shape change has nothing."""
        return normalize_policy(policy, self.changes_shape)

    def reference_policy(self, name: str) -> torch.Tensor:
        """InstaNAS's reference children as a ``17 x 5`` policy.

        ``"mbv2"``: MobileNetV2's option everywhere; ``"all"``: every option on; ``"min"``: the
        basic block where the shape changes, identity elsewhere (the cheapest child).
        """
        policy = torch.zeros(self.num_blocks, self.num_options, dtype=torch.bool)
        if name == "mbv2":
            policy[:, MBV2_OPTION] = True
        elif name == "all":
            policy[:] = True
        elif name != "min":
            raise ValueError(f"Got name={name!r}, but expected 'mbv2', 'all' or 'min'.")
        return self.normalize(policy.unsqueeze(0).to(self.changes_shape.device))[0]


def normalize_policy(policy: torch.Tensor, changes_shape: torch.Tensor) -> torch.Tensor:
    """Boolean ``... x blocks x options`` policy with the fallback rule applied.

    Args:
        policy:
            ``... x blocks x options``, booleans or 0/1 numbers.
        changes_shape:
            ``blocks`` booleans: which blocks cannot be the identity.
    """
    policy = policy.bool()
    empty = ~policy.any(dim=-1) & changes_shape  # (..., blocks)
    fallback = torch.zeros_like(policy)
    fallback[..., BASIC_OPTION] = empty
    return policy | fallback


def policy_to_child(policy: torch.Tensor) -> Child:
    """The child of one normalized ``blocks x options`` policy."""
    return tuple(
        tuple(k for k, on in enumerate(row) if on) for row in policy.bool().cpu().tolist()
    )


def child_to_policy(child: Child, num_options: int = len(OPTION_NAMES)) -> torch.Tensor:
    """The ``blocks x options`` boolean policy of ``child``."""
    policy = torch.zeros(len(child), num_options, dtype=torch.bool)
    for b, options in enumerate(child):
        for k in options:
            policy[b, k] = True
    return policy


def _init_like_torchvision(model: nn.Module) -> None:
    # MobileNetV2's initialisation (torchvision.models.MobileNetV2.__init__), so the meta-graph
    # and the static baseline start alike.
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
