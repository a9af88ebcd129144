# Tickwave: two commands for a newcomer.
#   make demo   installs what it needs, starts the embedded services, runs the main job end to end
#   make test   installs, then runs lint, type checks and the test suite against real services
# The demo needs Python 3.11+, Java 17+ and Rust 1.88+ with cargo (checked first; Kafka's jars come from Maven Central by a
# locked list; cargo builds the execution core, the crate execution/core/crate, with maturin from uv.lock: 35-55 s
# from nothing (about 25 s of CPU), nothing when no source changed; no cargo: https://rustup.rs).
# The tests need the test toolchain besides: Debian's chromium, postgresql and prometheus
# (installed with apt-get when run as root), a JDK's javac (the JDBC driver's conformance test compiles a small Java
# program), Go (the dashboards' clickhouse-go test builds a small Go program). Everything else is installed from PyPI
# (through uv and uv.lock).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# The environment is installed with its bytecode compiled, and the repository's packages are compiled
# at each bootstrap: every tickwave, dbt and Dagster process (the tests start hundreds) then loads
# .pyc files instead of compiling its imports from source, which it does at every start when
# PYTHONDONTWRITEBYTECODE is set or the environment is read-only (`tickwave --help`: 1.6 -> 0.6 s).
export UV_COMPILE_BYTECODE := 1

.DEFAULT_GOAL := help
.PHONY: help prereqs bootstrap test lint typecheck rust pytest unit integration demo bench scale parity chaos cluster-chaos soak fuzz shape clean demo-prereqs conformance

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

demo-prereqs: ## check what the demo needs, Python 3.11+, Java 17+ and Rust 1.88+ (cargo), saying how to install what is missing
	@missing=0; \
	if ! command -v $(PYTHON) >/dev/null || ! $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then \
	  echo "missing: Python 3.11+ as '$(PYTHON)' (Debian/Ubuntu: apt-get install python3; or pyenv install 3.11; or make PYTHON=python3.12)"; missing=1; fi; \
	if ! command -v java >/dev/null && [ -z "$${JAVA_HOME:-}" ]; then \
	  echo "missing: Java 17+ (Debian/Ubuntu: apt-get install openjdk-17-jre-headless)"; missing=1; \
	else java=$${JAVA_HOME:+$$JAVA_HOME/bin/}java; \
	  v=$$($$java -version 2>&1 | sed -nE 's/.*version "([0-9]+).*/\1/p' | head -1); \
	  if [ "$${v:-0}" -lt 17 ]; then echo "missing: Java 17+ (found Java $${v:-unknown}; apt-get install openjdk-17-jre-headless and set JAVA_HOME)"; missing=1; fi; fi; \
	rustup="https://rustup.rs: curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh, then open a new shell"; \
	if ! command -v cargo >/dev/null || ! command -v rustc >/dev/null; then \
	  echo "missing: Rust 1.88+ (cargo and rustc), to build the execution core ($$rustup)"; missing=1; \
	else r=$$(rustc --version | sed -nE 's/^rustc 1\.([0-9]+).*/\1/p'); \
	  if [ "$${r:-0}" -lt 88 ]; then echo "missing: Rust 1.88+ (found $$(rustc --version); rustup update, or $$rustup)"; missing=1; fi; fi; \
	if [ $$missing -ne 0 ]; then echo "install the above, then run make again"; exit 1; fi

