"""Search spaces: DPP-Net's ``CellSpace``, the ``Architecture`` value and its network builder."""

from optuna_devnas.spaces._architecture import Architecture, choices_at
from optuna_devnas.spaces._cell_space import ARCHITECTURE_ATTR, SPACE_ATTR, CellSpace
from optuna_devnas.spaces._network import (
    DenseCellNetwork,
    condense,
    condense_stage,
    group_lasso_penalty,
)
from optuna_devnas.spaces._ops import (
    CONVOLUTIONS,
    IDENTITY,
    NORMALIZATIONS,
    CondensedGroupConv,
    LearnedGroupConv,
)

__all__ = [
    "ARCHITECTURE_ATTR",
    "Architecture",
    "CONVOLUTIONS",
    "CellSpace",
    "IDENTITY",
    "CondensedGroupConv",
    "DenseCellNetwork",
    "LearnedGroupConv",
    "NORMALIZATIONS",
    "SPACE_ATTR",
    "choices_at",
    "condense",
    "condense_stage",
    "group_lasso_penalty",
]
