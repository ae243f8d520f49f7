# Two entry points for a fresh machine: `make demo` and `make test`.
# Each creates .venv here if missing and installs the project (editable, with test extras).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

AZURITE := tools/azurite/node_modules/.bin/azurite-blob

.PHONY: install demo test test-maintain dev serve sql clean-lake bench bench-sensor bench-memory report chromium postgres

# uv (from PyPI, pinned) resolves and installs the same packages as pip: ~55 s instead of ~105 s
# on 2 cores (measured on fresh clones); UV=pip installs with pip instead. Bytecode is compiled
# at install, as pip does: otherwise the first process to import dagster compiles it (~20 s).
UV ?= uv
UV_VERSION := 0.13.9

$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
ifeq ($(UV),pip)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
else
	$(PY) -m pip install -q uv==$(UV_VERSION)
	$(VENV)/bin/uv pip install -q --compile-bytecode --python $(PY) -e '.[test]'
endif
	touch $@

install: $(STAMP)

# Azurite (Azure Blob emulator) for the tests: pinned in tools/azurite/package-lock.json.
$(AZURITE): tools/azurite/package.json tools/azurite/package-lock.json
	npm ci --prefix tools/azurite --no-audit --no-fund --loglevel=error
	touch $@

# A new instance's partitions start on the day it is created (netflix_assets/partitions.py).
$(DAGSTER_HOME)/dagster.yaml: deploy/local/dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp $< $@
	@test -s $(DAGSTER_HOME)/partitions_start || echo $${NETFLIX_TODAY:-$$(date -u +%F)} > $(DAGSTER_HOME)/partitions_start

# The instance's first day, unless NETFLIX_PARTITIONS_START says otherwise.
WITH_START = NETFLIX_PARTITIONS_START=$${NETFLIX_PARTITIONS_START:-$$(cat $(DAGSTER_HOME)/partitions_start 2>/dev/null)}

# Land the bundled titles file, materialize today's partition of every asset, print a summary.
demo: install $(DAGSTER_HOME)/dagster.yaml
	@$(WITH_START) $(PY) -m netflix_assets.demo

# Debian's Chromium, for the test that screenshots the report (headless, offline).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	@command -v chromium >/dev/null || ($(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium >/dev/null)

# Debian's PostgreSQL server, for the test of the production instance (deploy/prod/dagster.yaml):
# the test runs its own throwaway cluster, so the package's `main` cluster is stopped.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ($(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends postgresql >/dev/null && \
	  for v in $$(ls /usr/lib/postgresql); do $(SUDO) pg_ctlcluster $$v main stop >/dev/null 2>&1 || true; done)

# Two pytest workers, each with its own JVM; a module's tests stay on one worker, and so do the
# modules sharing a session-built lake (conftest.py). TEST_WORKERS=N for a machine with more cores.
TEST_WORKERS ?= 2
test: install $(AZURITE) chromium postgres $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m pytest -n $(TEST_WORKERS)

# The gold model maintained from changes equals its rebuild after each of 20 random steps, on the real
# titles and on synthetic ones (`make test` runs one step of each; a step costs ~25-30 s on 2 cores).
test-maintain: install
	NETFLIX_MAINTAIN_STEPS=20 $(PY) -m pytest netflix_assets_tests/transforms/test_maintain.py

# The Dagster UI (webserver + daemon) on http://127.0.0.1:3000, same instance as the demo:
# `dg dev` (what `dagster dev` now points to; the project has no component YAML to check),
# stopped whole within 10 s on Ctrl-C or SIGTERM (netflix_assets/devserver.py).
DEV_PORT ?= 3000
dev: install $(DAGSTER_HOME)/dagster.yaml
	@echo "Dagster UI on http://127.0.0.1:$(DEV_PORT) (Ctrl-C stops it)"
	@$(WITH_START) $(PY) -m netflix_assets.devserver --no-check-yaml -h 127.0.0.1 -p $(DEV_PORT)

# Peak memory of a Python worker parsing a 2 GB single-line file and a 1 GB ordinary one.
bench-memory: install
	$(PY) -m benchmarks.parse_memory

# Static HTML dashboard of the latest gold partition (after `make demo`): report/netflix_report.html
report: install
	$(PY) -m netflix_assets.reporting.report

# The SQL endpoint for BI tools (JDBC/ODBC/Thrift), after `make demo`: Spark's Thrift server on
# 127.0.0.1:$(SQL_PORT) with every table registered as <layer>.<table>, e.g. gold.kpi_top_countries
# (netflix_assets/serving/). Runs started while it is up keep its catalog current.
SQL_PORT ?= $(or $(NETFLIX_SQL_PORT),10000)
export NETFLIX_SQL_PORT := $(SQL_PORT)
serve: install $(DAGSTER_HOME)/dagster.yaml
	@$(PY) -m netflix_assets.serving.thrift_server

# beeline (JDBC, from the pyspark wheel) on that endpoint: a prompt, or `make sql Q='SELECT ...'`.
sql: install
	@PATH=$(CURDIR)/$(VENV)/bin:$$PATH beeline -u jdbc:hive2://127.0.0.1:$(SQL_PORT)/default -n "$${USER:-bi}" \
	  --silent=true $(if $(Q),-e "$(Q)")

# Pipeline vs a plain PySpark baseline (bundled data, 100k, 1M titles) beside a DuckDB floor, the
# incremental cost curve (K = 10, 100, 1,000), a warm Spark Connect server, the sensor tick and the
# definitions load, side by side; writes BENCHMARKS.md (56 min on 2 cores in the latest run, 25 of them
# the warm-server runs). Fewer sizes:
#   make bench BENCH_ARGS="--sizes bundled,100k --curve 10k,100k"
bench: install $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m benchmarks.bench $(BENCH_ARGS)

# One landing-zone sensor tick over 10,000 landed files, against an os.walk baseline.
bench-sensor: install
	$(PY) -m benchmarks.sensor_tick

# The ledger of landed files for a day (default today, UTC), counts then files by status:
#   make ledger [DATE=YYYY-MM-DD] [STATUS=failed]
.PHONY: ledger requeue
ledger: install
	$(PY) -m netflix_assets.bronze.ledger_store show $(if $(DATE),--date $(DATE)) $(if $(STATUS),--status $(STATUS))

# Give files recorded `failed` back to the sensor (its next tick requests them again, for their own day):
#   make requeue FILES="file:///.../a.csv file:///.../b.csv"
requeue: install
	$(PY) -m netflix_assets.bronze.ledger_store requeue $(FILES)

# Remove the local lake and instance (the demo rebuilds both).
clean-lake:
	rm -rf .lake $(DAGSTER_HOME)
