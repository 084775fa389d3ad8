"""``devnas export``: a trained trial's network as TorchScript or ONNX, plus its architecture.

The network is rebuilt from the trial's architecture, loaded with the weights its trial saved
in the artifact store, condensed to its inference form, exported, then loaded back and checked
against the trained model on a batch of validation images before the command reports success.
Both files are written in a scratch folder next to the output and moved there only once the
check passed: an export writes both files or nothing.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import tempfile
from typing import Any
import warnings

import torch

from optuna_devnas._errors import DevnasError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a trained trial's network (TorchScript or ONNX)",
        description="Export a trial's trained network and its architecture JSON.",
    )
    parser.add_argument("--storage", required=True, help="Optuna storage URL")
    parser.add_argument("--study", required=True, help="study name")
    parser.add_argument("--trial", type=int, required=True, help="trial number")
    parser.add_argument("--format", choices=("torchscript", "onnx"), default="torchscript")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--artifacts", help="artifact folder (default: the study's)")
    parser.set_defaults(func=run)


def load_trained_model(
    storage: str, study_name: str, number: int, artifacts: str | None = None
) -> tuple[torch.nn.Module, Any, Any]:
    """The trained network of trial ``number``, its architecture, and the study's data."""
    from optuna.artifacts import FileSystemArtifactStore, download_artifact
    from optuna.artifacts.exceptions import ArtifactNotFound

    from optuna_devnas.commands._attrs import WEIGHTS_ATTR
    from optuna_devnas.commands._storage import load_study
    from optuna_devnas.data import load_data
    from optuna_devnas.spaces import ARCHITECTURE_ATTR, Architecture

    study, config = load_study(storage, study_name)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if number not in trials:
        raise DevnasError(f"Study {study_name!r} has no trial {number} (0..{len(trials) - 1}).")
    trial = trials[number]
    if WEIGHTS_ATTR not in trial.user_attrs or ARCHITECTURE_ATTR not in trial.user_attrs:
        raise DevnasError(
            f"Trial {number} has no trained weights (state {trial.state.name}); export a "
            "complete trial of a search that trains networks."
        )
    arch = Architecture.from_dict(trial.user_attrs[ARCHITECTURE_ATTR])
    data = load_data(config.data, seed=config.seed, root=config.data_root)
    model = arch.build(num_classes=data.num_classes, input_shape=data.input_shape)
    folder = Path(artifacts or config.artifacts or "devnas-artifacts")
    if not folder.is_dir():
        raise DevnasError(f"Artifact folder {str(folder)!r} does not exist; pass --artifacts.")
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "weights.pt"
        try:
            download_artifact(
                artifact_store=FileSystemArtifactStore(str(folder)),
                artifact_id=trial.user_attrs[WEIGHTS_ATTR],
                file_path=str(path),
            )
        except ArtifactNotFound:
            raise DevnasError(
                f"The weights of trial {number} are not in {str(folder.resolve())!r}; pass "
                "--artifacts with the folder the search saved them to."
            ) from None
        model.load_state_dict(torch.load(path, weights_only=True))
    # The masks of learned group convolutions are buffers, so the stage is restored with them;
    # mark the modules as fully condensed so condense() keeps the trained masks.
    from optuna_devnas.spaces import LearnedGroupConv

    for module in model.modules():
        if isinstance(module, LearnedGroupConv):
            module.stage = module.condense_factor - 1
    return model.eval(), arch, data


def run(args: argparse.Namespace) -> int:
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise DevnasError(f"Got --output {args.output!r}, which is a file; expected a folder.")
    if args.format == "onnx":
        check_onnx()
    model, arch, data = load_trained_model(args.storage, args.study, args.trial, args.artifacts)
    parent = output.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    # Scratch next to the output (the same file system), moved in only once checked.
    with tempfile.TemporaryDirectory(dir=parent, prefix=".devnas-export-") as scratch:
        path, difference = export_checked(model, data.val_x[:16], Path(scratch), args.format)
        (Path(scratch) / "architecture.json").write_text(arch.to_json() + "\n")
        output.mkdir(exist_ok=True)
        for name in (path.name, "architecture.json"):
            os.replace(Path(scratch) / name, output / name)
    print(
        f"devnas export: wrote {output / path.name} and {output / 'architecture.json'} ({arch}); "
        f"max difference to the trained model on 16 images: {difference:.1e}"
    )
    return 0


def check_onnx() -> None:
    """Raise :class:`DevnasError` unless the ``onnx`` extra is installed."""
    import importlib.util

    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        raise DevnasError(
            f"ONNX export needs {' and '.join(missing)}: pip install 'optuna-devnas[onnx]'."
        )


def export_checked(
    model: torch.nn.Module, batch: torch.Tensor, folder: Path, fmt: str
) -> tuple[Path, float]:
    """Export ``model`` condensed into ``folder``; the file and its largest output difference."""
    from optuna_devnas.spaces import condense

    deployed = condense(model).eval()
    with torch.no_grad():
        expected = model(batch)
    example = batch[:1]
    if fmt == "torchscript":
        path = folder / "model.pt"
        # TorchScript is deprecated in favour of torch.export but is still what mobile
        # runtimes load; keep it and silence the notice.
        warnings.filterwarnings("ignore", category=FutureWarning, module="torch.jit")
        traced = torch.jit.trace(deployed, example, check_trace=False)
        traced.save(str(path))
        loaded = torch.jit.load(str(path))
        with torch.no_grad():
            got = torch.cat([loaded(batch[i : i + 1]) for i in range(len(batch))])
    else:
        path = folder / "model.onnx"
        export_onnx(deployed, example, path)
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        got = torch.cat(
            [
                torch.from_numpy(session.run(None, {name: batch[i : i + 1].numpy()})[0])
                for i in range(len(batch))
            ]
        )
    difference = float((got - expected).abs().max())
    if difference > 1e-3:
        raise DevnasError(f"Exported model differs from the trained one by {difference:.2e}.")
    return path, difference


def export_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    """Export ``model`` to ONNX at batch size 1 (the latency setting)."""
    try:
        torch.onnx.export(model, (example,), str(path), input_names=["input"], dynamo=False)
    except TypeError:  # older torch without the dynamo flag
        torch.onnx.export(model, (example,), str(path), input_names=["input"])
