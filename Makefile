# Two commands for a fresh Debian/Ubuntu machine:
#   make run   -- install what is missing, then `mediaflow dev`
#   make test  -- install what is missing, then the test suite
# Both are idempotent: a second run installs nothing.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT    := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get
PYTEST_ARGS ?=
PACKAGES := api core workflows activities cli dashboards piccolo_migrations bench tests
# Test files spread over parallel processes (pytest-xdist), one per core (at most 4): each
# has its own database, Temporal dev server and ports (tests/conftest.py). More processes
# than cores overlap the tests' waits a little better but load the machine past what the
# timing of the process-level tests (kills, restarts, live progress) tolerates.
TEST_PROCESSES ?= $(shell n=$$(nproc); [ $$n -gt 4 ] && n=4; echo $$n)

.PHONY: run test bench bytecode install system-deps bench-deps postgres lint dashboards clean

run: install bytecode
	exec $(BIN)/mediaflow dev

test: install postgres bytecode
	$(BIN)/pytest -n $(TEST_PROCESSES) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

# mediaflow's own bytecode, for the same reason as the packages' (see install); compileall
# skips what is up to date
bytecode: install
	@$(BIN)/python -m compileall -q -j 0 $(PACKAGES) >/dev/null

# Every benchmark in bench/, side by side ratios, written to docs/PERFORMANCE.md
bench: install bench-deps postgres bytecode
	$(BIN)/python -m bench.all

# wrk drives the API load benchmark; py-spy and pyinstrument profile (bench/README.md)
bench-deps:
	@command -v wrk >/dev/null || { $(APT) update && $(APT) install -y --no-install-recommends wrk; }
	@$(BIN)/python -c 'import pyinstrument' 2>/dev/null || $(BIN)/python -m pip install --quiet py-spy pyinstrument

install: system-deps $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "mediaflow needs Python >= 3.11 (found $$($(PYTHON) --version))"; exit 1; }
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV) || \
		{ $(APT) update && $(APT) install -y python3-venv && $(PYTHON) -m venv $(VENV); }
	@# uv (from PyPI) installs the same packages as pip in a few seconds instead of a
	@# minute; pip does it where uv cannot be installed or cannot reach the index. Both
	@# write the packages' bytecode (pip does by default, uv when asked): every process
	@# the tests start would otherwise recompile its imports, since Python only reads
	@# bytecode where PYTHONDONTWRITEBYTECODE is set
	{ $(BIN)/python -m pip install --quiet uv && \
	  $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e ".[test]"; } || \
	{ $(BIN)/python -m pip install --quiet --upgrade pip && \
	  $(BIN)/python -m pip install --quiet -e ".[test]"; }
	rm -f $(VENV)/.installed-* && touch $@

# ffmpeg/ffprobe and the DejaVu fonts that drawtext and subtitles use; Prometheus (the
# server and promtool), node-exporter and Alertmanager (amtool), which the monitoring tests
# run for real (docs/OPERATIONS.md, "Metrics" and "Alerts"); curl and jq, which the
# README's quick start uses (tests/cli/test_client.py runs it as written); redis-server, which
# the tests start for rate limits shared by API processes (tests/utils/services.py)
system-deps:
	@if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null || \
	    [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || \
	    ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null || \
	    ! command -v prometheus-node-exporter >/dev/null || ! command -v amtool >/dev/null || \
	    ! command -v curl >/dev/null || ! command -v jq >/dev/null || \
	    ! command -v redis-server >/dev/null; then \
		$(APT) update && $(APT) install -y --no-install-recommends ffmpeg fonts-dejavu-core \
			prometheus prometheus-node-exporter prometheus-alertmanager curl jq redis-server; \
	fi

# The tests use a real PostgreSQL on 127.0.0.1:5432 (MEDIAFLOW_TEST_PG overrides).
# Start a local cluster that is installed but stopped.
postgres:
	@if [ -z "$$MEDIAFLOW_TEST_PG" ] && command -v pg_isready >/dev/null && \
	    ! pg_isready -q -h 127.0.0.1 -p 5432; then \
		for v in $$(ls /etc/postgresql 2>/dev/null); do \
			$(SUDO) pg_ctlcluster --skip-systemctl-redirect $$v main start || true; \
		done; \
		for i in 1 2 3 4 5 6 7 8 9 10; do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; \
	fi
	@command -v pg_isready >/dev/null || { echo "PostgreSQL is not installed: apt-get install postgresql (trust auth on 127.0.0.1) or set MEDIAFLOW_TEST_PG"; exit 1; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy api core workflows activities cli dashboards

dashboards: install
	$(BIN)/mediaflow dashboards

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
