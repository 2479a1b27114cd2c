# Two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RESULTS ?= sweep-results

.PHONY: demo test lint bench clean venv browser

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@# An editable install leaves src/ uncompiled; compile once so every `sweep` start
	@# (and every forked worker) skips it, even where PYTHONDONTWRITEBYTECODE is set.
	$(BIN)/python -m compileall -q src
	touch $(STAMP)

DEMO_QUERY := SELECT point_index, commission_rate, num_drivers, num_riders, round(mean_online_drivers, 1) AS online_drivers, round(completion_rate, 3) AS completion_rate, round(wait_mean_min, 2) AS wait_mean_min, platform_revenue FROM shard_metrics WHERE run_id = 'demo-run-001' ORDER BY point_index

demo: $(STAMP)
	@echo "== sweep run examples/demo-run-001.json (embedded: local files + process pool)"
	@# Exit 0 means every shard that is not failure-injected succeeded; anything else stops here.
	@$(BIN)/sweep run examples/demo-run-001.json --results $(RESULTS)
	@echo
	@echo "== Results: Hive-partitioned Parquet under $(RESULTS)/sweeps. Example query:"
	@echo
	@echo "   $(BIN)/sweep query --results $(RESULTS) \"$(DEMO_QUERY)\""
	@echo
	@$(BIN)/sweep query --results $(RESULTS) "$(DEMO_QUERY)"
	@echo "== $(BIN)/sweep status demo-run-001 --results $(RESULTS)"
	@$(BIN)/sweep status demo-run-001 --results $(RESULTS)
	@echo
	@echo "== Demo OK: 3 of 4 shards succeeded; shard 1 failed on purpose (the request lists it"
	@echo "   in failure_injection_shards), so its points 2-3 have no data, as intended."
	@echo "   Next: $(BIN)/sweep report demo-run-001 --results $(RESULTS)   (HTML charts)"
	@echo "         $(BIN)/sweep runs --results $(RESULTS)                  (every run)"

# Finds or installs headless Chromium (see tools/ensure_chromium.sh); never fails without
# it unless SWEEP_REQUIRE_BROWSER=1, so a fresh non-root machine still runs every other test.
browser:
	@sh tools/ensure_chromium.sh

test: $(STAMP) browser
	$(BIN)/python -m pytest -n 2 --dist loadfile -rs

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/sim_throughput.py
	$(BIN)/python bench/local_sweep.py
	$(BIN)/python bench/ingress.py
	$(BIN)/python bench/estimate_accuracy.py

clean:
	rm -rf $(RESULTS) reports .pytest_cache .mypy_cache .ruff_cache
