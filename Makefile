# Everything runs from the project's own virtualenv; `make venv` (re)builds it when pyproject.toml changes.
PYTHON ?= $(shell command -v python3.11 >/dev/null 2>&1 && echo python3.11 || echo python3)
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
RUN_ARGS ?=
ARGS ?=

.PHONY: venv run serve test lint bench bench-batches screenshots clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[dev]'
	touch $@

# Running (`make run`, `make serve`) needs only the runtime dependencies: no test, lint or browser
# tools (those are `make venv`'s, for test and lint). A venv that `make venv` built has them
# already, and this only checks.
$(VENV)/.runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e .
	touch $@

# DEBUG is off unless asked for; development asks for it (on this machine only: see README).
run: export DEBUG ?= true
run: $(VENV)/.runtime
	$(BIN)/python manage.py runstack $(RUN_ARGS)

# Production on this machine, DEBUG off: needs SECRET_KEY and ALLOWED_HOSTS (docs/deploy.md).
serve: $(VENV)/.runtime
	$(BIN)/python manage.py serve

# Tests get their own var/ (SQLite file, embedded Redis) so they never touch the development data.
# DATABASE_URL and REDIS_URL pass through from the environment when set.
test: export BPM_VAR_DIR ?= $(CURDIR)/var/test
test: venv
	mkdir -p "$(BPM_VAR_DIR)"
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The batch repair of 10,000 stuck sagas, then the engine's benchmarks against raw RQ jobs and raw
# commits, whose JSON line is the last line printed (docs/benchmarks.md); ARGS=--quick keeps them
# under 2 minutes.
# Its own var/ by default: it migrates that database and empties that Redis.
bench: export BPM_VAR_DIR ?= $(CURDIR)/var/bench
bench: venv
	mkdir -p "$(BPM_VAR_DIR)"
	$(BIN)/python benchmarks/bench_batches.py $(filter --quick,$(ARGS))
	$(BIN)/python benchmarks/bench_engine.py $(ARGS)

# Batch repairs at scale (docs/benchmarks.md): 10,000 stuck sagas retried by one batch through real
# workers; ARGS=--quick repairs 300. Same var/ and the same warning as bench.
bench-batches: export BPM_VAR_DIR ?= $(CURDIR)/var/bench
bench-batches: venv
	mkdir -p "$(BPM_VAR_DIR)"
	$(BIN)/python benchmarks/bench_batches.py $(ARGS)

# mypy's Django plugin loads the settings, which need DEBUG or a SECRET_KEY.
lint: export DEBUG ?= true
lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

# The README's and docs/dashboard.md's screenshots, from the site `make run` serves (started in
# another terminal, with its demo): docs/screenshots/take.py; ARGS=--help for its options.
screenshots: venv
	$(BIN)/python docs/screenshots/take.py $(ARGS)

# Stop any embedded Redis left running under var/ first, so no daemon outlives its directory.
clean:
	@if [ -d var ]; then \
		find var -name redis.pid -exec sh -c 'kill "$$(cat "$$1")" 2>/dev/null || true' sh {} \; ; \
	fi
	rm -rf var $(VENV)
