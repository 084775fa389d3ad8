"""InstaNAS: instance-aware architecture search as one trainable Optuna trial.

A controller picks, for each image, which options of a one-shot MobileNetV2 meta-graph run
(Cheng, Lin, Juan, Wei, Sun, "InstaNAS: Instance-aware Neural Architecture Search", AAAI 2020).
:class:`InstaNAS` trains both in three phases against a reward that trades accuracy for
latency measured on the device at hand (:class:`OptionLatencyTable`);
:class:`InstaNASObjective` runs it inside an Optuna trial and returns
``(validation error, mean measured latency per image)``.
"""

from optuna_devnas.instanas._baseline import BaselineResult, mobilenet_v2_baseline, train_baseline
from optuna_devnas.instanas._config import InstaNASConfig
from optuna_devnas.instanas._controller import Controller
from optuna_devnas.instanas._inference import (
    ChildEvaluation,
    ChildNetwork,
    InstanceAwareNetwork,
    PolicyExport,
    evaluate_children,
    export_policy,
    measure_per_image_latency,
)
from optuna_devnas.instanas._latency_table import OptionLatencyTable
from optuna_devnas.instanas._meta_graph import MetaGraph, child_to_policy, policy_to_child
from optuna_devnas.instanas._options import OPTION_NAMES
from optuna_devnas.instanas._reward import RewardSchedule, latency_reward
from optuna_devnas.instanas._trainer import InstaNAS, InstaNASResult
from optuna_devnas.instanas._trial import DEFAULT_SEARCH_SPACE, InstaNASObjective, suggest_config

__all__ = [
    "DEFAULT_SEARCH_SPACE",
    "OPTION_NAMES",
    "BaselineResult",
    "ChildEvaluation",
    "ChildNetwork",
    "Controller",
    "InstaNAS",
    "InstaNASObjective",
    "InstaNASConfig",
    "InstaNASResult",
    "InstanceAwareNetwork",
    "MetaGraph",
    "OptionLatencyTable",
    "PolicyExport",
    "RewardSchedule",
    "child_to_policy",
    "evaluate_children",
    "export_policy",
    "latency_reward",
    "measure_per_image_latency",
    "mobilenet_v2_baseline",
    "policy_to_child",
    "suggest_config",
    "train_baseline",
]
