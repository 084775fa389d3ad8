from __future__ import annotations

import os
import threading

import pytest

from optuna_devnas.tracking._requests import (
    MAX_RETRIES_VARIABLE,
    TIMEOUT_VARIABLE,
    fail_fast,
)


def test_fail_fast_sets_mlflow_http_settings_only_while_tracking(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(TIMEOUT_VARIABLE, raising=False)
    monkeypatch.setenv(MAX_RETRIES_VARIABLE, "7")  # the user's own setting wins
    with fail_fast(timeout=3, max_retries=0):
        assert os.environ[TIMEOUT_VARIABLE] == "3"
        assert os.environ[MAX_RETRIES_VARIABLE] == "7"
        with fail_fast(timeout=9, max_retries=2):  # nested: the outer block's settings hold
            assert os.environ[TIMEOUT_VARIABLE] == "3"
        assert os.environ[TIMEOUT_VARIABLE] == "3"
    assert TIMEOUT_VARIABLE not in os.environ
    assert os.environ[MAX_RETRIES_VARIABLE] == "7"


def test_fail_fast_restores_after_overlapping_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TIMEOUT_VARIABLE, raising=False)
    inside = threading.Barrier(2)
    seen: list[str | None] = []

    def work() -> None:
        with fail_fast(timeout=4, max_retries=0):
            inside.wait()
            seen.append(os.environ.get(TIMEOUT_VARIABLE))
            inside.wait()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == ["4", "4"]
    assert TIMEOUT_VARIABLE not in os.environ
