#!/usr/bin/env bash
# The package as users get it: build the sdist and the wheel (the wheel from the sdist, so a
# file missing from the sdist fails here), install the wheel into a fresh virtual environment
# outside the source tree, and run `devnas --help`, `import optuna_devnas` and the README's
# Python example (2 trials, 1 epoch) from a folder where no source tree is on sys.path.
#
#   scripts/wheel_check.sh [PYTHON]      # PYTHON: one with `build` and setuptools (.venv's)
set -euo pipefail
START=$SECONDS
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${1:-.venv/bin/python}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/devnas-wheel.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

echo "wheel-check: building sdist and wheel into $WORK/dist"
# No build isolation: the build needs only setuptools, already in PYTHON's environment, and
# an isolated build would fetch it again on every run.
"$PYTHON" -m build --no-isolation --outdir "$WORK/dist" . >"$WORK/build.log" 2>&1 \
  || { cat "$WORK/build.log"; exit 1; }
ls "$WORK"/dist

echo "wheel-check: installing the wheel into a fresh virtual environment"
"$PYTHON" -m venv "$WORK/venv"
# pip's cache and constraints.txt's local torch wheel keep this to copying files.
# (Machines whose pip.conf names index folders that lack a package make pip warn once per
# package; those lines are dropped.)
"$WORK/venv/bin/pip" install --quiet --disable-pip-version-check -c "$ROOT/constraints.txt" \
  "$WORK"/dist/optuna_devnas-*.whl 2> >(grep -v "is ignored: it is neither a file" >&2)

# The README's first Python example, with a budget small enough for CI.
"$PYTHON" - "$ROOT/README.md" "$WORK/run/readme_example.py" <<'PY'
import re, sys
from pathlib import Path
readme, out = Path(sys.argv[1]).read_text(), Path(sys.argv[2])
code = re.search(r"```python\n(.*?)```", readme, flags=re.DOTALL).group(1)
small = re.sub(r"n_trials=\d+", "n_trials=2", re.sub(r"epochs=\d+", "epochs=1", code))
assert small != code, "the README's example has no n_trials/epochs to shrink"
out.parent.mkdir(parents=True)
out.write_text(small)
PY

cd "$WORK/run"
export PYTHONPATH= PYTHONNOUSERSITE=1
echo "wheel-check: devnas --help"
"$WORK/venv/bin/devnas" --help >/dev/null
echo "wheel-check: import optuna_devnas"
"$WORK/venv/bin/python" - "$ROOT" "$WORK/venv" <<'PY'
import sys
from pathlib import Path
root, venv = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
assert not any(Path(p or ".").resolve() == root for p in sys.path), sys.path
import optuna_devnas
where = Path(optuna_devnas.__file__).resolve()
assert venv in where.parents, f"imported {where}, not the installed wheel"
print(f"  optuna_devnas {optuna_devnas.__version__} from {where.parent}")
PY
echo "wheel-check: the README's Python example (2 trials, 1 epoch)"
OMP_NUM_THREADS=1 "$WORK/venv/bin/python" readme_example.py >"$WORK/example.log" 2>&1 \
  || { cat "$WORK/example.log"; exit 1; }
grep -c "Trial [0-9]* finished" "$WORK/example.log" | grep -qx 2 \
  || { cat "$WORK/example.log"; echo "wheel-check: expected 2 finished trials"; exit 1; }
echo "wheel-check: passed in $((SECONDS - START)) s"
