# Two commands do all the set-up on a fresh machine:
#   make run    install, build the demo tables if data/ has none, serve http://127.0.0.1:8050
#   make test   install (with test tools and headless Chromium) and run the whole suite
# Real data: make run SOURCE=toc2me [INPUT=DIR]  (without INPUT the public files are fetched)

SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
DATA_DIR ?= data
SOURCE ?= demo
INPUT ?=
HOST ?= 127.0.0.1
PORT ?= 8050

.PHONY: install test-deps run build test bench bench-load clean-data fortran robustness nested

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -U pip

# Stamp files make re-runs instant; they are redone when a requirements file changes.
$(VENV)/.installed: requirements.txt scripts/build_skhash_fortran.sh scripts/skhash_gridsearch_fast.py | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements.txt
	@# SKHASH's Fortran grid search is optional (~2x faster, results within 1 deg): try to get gfortran
	@command -v gfortran >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gfortran) || true; }
	bash scripts/build_skhash_fortran.sh $(PY) || echo "SKHASH Fortran grid search not built: pure Python will run"
	touch $@

$(VENV)/.test-installed: requirements-test.txt $(VENV)/.installed
	$(PY) -m pip install -q -r requirements-test.txt
	touch $@

# plotly.js with only the trace types the pages draw (frontend/plotly/build.js): evaluating
# the full plotly.min.js took 1.3-1.6 s of every cold page load; and regenerator-runtime,
# which the pages load instead of Dash's @babel/polyfill (components/lean_runtime.py). Built
# with the machine's npm from the lock file; without npm the pages load the full plotly.js of
# the Python package and the polyfill (slower; the app says so when it starts).
PLOTLY_BUNDLE := assets/plotly-fm.min.js
RUNTIME_JS := frontend/plotly/dist/regenerator-runtime.min.js
$(PLOTLY_BUNDLE) $(RUNTIME_JS) &: frontend/plotly/package.json frontend/plotly/package-lock.json frontend/plotly/build.js
	@if command -v npm >/dev/null; then \
		cd frontend/plotly && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build; \
	else echo "npm not found: $(PLOTLY_BUNDLE) and $(RUNTIME_JS) not built; the pages load the full plotly.js and Dash's polyfill (slower first draw)"; fi

install: $(VENV)/.installed $(PLOTLY_BUNDLE) $(RUNTIME_JS)

# Headless browser for the dash_duo page tests (Debian packages; nothing downloaded at test time).
test-deps: $(VENV)/.test-installed $(PLOTLY_BUNDLE) $(RUNTIME_JS)
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		echo "installing Debian chromium + chromium-driver"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	fi

build: install
	$(PY) -m pipeline build --source $(SOURCE) $(if $(INPUT),--input $(INPUT)) --data-dir $(DATA_DIR)

run: install
	$(PY) -m pipeline ensure --source $(SOURCE) $(if $(INPUT),--input $(INPUT)) --data-dir $(DATA_DIR)
	FM_DATA_DIR=$(DATA_DIR) $(PY) app.py --host $(HOST) --port $(PORT)

# Two pytest processes (pytest-xdist), whole files per process: the browser tests spend
# much of their time waiting on Chromium, so two processes share the cores better than one.
TEST_WORKERS ?= 2
test: test-deps
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile

# the velocity-model robustness study the model page shows (200 events, CNN: about a minute on 2 cores with Fortran):
# re-makes the committed record pipeline/models/robustness_velocity_model.json; with EVENTS=N a
# smaller study for $(DATA_DIR) only (the page shows it instead of the record)
robustness: install
	$(PY) -m pipeline robustness $(if $(EVENTS),--events $(EVENTS) --data-dir $(DATA_DIR),--record)

# the polarity CNN's fully nested evaluation (pipeline/picking/full_nested.py): 2 x K inner
# trainings of about a minute each on 2 quiet cores; writes pipeline/models/cnn_polarity.full_nested.json
nested: install
	$(PY) -m pipeline nested $(if $(K),--k $(K))

bench: install
	$(PY) bench/run_all.py

# only the load test (bench/load.py: 20 users, 60 s, ToC2ME build and 1 M-event catalogue)
bench-load: install
	$(PY) bench/run_all.py --load-only

fortran: install
	bash scripts/build_skhash_fortran.sh $(PY)

# every version, the links to it and the chunk cache (the review database is kept)
clean-data:
	rm -rf $(DATA_DIR)/versions $(DATA_DIR)/work $(DATA_DIR)/current $(DATA_DIR)/*.parquet \
		$(DATA_DIR)/build_info.json $(DATA_DIR)/polarities $(DATA_DIR)/waveforms $(DATA_DIR)/rejects \
		$(DATA_DIR)/mechanism_stations $(DATA_DIR)/acceptable_planes $(DATA_DIR)/unsolved
