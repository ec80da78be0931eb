# One obvious command per task, the same locally and in CI. `make run` and `make test` create or refresh
# the virtualenv themselves, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
# Two test processes: most slow tests wait on real servers and worker processes, not on a core. A module's tests
# stay in one process (its module-scoped servers start once).
PYTEST_WORKERS ?= 2

.PHONY: help install run test test-only lint fmt typecheck bench bench-quick chaos chaos-smoke chaos-cluster clean
.PHONY: tools screenshots

help:
	@echo "make run        start embedded Redis (unless REDIS_URL is set), receiver and workers"
	@echo "make test       lint + typecheck + the whole test suite"
	@echo "make chaos      the nemesis: pauses, hangs, kills under load, then a verdict (CHAOS_ARGS='--seed S')"
	@echo "make chaos-smoke  the small seeded nemesis run that make test includes (about a minute)"
	@echo "make chaos-cluster  the nemesis on a Redis Cluster: failover and live resharding, MIN_REPLICAS 0 and 1"
	@echo "make lint | fmt | typecheck | bench | clean"
	@echo "make tools      promtool + prometheus for tests/deploy, chromium for tests/console (Debian packages;"
	@echo "                installed when missing and root)"

$(STAMP): pyproject.toml constraints.txt examples/directory-mirror/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]' \
		-e examples/directory-mirror
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/hookyard dev

test: lint typecheck test-only

test-only: $(STAMP) tools
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy

chaos: $(STAMP)
	$(BIN)/python -m chaos $(CHAOS_ARGS)

chaos-smoke: $(STAMP)
	$(BIN)/python -m chaos --size smoke $(CHAOS_ARGS)

# The nemesis on a Redis Cluster (3 primaries + 3 replicas, wake-ups through a plain Redis), once acknowledging
# after the primary alone and once after a replica too; each report stays in .hookyard/chaos-cluster-N/report.md.
chaos-cluster: $(STAMP)
	$(BIN)/python -m chaos --store cluster --min-replicas 0 --workdir .hookyard/chaos-cluster-0 $(CHAOS_ARGS)
	$(BIN)/python -m chaos --store cluster --min-replicas 1 --workdir .hookyard/chaos-cluster-1 $(CHAOS_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench

bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick --output .hookyard/benchmarks-quick.md

# The console's screenshots in docs/console/, retaken by its browser tests against a live stack.
screenshots: $(STAMP) tools
	CONSOLE_SCREENSHOTS=docs/console $(BIN)/python -m pytest -p no:randomly tests/console/test_browser.py

clean:
	rm -rf $(VENV) .hookyard .mypy_cache .ruff_cache

# promtool and prometheus for tests/deploy, rabbitmq-server for the wake-up broker tests, and chromium for the
# console's browser tests: installed from Debian's packages when missing and run as root, never started as a
# service; otherwise a loud note (the tests then fail in CI and skip elsewhere).
tools:
	@sh tests/deploy/install_tools.sh
	@sh tests/console/install_chromium.sh
