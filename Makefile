# Two entry points: `make demo` and `make test` (see README). Everything lives in .venv.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# The CPU build of torch (on the build machines' disk); installed first so that no resolver
# ever pulls a multi-GB CUDA build to satisfy the package's torch requirement.
TORCH_PIN ?= torch==2.13.0
EXTRAS ?= all
DEMO_DEVICE ?= host-cpu
DEMO_BUDGET ?= 0.15ms
DEMO_OUT ?= edgedistill-runs/demo

.PHONY: demo test lint venv clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-$(EXTRAS): pyproject.toml | $(BIN)/activate
	$(BIN)/pip install -q --disable-pip-version-check $(TORCH_PIN)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[$(EXTRAS),test]'
	touch $@

venv: $(VENV)/.installed-$(EXTRAS)

demo: venv
	rm -rf $(DEMO_OUT)
	$(BIN)/edgedistill fit --device $(DEMO_DEVICE) --budget $(DEMO_BUDGET) --task digits --out $(DEMO_OUT)
	@echo "report: $(DEMO_OUT)/report.html  bundle: $(DEMO_OUT)/bundle  (summary: $(DEMO_OUT)/summary.json)"

lint: venv
	$(BIN)/ruff check edgedistill tests benchmarks
	$(BIN)/ruff format --check edgedistill tests benchmarks
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest -m "not slow and not device and not gpu" -q --durations=25

clean:
	rm -rf $(VENV) edgedistill-runs .pytest_cache .ruff_cache
