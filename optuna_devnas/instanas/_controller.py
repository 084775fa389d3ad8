"""InstaNAS's controller: a small ResNet that gives every image one Bernoulli per block option.

The controller sees a down-sampled copy of the image (InstaNAS section 3.2: it must cost little
next to the child it chooses) and ends in ``blocks x options`` sigmoids. Training samples from
an exploration-smoothed distribution ``p' = alpha p + (1 - alpha)(1 - p)``; inference runs an
option when ``p >= 0.5`` (the greedy policy).
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F
from torchvision.models.resnet import BasicBlock
from torchvision.ops.misc import Conv2dNormActivation

from optuna_devnas._checks import check_positive_int


def _downsample(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride=2, bias=False),
        nn.BatchNorm2d(out_channels),
    )


class Controller(nn.Module):
    """A three-stage ResNet of torchvision's basic blocks ending in ``blocks x options`` sigmoids.

    Args:
        in_channels:
            Channels of the images.
        num_blocks:
            Blocks of the meta-graph (17 for MobileNetV2).
        num_options:
            Options per block (5).
        resolution:
            The image is average-pooled (or resized up) to ``resolution x resolution`` first.
            Default 16.
        width:
            Channels of the first stage (doubled at each of the next two). Default 16.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        num_blocks: int,
        num_options: int,
        resolution: int = 16,
        width: int = 16,
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("num_blocks", num_blocks),
            ("num_options", num_options),
            ("resolution", resolution),
            ("width", width),
        ):
            check_positive_int(value, name)
        self.resolution = resolution
        self.num_blocks = num_blocks
        self.num_options = num_options
        self.features = nn.Sequential(
            Conv2dNormActivation(in_channels, width),
            BasicBlock(width, width),
            BasicBlock(width, 2 * width, 2, _downsample(width, 2 * width)),
            BasicBlock(2 * width, 4 * width, 2, _downsample(2 * width, 4 * width)),
        )
        self.fc = nn.Linear(4 * width, num_blocks * num_options)
        # Start undecided (p = 0.5 everywhere): every option is explored equally at first.
        nn.init.normal_(self.fc.weight, 0.0, 0.01)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Option probabilities, ``batch x blocks x options``."""
        if x.shape[-1] != self.resolution or x.shape[-2] != self.resolution:
            if x.shape[-1] >= self.resolution and x.shape[-2] >= self.resolution:
                x = F.adaptive_avg_pool2d(x, self.resolution)
            else:
                x = F.interpolate(x, size=self.resolution, mode="bilinear", align_corners=False)
        h = F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)  # (batch, 4 * width)
        logits = self.fc(h).view(-1, self.num_blocks, self.num_options)
        return torch.sigmoid(logits)


def explore(probs: torch.Tensor, alpha: float = 0.8) -> torch.Tensor:
    """InstaNAS's exploration: ``p' = alpha p + (1 - alpha)(1 - p)`` (section 3.3)."""
    return alpha * probs + (1.0 - alpha) * (1.0 - probs)


def greedy(probs: torch.Tensor) -> torch.Tensor:
    """The inference policy: an option runs when its probability is at least 0.5."""
    return probs >= 0.5


def bernoulli_entropy(probs: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of each Bernoulli, elementwise, safe at 0 and 1."""
    p = probs.clamp(1e-6, 1.0 - 1e-6)
    return -(p * p.log() + (1.0 - p) * (1.0 - p).log())
