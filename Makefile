# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo fashion-mnist test bench figures lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

# The main job: train a DCGAN on Fashion-MNIST, write sample grids, a loss plot and a
# checkpoint to $(RUN). EPOCHS=5 trains longer (a second `make demo` resumes the run).
EPOCHS ?= 1
LIMIT  ?= 0
RUN    ?= runs/demo
TRAIN  := $(BIN)/tinygen train dcgan --dataset fashion-mnist

demo: $(VENV)/.installed fashion-mnist
	@if [ -f $(RUN)/checkpoint.npz ]; then \
		$(TRAIN) --resume $(RUN) --epochs $(EPOCHS); \
	else \
		$(TRAIN) --out $(RUN) --epochs $(EPOCHS) --limit $(LIMIT); \
	fi

# Debian's dataset-fashion-mnist package, when the data is missing and apt can install it
# (root); otherwise tinygen looks elsewhere and downloads, or says where to put the files.
fashion-mnist: $(VENV)/.installed
	@$(BIN)/python -c "from tinygen.data import load_dataset; load_dataset('fashion-mnist', download=False)" \
		2>/dev/null || { \
		if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
			echo "installing Debian's dataset-fashion-mnist (apt-get)"; \
			apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
			|| { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; } \
			|| echo "apt-get could not install dataset-fashion-mnist; tinygen will try to download the files"; \
		fi; }

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q

# PyTorch is optional: install it (a local wheel here) to get the side-by-side columns.
bench: $(VENV)/.installed-dev
	$(BIN)/python -m pip install --quiet torch==2.13.0 || true
	$(BIN)/python benchmarks/bench_mlp.py

# Every figure of the learning path (docs/learn/), drawn by the chapters' own code.
figures: $(VENV)/.installed
	$(BIN)/python examples/learn/figures.py

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
