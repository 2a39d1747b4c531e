# `make run` starts the app; `make test` runs lint and every test but the slow ones (marked `slow`: the soak,
# the long browser journeys; the quick browser tests stay); `make test-all` (what .ci/run runs) runs lint and
# every test. Each sets up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA ?= ../shared/data/tiktok_tracks.csv
CATALOGUE ?= ../shared/data/spotify_songs.csv

.PHONY: run test test-all lint bench train clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(VENV)/.bench: $(VENV)/.dev requirements-bench.txt requirements-bench-nodeps.txt
	$(PY) -m pip install --quiet -r requirements-bench.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-bench-nodeps.txt
	touch $@

# `make run PORT=8502` serves on another port (default 8501, or server.port in .streamlit/config.toml)
run: $(VENV)/.runtime
	$(PY) -m streamlit run app.py $(if $(PORT),--server.port $(PORT))

lint: $(VENV)/.dev
	$(PY) -m ruff check .

# TEST_WORKERS processes share the tests one by one (session fixtures train once per worker), except the
# browser tests (xdist group "browser"), which one worker runs so only one server and Chromium start;
# TEST_WORKERS=0 runs them all here
TEST_WORKERS ?= 2
test: lint
	$(PY) -m pytest -m "not slow" $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadgroup)

test-all: lint
	$(PY) -m pytest

# every benchmarks/<name>.py but common.py, whatif_reference.py (a yardstick) and model_card.py; each writes benchmarks/results/<name>.{md,json}
BENCHES := $(filter-out common whatif_reference model_card,$(basename $(notdir $(wildcard benchmarks/[a-z]*.py))))
bench: $(VENV)/.bench
	for b in $(BENCHES); do $(PY) -m benchmarks.$$b --data $(DATA) || exit 1; done

train: $(VENV)/.runtime
	$(PY) -m virality train --data $(DATA) --catalogue $(CATALOGUE) --out artifacts
	$(PY) -m virality train --data $(DATA) --out artifacts/additive --arch additive

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-output
