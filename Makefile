# Two entry points for a fresh machine:
#   make demo   install mixopt (core + plots) and run `mixopt demo`
#   make test   install mixopt with every extra (torch's CPU build) and run ruff + the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The registry offers torch's CPU build as 2.13.0; an unpinned torch pulls GBs of CUDA wheels.
TORCH_CPU ?= torch==2.13.0

.PHONY: demo test install-demo install-test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install-demo: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[plot]"

install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet "$(TORCH_CPU)"
	$(BIN)/python -m pip install --quiet -e ".[dev,plot,torch,mixture,hf,lightning]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 > /dev/null

demo: install-demo
	$(BIN)/mixopt demo --out mixopt-demo

lint:
	$(BIN)/ruff check mixopt tests benchmarks

test: install-test
	$(BIN)/ruff check mixopt tests benchmarks
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --durations=15 tests

clean:
	rm -rf $(VENV) mixopt-demo .pytest_cache
