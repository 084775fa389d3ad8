"""Small InstaNAS settings shared by the tests: 8x8 digits in RGB, a quarter-width meta-graph.

The option latency table is measured once per session (one round): tests that train pass it
in, so their rewards do not depend on a timing taken while other processes load the machine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
import dataclasses
import os
from pathlib import Path
import shutil

import pytest
import torch

from optuna_devnas.data import TensorData, load_digits
from optuna_devnas.instanas import InstaNASConfig, MetaGraph, OptionLatencyTable

TINY = InstaNASConfig(
    width_mult=0.25,
    pretrain_epochs=1,
    search_epochs=1,
    finetune_epochs=1,
    controller_resolution=8,
    controller_width=8,
    latency_images=4,
    measure_every_epoch=False,
    table_rounds=1,
)
"""Settings of the quick runs: 8x8 inputs, few epochs, tiny latency measurements."""


def subset(data: TensorData, n_train: int, n_val: int | None = None) -> TensorData:
    """``data`` with only its first ``n_train`` training (and ``n_val`` validation) images."""
    return dataclasses.replace(
        data,
        train_x=data.train_x[:n_train],
        train_y=data.train_y[:n_train],
        val_x=data.val_x[:n_val],
        val_y=data.val_y[:n_val],
    )


@pytest.fixture(scope="session")
def tiny() -> InstaNASConfig:
    return TINY


@pytest.fixture(scope="session")
def take() -> Callable[..., TensorData]:
    """:func:`subset` as a fixture (test modules do not import the conftest)."""
    return subset


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # Two OpenMP threads on a CPU that other processes keep busy spin-wait and slow small
    # convolutions down tenfold; InstaNAS itself trains with config.threads (default 1).
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def digits() -> TensorData:
    return load_digits(channels=3)


@pytest.fixture(scope="session")
def table(digits: TensorData) -> OptionLatencyTable:
    torch.manual_seed(0)
    meta_graph = MetaGraph(num_classes=10, input_shape=digits.input_shape, width_mult=0.25)
    return OptionLatencyTable.measure(meta_graph, rounds=1, min_run_time=0.002)


@pytest.fixture(scope="session")
def fixed_table() -> OptionLatencyTable:
    """A table measured once for the tiny meta-graph and shipped with the tests.

    Tests that train reward with it: a table measured during the run changes with the load of
    the machine, and with it the policy the controller learns and the error it reaches.
    """
    torch.manual_seed(0)
    meta_graph = MetaGraph(num_classes=10, input_shape=(3, 8, 8), width_mult=0.25)
    table = OptionLatencyTable.load(Path(__file__).parent / "option_latency_tiny.json")
    table.check(meta_graph)
    return table


@pytest.fixture(scope="session")
def migrated_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """An empty, migrated MLflow SQLite store (copy it; never write to it).

    A fresh store runs MLflow's schema migrations (seconds of CPU), so one is kept in pytest's
    cache per MLflow version, under the same key as the tracking tests' store.
    """
    import mlflow
    from mlflow import MlflowClient

    cache_provider = getattr(request.config, "cache", None)
    if cache_provider is None:
        cache = tmp_path_factory.mktemp("mlflow-store")
    else:
        cache = Path(cache_provider.mkdir(f"mlflow-store-{mlflow.__version__}"))
    template = cache / "mlflow.db"
    if not template.exists():
        building = tmp_path_factory.mktemp("template") / "mlflow.db"
        MlflowClient(f"sqlite:///{building}").search_experiments()
        partial = cache / f"partial-{os.getpid()}.db"
        shutil.copy(building, partial)
        os.replace(partial, template)
    return template
