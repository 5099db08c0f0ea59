# One command per habit. Each target makes its own .venv, installs what it
# needs and builds the extension (STREAMCORE_REQUIRE_EXTENSIONS=1: a failed
# compile is an error here, never a silent fallback).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
PIP := $(PY) -m pip --disable-pip-version-check -q
FUZZ_SECONDS ?= 5
SOURCES := $(shell find streamcore -name '*.pyx' -o -name '*.pxd' 2>/dev/null)

.PHONY: test test-uvicorn system-deps demo demo-asyncio demo-trio screenshots bench bench-e2e fuzz diff lint docs build clean testinstalled

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.test: $(PY) requirements/build.txt requirements/test.txt
	$(PIP) install -r requirements/test.txt
	touch $@

$(VENV)/.bench: $(PY) requirements/build.txt requirements/bench.txt
	$(PIP) install -r requirements/bench.txt
	touch $@

$(VENV)/.lint: $(VENV)/.test requirements/lint.txt
	$(PIP) install -r requirements/lint.txt
	touch $@

$(VENV)/.docs: $(PY) requirements/docs.txt
	$(PIP) install -r requirements/docs.txt
	touch $@

build: $(VENV)/.test
	STREAMCORE_REQUIRE_EXTENSIONS=1 $(PY) setup.py -q build_ext --inplace

# Debian packages the integration and browser tests run for real (redis-server,
# chromium driven by Playwright: never a browser download); CI runs as root
system-deps:
	@for pkg in redis-server chromium; do command -v $$pkg >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkg >/dev/null; \
	  else echo "$$pkg is missing: install Debian's $$pkg for the Redis and browser tests"; fi; }; done

# redis-server and two uvicorn workers of examples/demo/app.py; prints the URLs
demo: build system-deps
	$(PY) examples/demo/run.py

# the demo without uvicorn or Redis: on plain asyncio, and on trio (docs/demo.md)
demo-asyncio: build
	$(PY) examples/demo_asyncio.py

demo-trio: build
	$(PY) examples/trio_ws_sse.py

# docs/img/demo-*.png, taken by headless Chromium against the demo
screenshots: build system-deps
	$(PY) examples/demo/screenshots.py

test: build system-deps
	$(PY) -m pytest tests -q -p no:cacheprovider
	$(PY) tests/uvicorn_suite/run.py
	$(PY) fuzz/run.py --seconds $(FUZZ_SECONDS)

# uvicorn's own tests/protocols/test_websocket.py (the pinned sdist, downloaded
# into build/) against streamcore.integrations.uvicorn (tests/uvicorn_suite/)
test-uvicorn: build
	$(PY) tests/uvicorn_suite/run.py

fuzz: build
	$(PY) fuzz/run.py --seconds $${FUZZ_SECONDS:-600}

# differential fuzzing against the peers (docs/diff.md): DIFF_PROTOCOLS="chunked sse ws",
# DIFF_SECONDS per worker, one worker per core, atheris when installed
diff: build
	for p in $${DIFF_PROTOCOLS:-chunked}; do $(PY) -m streamcore.diff $$p --seconds $${DIFF_SECONDS:-60} --jobs 0 || exit 1; done

# pytest-benchmark cases live in benchmarks/bench_<group>.py (not test_*.py, so the
# test suite never runs them): -o python_files collects them here.
bench: build $(VENV)/.bench
	$(PY) -m pytest benchmarks -q -p no:cacheprovider -o 'python_files=bench_*.py' --benchmark-only --benchmark-min-rounds=3 --benchmark-max-time=0.2 --benchmark-columns=min,mean,ops
	$(PY) -m benchmarks.compare
	$(PY) -m benchmarks.summary

# servers and clients in their own processes over loopback (benchmarks/e2e.py)
bench-e2e: build system-deps $(VENV)/.bench
	$(PY) -m benchmarks.e2e
	$(PY) -m benchmarks.e2e_sse
	$(PY) -m benchmarks.e2e_fanout

lint: build $(VENV)/.lint
	$(BIN)/ruff check streamcore tests benchmarks fuzz examples
	$(BIN)/mypy --strict streamcore

docs: $(VENV)/.docs
	$(BIN)/mkdocs build --strict

# the suite against the installed wheel, not the source tree
testinstalled: $(VENV)/.test
	rm -rf build/testinstalled && $(PY) -m venv build/testinstalled/venv
	STREAMCORE_REQUIRE_EXTENSIONS=1 build/testinstalled/venv/bin/pip -q install . -r requirements/test.txt
	cd build/testinstalled && cp -r ../../tests . && venv/bin/python -m pytest tests -q -p no:cacheprovider

clean:
	rm -rf build dist *.egg-info site .pytest_cache .hypothesis
	find streamcore \( -name '*.so' -o -name '*.c' -o -name '*.html' \) -delete
