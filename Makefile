# The README's two commands: `make run` and `make test`. Each sets up .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CONFIG ?= conf/tys.yaml

.PHONY: run test test-clock bench-quick lint demo bench clean venv

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

run: venv
	$(PY) -m tys_server --config $(CONFIG)

test: venv
	$(PY) -m pytest

# The clock-marked tests with this process's clock pinned (docs/reliability.md, "Time-proof
# tests"): just after UTC midnight, just before it, and just before the event's local
# midnight west (Los Angeles, UTC-7 in June) and east (Tokyo, UTC+9) of UTC.
CLOCK_DATE ?= 2026-06-15
test-clock: venv
	TYS_TEST_NOW=$(CLOCK_DATE)T00:00:30Z $(PY) -m pytest -m clock
	TYS_TEST_NOW=$(CLOCK_DATE)T23:59:50Z $(PY) -m pytest -m clock
	TYS_TEST_NOW=$(CLOCK_DATE)T07:59:50Z TYS_TEST_TIMEZONE=America/Los_Angeles $(PY) -m pytest -m clock
	TYS_TEST_NOW=$(CLOCK_DATE)T14:59:50Z TYS_TEST_TIMEZONE=Asia/Tokyo $(PY) -m pytest -m clock

# tools/bench.py --quick end to end (every row present, verdicts consistent); not in `test`.
bench-quick: venv
	$(PY) -m pytest -m bench

# make demo [FEED=cmx|firehose|meraki]: the walk scenario through one feed (tools/demo.sh).
FEED ?= cmx
demo: venv
	DEMO_FEED=$(FEED) tools/demo.sh

bench: venv
	$(PY) tools/bench.py

# ruff, then the layer contracts of pyproject.toml ([tool.importlinter]).
lint: venv
	$(PY) -m ruff check tys_server tests tools
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