prereqs: demo-prereqs ## check the test toolchain too: chromium, PostgreSQL, Prometheus, a JDK and Go, saying how to install what is missing
	@missing=0; \
	if ! command -v chromium >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium (headless browser for the UI tests)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null) \
	      || { echo "missing: chromium (apt-get install chromium failed)"; missing=1; }; \
	  else echo "missing: Debian's chromium, for the headless UI tests (sudo apt-get install chromium)"; missing=1; fi; fi; \
	if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null \
	  && ! { command -v pg_config >/dev/null && [ -x "$$(pg_config --bindir)/initdb" ]; }; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's postgresql (initdb and pg_ctl: a throwaway cluster for the Dagster storage tests)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null) \
	      || { echo "missing: PostgreSQL's server (apt-get install postgresql failed)"; missing=1; }; \
	  else echo "missing: PostgreSQL's server binaries, for the Dagster storage tests (sudo apt-get install postgresql)"; missing=1; fi; fi; \
	if ! command -v prometheus >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's prometheus (the metrics test scrapes a live stack with it)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null) \
	      || { echo "missing: prometheus (apt-get install prometheus failed)"; missing=1; }; \
	  else echo "missing: Debian's prometheus, for the metrics test (sudo apt-get install prometheus)"; missing=1; fi; fi; \
	if ! command -v javac >/dev/null && [ ! -x "$${JAVA_HOME:-/nonexistent}/bin/javac" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's openjdk-17-jdk-headless (javac compiles the JDBC driver's conformance test)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jdk-headless >/dev/null) \
	      || { echo "missing: javac (apt-get install openjdk-17-jdk-headless failed)"; missing=1; }; \
	  else echo "missing: javac, a JDK 17+ for the JDBC conformance test (sudo apt-get install openjdk-17-jdk-headless)"; missing=1; fi; fi; \
	if ! command -v go >/dev/null; then \
	  echo "missing: Go 1.22+, for the dashboards' clickhouse-go test only (https://go.dev/dl/; Debian: apt-get install golang)"; missing=1; fi; \
	if [ $$missing -ne 0 ]; then echo "install the above, then run make again"; exit 1; fi

# uv is given the interpreter itself, not the launcher on the PATH: given a pyenv shim, uv removed and created
# the environment again at every sync, and with it the builds of the execution core.
$(BIN)/tickwave: pyproject.toml uv.lock Makefile | demo-prereqs
	@if command -v uv >/dev/null; then uv=uv; \
	elif $(PYTHON) -m uv --version >/dev/null 2>&1; then uv="$(PYTHON) -m uv"; \
	else echo "installing uv with pip"; $(PYTHON) -m pip install --quiet --user uv || $(PYTHON) -m pip install --quiet uv; uv="$(PYTHON) -m uv"; fi; \
	$$uv sync --frozen --python "$$($(PYTHON) -c 'import sys; print(sys.executable)')"
	@touch $@

bootstrap: $(BIN)/tickwave ## install the locked Python environment, build the execution core (when a source of it changed) and fetch Kafka's jars
	@$(BIN)/python -m compileall -q -j 0 $$(dirname */__init__.py)
	@$(BIN)/python -m app.core_build  # before the command line, which imports the core
	@$(BIN)/tickwave prepare

lint: $(BIN)/tickwave ## ruff lint and format check, and the import walls (lint-imports, contracts in pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(BIN)/tickwave ## mypy (strict) on every package but the tests
	$(BIN)/mypy

CRATE := execution/core/crate
rust: $(BIN)/tickwave ## the execution core's crate: rustfmt check, clippy with warnings as errors, cargo test (linked to the venv's Python)
	cd $(CRATE) && cargo fmt --check
	cd $(CRATE) && PYO3_PYTHON=$(abspath $(BIN)/python) cargo clippy --locked --all-targets -- -D warnings
	cd $(CRATE) && PYO3_PYTHON=$(abspath $(BIN)/python) cargo test --locked

pytest: bootstrap ## the whole test suite in one run (real Kafka, real warehouse)
	$(BIN)/pytest

unit: bootstrap ## the unit tests, on both cores (no services; about 2 minutes)
	$(BIN)/pytest -n 2 tests/unit

# Three workers, a test file each at a time: each worker starts its own broker, warehouse and PostgreSQL.
# The suite keeps both cores busy; a third worker fills the gaps while a test waits on a service
# (771 s against 828 s on two, the same tests).
integration: bootstrap ## the tests against the real services: Kafka, warehouse, Dagster, dbt, GX, chromium, chaos
	$(BIN)/pytest -n 3 --dist loadfile --ignore=tests/unit

