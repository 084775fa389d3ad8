"""Screenshots of Optuna Dashboard showing a DPPSampler study, taken with headless Chromium.

Runs a short real search (DPP-Net cells trained three epochs on scikit-learn's digits, parameter
count as the cheap objective) into a SQLite study unless ``--storage`` names one, starts
``optuna-dashboard`` on loopback and saves one PNG per page with Debian's ``chromium``:

    python scripts/dashboard_screenshot.py --output docs/images
    python scripts/dashboard_screenshot.py --storage sqlite:///demo.db --study demo --output out

Needs ``pip install optuna-dashboard`` and the ``chromium`` package (``apt-get install
chromium``).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
import contextlib
import json
from pathlib import Path
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings

import optuna

# Dashboard page (relative to the study's URL) -> file name.
PAGES = {
    "": "dashboard-study.png",
    "/analytics": "dashboard-analytics.png",
    "/trials": "dashboard-trials.png",
}


def run_search(storage: str, study_name: str, n_trials: int) -> None:
    """A short real DPPSampler search: validation error vs parameter count on digits."""
    from optuna_devnas import CellSpace, DPPSampler
    from optuna_devnas.objectives import ParamCount, ValidationError

    space = CellSpace(max_layers=2, depths=(1, 1), growth_rates=(8, 16))
    train = ValidationError(data="digits", epochs=3)
    size = ParamCount(input_shape=(1, 8, 8))

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        arch = space.suggest(trial)
        return train(arch, trial=trial), size(arch)

    sampler = DPPSampler(space=space, k=3, cheap_objectives={1: size.for_space(space)}, seed=0)
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        directions=["minimize", "minimize"],
        sampler=sampler,
        load_if_exists=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["val_error", "params"])
    study.optimize(objective, n_trials=n_trials)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def dashboard(storage: str) -> Iterator[str]:
    """``optuna-dashboard STORAGE`` on a free loopback port; yields its base URL."""
    port = _free_port()
    executable = Path(sys.executable).parent / "optuna-dashboard"
    command = [str(executable), storage, "--host", "127.0.0.1", "--port", str(port), "--quiet"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/meta", timeout=5).close()
                break
            except (urllib.error.URLError, ConnectionError):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("optuna-dashboard did not start") from None
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


def study_id(base: str, study_name: str) -> int:
    with urllib.request.urlopen(f"{base}/api/studies", timeout=10) as response:
        studies = json.load(response)["study_summaries"]
    return next(int(s["study_id"]) for s in studies if s["study_name"] == study_name)


def screenshot(chromium: str, url: str, output: Path, size: tuple[int, int]) -> None:
    """One headless Chromium screenshot; the time budget lets the page's plots render."""
    with tempfile.TemporaryDirectory() as profile:
        command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
        command += [f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}"]
        command += ["--virtual-time-budget=15000", f"--screenshot={output}", url]
        subprocess.run(command, check=True, capture_output=True, timeout=120)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", help="an existing study's storage (default: a new search)")
    parser.add_argument("--study", default="dpp-digits")
    parser.add_argument("--trials", type=int, default=12, help="trials of the new search")
    parser.add_argument("--output", type=Path, default=Path("docs/images"))
    parser.add_argument("--size", default="1400x900", help="window WIDTHxHEIGHT")
    args = parser.parse_args(argv)

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no chromium on PATH: apt-get install chromium")
    width, height = (int(n) for n in args.size.split("x"))
    args.output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        storage = args.storage or f"sqlite:///{Path(folder) / 'study.db'}"
        if args.storage is None:
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            run_search(storage, args.study, args.trials)
        with dashboard(storage) as base:
            url = f"{base}/dashboard/studies/{study_id(base, args.study)}"
            for page, name in PAGES.items():
                screenshot(chromium, url + page, args.output / name, (width, height))
                print(f"saved {args.output / name} ({url + page})")


if __name__ == "__main__":
    main()
