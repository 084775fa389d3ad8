"""Screenshot of the MLflow UI comparing two searches at the study level (docs/tracking.md).

Runs two small searches of one problem (TPE and random sampling on ZDT1, 40 trials each, no
training) into one MLflow experiment with the same hypervolume bounds, serves the store with
``mlflow server``, and takes a picture of MLflow's "compare runs" page for the two parent runs
with headless Chromium (Debian's ``chromium`` package).

    python docs/tools/mlflow_screenshot.py [--output docs/images/mlflow-compare-searches.png]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import warnings

import optuna

from optuna_devnas.tracking import MLflowTracker

ROOT = Path(__file__).resolve().parents[2]
BOUNDS = [(0.0, 1.0), (0.0, 10.0)]


def objective(trial: optuna.Trial) -> tuple[float, float]:
    """ZDT1 (Zitzler, Deb and Thiele 2000) in six variables: a front that random sampling
    approaches slowly, so the two searches differ after a few dozen trials."""
    x = [trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(6)]
    g = 1.0 + 9.0 * sum(x[1:]) / 5
    return x[0], g * (1.0 - (x[0] / g) ** 0.5)


def search(name: str, sampler: optuna.samplers.BaseSampler, uri: str, trials: int) -> str:
    study = optuna.create_study(study_name=name, directions=["minimize"] * 2, sampler=sampler)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["f1", "f2"])
    tracker = MLflowTracker(tracking_uri=uri, experiment_name="compare", hypervolume_bounds=BOUNDS)
    with tracker.track(study):
        study.optimize(objective, n_trials=trials, callbacks=[tracker])
    run_id = tracker.parent_run_id(study)
    assert run_id is not None
    return run_id


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(store: str, folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    mlflow = Path(sys.executable).parent / "mlflow"
    server = subprocess.Popen(
        [str(mlflow), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", store, "--artifacts-destination", str(folder / "mlruns")],
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return server, url
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise TimeoutError(f"mlflow server did not answer on {url}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(ROOT / "docs/images/mlflow-compare-searches.png"))
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--size", default="1500,2050", help="browser window, pixels")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("needs Chromium: apt-get install chromium")
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        os.chdir(folder)
        store = f"sqlite:///{folder / 'mlflow.db'}"
        trials = args.trials
        runs = [
            search(
                "tpe", optuna.samplers.TPESampler(seed=0, multivariate=True), store, args.trials
            ),
            search("random", optuna.samplers.RandomSampler(seed=0), store, trials),
        ]
        server, url = serve(store, folder)
        try:
            query = urllib.parse.urlencode(
                {"runs": json.dumps(runs), "experiments": json.dumps(["1"])}
            )
            page = f"{url}/#/compare-runs?{query}"
            subprocess.run(
                [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                 f"--window-size={args.size}", "--virtual-time-budget=20000",
                 f"--screenshot={Path(args.output).resolve()}", page],
                check=True, capture_output=True, timeout=180,
            )  # fmt: skip
        finally:
            server.terminate()
            server.wait(timeout=30)
    from PIL import Image  # installed with matplotlib

    # 256 colours: a screenshot of a web page loses nothing visible, and the file a third.
    with Image.open(args.output) as image:
        small = image.convert("RGB").quantize(256)
    small.save(args.output, optimize=True)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