# Lint and mypy (about 80 s from a cold cache, one core) and the crate's checks (rustfmt, clippy,
# cargo test: about a minute of one core from nothing) need only the environment: they run beside
# the build of the Rust core (about 35 s from nothing, one core), then the
# unit tests take both cores; then the service tests on three workers (about 10 minutes).
test: prereqs ## everything CI runs: lint, type checks and the crate's checks beside the builds and the unit tests, then the service tests
	@$(MAKE) --no-print-directory -j2 lint typecheck rust unit
	@$(MAKE) --no-print-directory integration

demo: bootstrap ## start the embedded services, run the main job end to end, print where to look
	$(BIN)/tickwave demo

bench: bootstrap ## run every benchmark in bench/ as a module, then write bench/results/summary.json and the table in bench/README.md (slow)
	$(BIN)/python -m bench.summary

# SCALE_ARGS=--quick for 1M and 10M ticks only; `python -m bench.scale --help` lists the options.
SCALE_ARGS ?=
scale: bootstrap ## grow a warehouse to 1M, 10M and 100M ticks and measure the boards, dbt, reports, training read, status and disk at each size (bench/README.md; long)
	$(BIN)/python -m bench.scale $(SCALE_ARGS)

chaos: bootstrap ## kill -9 every service at random during a replay and a live market, then check nothing was lost; then a 4-minute soak (minutes)
	$(BIN)/python -m tests.chaos.harness --kills 3 --live-s 240 --freeze-s 30
	$(BIN)/python -m bench.soak --minutes 4 --warmup 1 --window 1 --sample-s 20 --smoke \
	  --state-dir .tickwave-chaos/soak --results .tickwave-chaos/soak-results --figures .tickwave-chaos/soak-results

cluster-chaos: bootstrap ## three Kafka brokers: tick-to-signal on 1 vs 3, kill -9 the ticks leader during a replay and a live market; kill -9 one of two dataflow processes; nothing lost (minutes)
	$(BIN)/python -m tests.chaos.cluster
	$(BIN)/pytest tests/integration/streams/test_processes.py -k one_of_two_processes_is_killed

# SOAK_ARGS="--minutes 20 --warmup 5" for a shorter run; `python -m bench.soak --help` lists the options.
SOAK_ARGS ?=
soak: bootstrap ## everything up for 140 minutes at 500 ticks/s (80 measured after 60 of warm-up), sampled each minute: memory, parts, disk, latency slopes, then the chaos checks (bench/README.md)
	$(BIN)/python -m bench.soak --summary $(SOAK_ARGS)

parity: bootstrap ## the fast engine replay against the live path on the benchmark's 200,000-row holdout (make test: 50,000)
	FAST_REPLAY_PARITY_ROWS=200000 $(BIN)/pytest tests/integration/execution/test_fast_replay_parity.py

fuzz: bootstrap ## fuzz the warehouse's read-only policy with 20,000 statements from the engine's grammar (POLICY_FUZZ_SEED=N repeats a run; minutes)
	POLICY_FUZZ_QUERIES=20000 $(BIN)/pytest -s tests/integration/warehouse/test_policy_fuzz.py

# CONFORMANCE_ARGS="--suite clickhouse-connect" for one suite; "--sources DIR" where the release archives cannot be reached.
CONFORMANCE_ARGS ?=
conformance: bootstrap ## run the official clients' own suites (clickhouse-connect, dbt-clickhouse, clickhouse-go) against a fresh warehouse and print their counts (minutes)
	$(BIN)/python -m tests.conformance $(CONFORMANCE_ARGS)

shape: bootstrap ## report the largest files, classes and functions and the kernel's size (a prompt to split along concerns, not a limit)
	$(BIN)/python -m tests.shape

clean: ## stop services and remove the state dir and the venv
	-@[ -x $(BIN)/tickwave ] && $(BIN)/tickwave down
	rm -rf .tickwave $(VENV)
