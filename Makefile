# Behavioral Segments: `make run` builds the demo end to end, `make test` runs the suite.
# Everything installs from nothing but python3: uv comes through pip when missing.

PYTHON ?= python3
UV := $(PYTHON) -m uv
export UV_PYTHON_DOWNLOADS := never
SEGMENTS := $(UV) run --frozen segments

DATA := data
DEMO_USERS ?= 10000
DEMO_DAYS ?= 90
DEMO_SEED ?= 42
# The demo's 90 days start on 2026-01-01; its marts are computed as of their end, after
# the daily runs of the last week before it, so the report has history to show.
DEMO_AS_OF ?= 2026-04-01T00:00:00Z
DEMO_DAILY_FROM ?= 2026-03-28

.PHONY: install browser postgres run test reliability portability bench screenshot lint docs dev clean

# Bytecode is compiled at install: where PYTHONDONTWRITEBYTECODE is set, every run would
# otherwise recompile Dagster, dbt and Great Expectations from source (half of a run's time).
install:
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	@$(UV) sync --frozen --quiet --compile-bytecode

# The generator has finished writing when the run starts: no settle time to wait out.
run: install
	$(SEGMENTS) generate --out $(DATA)/landing --users $(DEMO_USERS) --days $(DEMO_DAYS) --seed $(DEMO_SEED)
	SEGMENTS_LANDING_SETTLE_SECONDS=0 $(SEGMENTS) run --landing $(DATA)/landing --warehouse $(DATA)/warehouse.duckdb \
		--exports $(DATA)/exports --as-of $(DEMO_AS_OF) --daily-from $(DEMO_DAILY_FROM)

test: install
	$(UV) run --frozen pytest

# Fault injection: whole runs killed with SIGKILL at several points, then finished by the
# next run; a full disk and a read-only export folder (tests marked `reliability`; about
# seven minutes). -rs prints why a test was skipped (no mount or chattr allowed).
reliability: install
	$(UV) run --frozen pytest -m reliability -rs

# The models on PostgreSQL (a server the test starts from Debian's binaries: make postgres)
# and on Spark (local[2], needs Java 17), each compared with DuckDB's marts (a few minutes).
portability: install postgres
	$(UV) run --frozen --group spark pytest -m portability -rs -s

# The benchmark: the pipeline against the floor (the four core marts as hand-written SQL),
# its own compiled models, and pandas and Polars peers, at 1M, 10M and 100M events;
# landing zones are cached in bench/cache/. Writes bench/results.json and
# docs/benchmarks.md. BENCH_ARGS="--sizes 1M,10M --repeats 3" for a shorter one.
BENCH_ARGS ?=
bench: install
	$(UV) run --frozen python -m bench $(BENCH_ARGS)

# Debian's Chromium, for the report's browser test and `make screenshot` (needs root or sudo).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends chromium; }

# PostgreSQL from Debian's packages, for the portability tests (they start a server of their
# own in a temporary folder; nothing is started here).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends postgresql; }

# A full-page picture of the demo's report, taken in headless Chromium.
screenshot: install
	$(UV) run --frozen python -m tests.browser $(DATA)/exports/report.html $(DATA)/report.png

# ruff for the Python; sqlfluff for the models, compiled by dbt (dbt_project/.sqlfluff), in
# a warehouse file of its own so a run's warehouse is never opened.
lint: install
	$(UV) run --frozen ruff check orchestration tests bench
	$(UV) run --frozen ruff format --check orchestration tests bench
	mkdir -p $(DATA)
	cd dbt_project && SEGMENTS_WAREHOUSE=$(abspath $(DATA))/lint.duckdb \
		$(UV) run --frozen sqlfluff lint models --processes 2

docs: install
	cd dbt_project && SEGMENTS_WAREHOUSE=$(abspath $(DATA))/warehouse.duckdb \
		$(UV) run --frozen dbt docs generate --profiles-dir . \
		--vars '{"segments__as_of": "$(DEMO_AS_OF)"}'
	@echo "dbt docs: dbt_project/target/index.html (serve with: cd dbt_project && uv run dbt docs serve)"

dev: install
	DAGSTER_HOME=$(abspath dagster_home) SEGMENTS_LANDING_DIR=$(abspath $(DATA))/landing SEGMENTS_WAREHOUSE=$(abspath $(DATA))/warehouse.duckdb \
	SEGMENTS_EXPORT_DIR=$(abspath $(DATA))/exports \
		$(UV) run --frozen dagster dev -m orchestration.definitions

clean:
	rm -rf $(DATA) dbt_project/target dbt_project/logs .pytest_cache
