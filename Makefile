# Two entry points for a fresh machine:
#   make demo   install mixopt (core + plots) and run `mixopt demo`
#   make test   install mixopt with every extra (torch's CPU build) and run ruff, the
#               documentation build (warnings are errors) and the test suite
#   make docs   build the documentation into docs/_build/html (open docs/_build/html/index.html)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The registry offers torch's CPU build as 2.13.0; an unpinned torch pulls GBs of CUDA wheels.
TORCH_CPU ?= torch==2.13.0

# Sphinx: -n reports every reference that does not resolve, -W makes each warning an error
# (--keep-going lists them all first), -E -a rebuild from scratch so none is hidden by a cache.
DOCS_OUT ?= docs/_build/html
SPHINX := $(BIN)/python -m sphinx -b html -n -W --keep-going -E -a -q

.PHONY: demo test docs install-demo install-test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install-demo: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[plot]"

install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet "$(TORCH_CPU)"
	$(BIN)/python -m pip install --quiet -e ".[dev,plot,torch,mixture,hf,lightning,docs]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 > /dev/null

demo: install-demo
	$(BIN)/mixopt demo --out mixopt-demo

# builds with what is installed; installs the docs extra only when Sphinx is missing
docs: $(BIN)/python
	$(BIN)/python -c "import sphinx, numpydoc, myst_nb, furo" 2>/dev/null || \
		$(BIN)/python -m pip install --quiet -e ".[docs]"
	$(SPHINX) docs $(DOCS_OUT)
	@echo "documentation: $(DOCS_OUT)/index.html"

lint:
	$(BIN)/ruff check mixopt tests benchmarks notebooks

test: install-test
	$(BIN)/ruff check mixopt tests benchmarks notebooks
	$(SPHINX) docs $(DOCS_OUT)
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --durations=15 tests

clean:
	rm -rf $(VENV) mixopt-demo .pytest_cache
