# make demo: set up .venv and run the main job (a real device-aware search on digits).
# make test: set up .venv and run ruff, mypy, the whole pytest suite, the docs build and the
# wheel check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# constraints.txt pins what this project's own machines install (torch from local disk,
# MLflow below 3.18); users of the package get pyproject.toml's open ranges.
PIP_INSTALL := $(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: install demo test test-fast lint typecheck pytest docs wheel-check benchmarks clean fashion-mnist

# The first install takes a few minutes (torch, BoTorch, MLflow): say so, then what is done.
$(BIN)/.installed: pyproject.toml constraints.txt
	@echo "make: creating $(VENV) and installing optuna-devnas with torch, BoTorch and MLflow" \
		"(a few minutes the first time; later runs skip this)..."
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -e '.[test]'
	@touch $@
	@echo "make: $(VENV) is ready."

install: $(BIN)/.installed

demo: install
	@echo "make: running the demo search (examples/demo.py; the study is kept in demo.db)..."
	PYTHONUNBUFFERED=1 $(BIN)/python examples/demo.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

# Fashion-MNIST comes from Debian's package (30 MB, no download at run time): installed here
# when missing and this user may run apt-get; without it, its tests are skipped with a reason.
FASHION_MNIST := /usr/share/datasets/fashion-mnist
fashion-mnist:
	@test -d $(FASHION_MNIST) || { \
		echo "make: installing Debian's dataset-fashion-mnist (Fashion-MNIST, 30 MB)..."; \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
		$$SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
		|| { $$SUDO apt-get update -q >/dev/null 2>&1 \
			&& $$SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; } \
		|| echo "make: could not install dataset-fashion-mnist; its tests will be skipped."; }

pytest: install fashion-mnist
	$(BIN)/pytest

# The package as users install it: sdist and wheel built, the wheel installed into a fresh
# virtual environment outside the tree, `devnas --help`, the import and the README's example.
wheel-check: install
	scripts/wheel_check.sh $(BIN)/python

# The API reference and the guides as HTML in build/docs; a Sphinx warning fails the build.
docs: install
	$(BIN)/sphinx-build -W --keep-going -E -q -b html docs build/docs

test: lint typecheck pytest docs wheel-check

# The developer loop: everything but the end-to-end tests marked slow (CI runs those too).
test-fast: lint typecheck fashion-mnist
	$(BIN)/pytest -m "not slow"

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
