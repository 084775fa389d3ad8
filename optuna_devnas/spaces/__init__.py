"""Search spaces: DPP-Net's ``CellSpace``, the ``Architecture`` value and its network builder."""

from optuna_devnas.spaces._architecture import Architecture, choices_at
from optuna_devnas.spaces._cell_space import ARCHITECTURE_ATTR, SPACE_ATTR, CellSpace
from optuna_devnas.spaces._network import (
    DenseCellNetwork,
    DenseStage,
    condense,
    condense_stage,
    group_lasso_penalty,
    learned_group_convs,
)
from optuna_devnas.spaces._ops import (
    CONVOLUTIONS,
    IDENTITY,
    NORMALIZATIONS,
    CondensedGroupConv,
    LearnedGroupConv,
    build_convolution,
    build_normalization,
    is_convolution,
)

__all__ = [
    "ARCHITECTURE_ATTR",
    "Architecture",
    "CONVOLUTIONS",
    "CellSpace",
    "CondensedGroupConv",
    "DenseCellNetwork",
    "DenseStage",
    "IDENTITY",
    "LearnedGroupConv",
    "NORMALIZATIONS",
    "SPACE_ATTR",
    "build_convolution",
    "build_normalization",
    "choices_at",
    "condense",
    "condense_stage",
    "group_lasso_penalty",
    "is_convolution",
    "learned_group_convs",
]
