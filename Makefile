# creditbus: two set-up commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: venv demo test test-unit bench lint stop clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"' \
	  || { echo "error: Python 3.11 or newer is needed as '$(PYTHON)'" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: venv
	$(BIN)/creditbus demo

# Four test processes (pytest-xdist) on two cores, a whole file at a time each, the longest
# files first (tests/conftest.py): much of the suite waits on brokers, consumer groups and
# subprocesses, which the other processes fill (with two, the cores were busy 56 % of the time).
# The processes share one session broker. `--durations` names the slowest tests, so a slow
# newcomer shows at once.
TEST_PROCESSES ?= 4
test: venv
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) --dist loadfile --no-loadscope-reorder \
	  --durations=30

test-unit: venv
	$(BIN)/python -m pytest -m "not integration and not postgres and not faults"

bench: venv
	$(BIN)/creditbus bench

lint: venv
	$(BIN)/ruff check .

stop: venv
	$(BIN)/creditbus demo --stop

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
