# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

# The main job. Until the DCGAN lands this trains a small MLP with the autograd engine.
demo: $(VENV)/.installed
	$(BIN)/python examples/train_mlp.py

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q

# PyTorch is optional: install it (a local wheel here) to get the side-by-side columns.
bench: $(VENV)/.installed-dev
	$(BIN)/python -m pip install --quiet torch==2.13.0 || true
	$(BIN)/python benchmarks/bench_mlp.py

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
