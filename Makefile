# One command to set up, one to run the demo, one to lint and run the tests (see README.md).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup test test-all quickstart clean

setup: $(VENV)/.setup-done

$(VENV)/.setup-done: setup.cfg pyproject.toml scripts/setup.sh package.json
	bash scripts/setup.sh $(VENV)
	touch $@

test: setup
	$(PY) -m ruff check .
	$(PY) -m pytest -q

test-all: setup
	$(PY) -m pytest -q -m ""

quickstart: setup
	PATH="$(abspath $(VENV))/bin:$$PATH" bash scripts/quickstart.sh

clean:
	rm -rf $(VENV) *.egg-info
