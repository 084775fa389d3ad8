"""The instance-aware trial: one whole InstaNAS run inside an ordinary Optuna objective.

The trial suggests InstaNAS's hyperparameters (latency bounds, reward weights, learning rates,
epochs: whatever the search space names), trains, sends the controller's per-step reward,
accuracy, table latency, policy entropy and options used, and each epoch's validation error and
measured latency to :func:`optuna_devnas.tracking.log_step` (the MLflow tracker puts them in the
trial's run), reports intermediate values to single-objective studies so pruners work, and
returns ``(validation error, mean measured seconds per image)`` for a two-objective study.
"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from optuna_devnas._device import intra_op_threads
from optuna_devnas.data import TensorData, load_data
from optuna_devnas.instanas._config import InstaNASConfig
from optuna_devnas.instanas._latency_table import OptionLatencyTable, meta_graph_layout
from optuna_devnas.instanas._trainer import InstaNAS, InstaNASResult

PARAM_PREFIX = "instanas."

DEFAULT_SEARCH_SPACE: dict[str, BaseDistribution] = {
    "upper_start": FloatDistribution(0.3, 0.9),
    "upper_end": FloatDistribution(0.5, 1.5),
    "pos_w": FloatDistribution(3.0, 50.0, log=True),
    "neg_w": FloatDistribution(-10.0, 0.0),
    "lr": FloatDistribution(0.01, 0.1, log=True),
    "controller_lr": FloatDistribution(1e-3, 3e-2, log=True),
}
"""InstaNAS settings a trial suggests by default (parameter names get the ``instanas.`` prefix).

Epoch counts and widths stay fixed unless a search space names them, e.g.
``{"search_epochs": IntDistribution(2, 8)}``.
"""

_FIELDS = {f.name for f in dataclasses.fields(InstaNASConfig)}


def _check_space(space: Mapping[str, BaseDistribution]) -> dict[str, BaseDistribution]:
    for name, distribution in space.items():
        if name not in _FIELDS:
            raise ValueError(
                f"Got a search space with {name!r}, but expected InstaNASConfig fields "
                f"({', '.join(sorted(_FIELDS))})."
            )
        if not isinstance(
            distribution, (FloatDistribution, IntDistribution, CategoricalDistribution)
        ):
            raise ValueError(
                f"Got {name}={distribution!r}, but expected an optuna FloatDistribution, "
                "IntDistribution or CategoricalDistribution."
            )
    return dict(space)


def suggest_config(
    trial: optuna.Trial,
    base: InstaNASConfig | None = None,
    search_space: Mapping[str, BaseDistribution] | None = None,
) -> InstaNASConfig:
    """``base`` with the fields of ``search_space`` suggested by ``trial``.

    Args:
        trial:
            The trial that suggests; parameters are named ``instanas.<field>``.
        base:
            The settings not searched. Default: ``InstaNASConfig()``.
        search_space:
            Field name -> Optuna distribution. Default :data:`DEFAULT_SEARCH_SPACE`.
    """
    base = InstaNASConfig() if base is None else base
    space = _check_space(DEFAULT_SEARCH_SPACE if search_space is None else search_space)
    values: dict[str, Any] = {}
    for name, d in space.items():
        key = PARAM_PREFIX + name
        if isinstance(d, FloatDistribution):
            values[name] = trial.suggest_float(key, d.low, d.high, log=d.log, step=d.step)
        elif isinstance(d, IntDistribution):
            values[name] = trial.suggest_int(key, d.low, d.high, log=d.log, step=d.step)
        elif isinstance(d, CategoricalDistribution):
            values[name] = trial.suggest_categorical(key, d.choices)
    return dataclasses.replace(base, **values)


class InstaNASObjective:
    """An Optuna objective whose every trial is one InstaNAS run.

    Example:

        .. code-block:: python

            objective = InstaNASObjective(data="digits32", config=InstaNASConfig(width_mult=0.5))
            study = optuna.create_study(directions=["minimize", "minimize"])
            study.optimize(objective, n_trials=10)
            study.best_trials  # the (validation error, seconds per image) Pareto front

    Each trial stores user attributes ``instanas:config`` (the settings it ran),
    ``instanas:table_latency`` and ``instanas:children`` (distinct children on the validation
    set) and ``instanas:child_counts`` (images per child, most used first).

    Args:
        data:
            A :class:`~optuna_devnas.data.TensorData` or a name for
            :func:`~optuna_devnas.data.load_data`. Default ``"digits32"``.
        config:
            Settings not searched. Default ``InstaNASConfig()``.
        search_space:
            Field name -> Optuna distribution. Default :data:`DEFAULT_SEARCH_SPACE`.
        latency_table:
            Option latency table to use; None measures one per meta-graph layout, once, on the
            first trial that needs it. Default None.
        data_root:
            Folder of CIFAR data. Default None.
    """

    def __init__(
        self,
        *,
        data: str | TensorData = "digits32",
        config: InstaNASConfig | None = None,
        search_space: Mapping[str, BaseDistribution] | None = None,
        latency_table: OptionLatencyTable | None = None,
        data_root: str | None = None,
    ) -> None:
        if config is not None and not isinstance(config, InstaNASConfig):
            raise ValueError(f"Got config={config!r}, but expected an InstaNASConfig or None.")
        self.config = InstaNASConfig() if config is None else config
        self.search_space = _check_space(
            DEFAULT_SEARCH_SPACE if search_space is None else search_space
        )
        self.data = data if isinstance(data, TensorData) else load_data(data, root=data_root)
        self._tables: dict[str, OptionLatencyTable] = {}
        if latency_table is not None:
            self._tables[repr(latency_table.layout)] = latency_table
        self.last_result: InstaNASResult | None = None

    def table_for(self, config: InstaNASConfig) -> OptionLatencyTable:
        """The option latency table of ``config``'s meta-graph layout (measured once)."""
        meta_graph, _ = InstaNAS(config=config).build(self.data)
        key = repr(meta_graph_layout(meta_graph))
        if key not in self._tables:
            with intra_op_threads(config.threads):
                self._tables[key] = OptionLatencyTable.measure(
                    meta_graph,
                    threads=config.threads,
                    rounds=config.table_rounds,
                    device=config.device,
                    seed=config.seed,
                )
        return self._tables[key]

    def __call__(self, trial: optuna.Trial) -> tuple[float, float]:
        config = suggest_config(trial, self.config, self.search_space)
        trial.set_user_attr("instanas:config", config.to_dict())
        instanas = InstaNAS(config=config, latency_table=self.table_for(config))
        result = instanas.fit(self.data, trial=trial)
        self.last_result = result
        trial.set_user_attr("instanas:table_latency", result.table_latency)
        trial.set_user_attr("instanas:children", len(result.policy.children))
        trial.set_user_attr("instanas:child_counts", list(result.policy.counts[:20]))
        return result.val_error, result.latency
