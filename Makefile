# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: demo test venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip wheel setuptools

$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/sat demo --out outputs/demo

test: $(STAMP)
	# pytest exits 5 when no test is collected; that is a failure of the suite, not a pass.
	$(BIN)/python -m pytest -q -x --durations=15

clean:  # keeps the committed real-data checkpoints (outputs/real/universal.ckpt, interactive.ckpt)
	rm -rf data $(filter-out outputs/real,$(wildcard outputs/*)) $(filter-out outputs/real/universal.ckpt outputs/real/interactive.ckpt,$(wildcard outputs/real/*))
