# Two commands do everything on a fresh clone:  `make demo`  and  `make test`.
# Both create .venv and install into it when needed.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# torch is pinned first: on a machine without a GPU this resolves to the local CPU wheel,
# so the install never pulls CUDA packages; the package itself accepts any torch>=2.4.
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends
DEMO_ARGS ?=

.PHONY: setup offscreen-gl demo test test-fast lint format bench fuzz clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev,h1,render,ray]"
	@$(MAKE) --no-print-directory offscreen-gl
	@touch $(STAMP)

# Offscreen rendering (boom eval --video) on a headless machine without OSMesa: install
# libosmesa6 when root with apt-get, otherwise print a hint. Never fails the setup.
offscreen-gl:
	@if [ -z "$$DISPLAY" ] && ! ldconfig -p 2>/dev/null | grep -q libOSMesa; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing libosmesa6 (offscreen rendering without a GPU)"; \
	    $(APT_INSTALL) libosmesa6 >/dev/null 2>&1 || \
	      { apt-get update -qq >/dev/null 2>&1 && $(APT_INSTALL) libosmesa6 >/dev/null 2>&1; } || \
	      echo "could not install libosmesa6; boom eval --video needs it (or MUJOCO_GL=egl)"; \
	  else \
	    echo "hint: boom eval --video renders with OSMesa here: apt-get install libosmesa6"; \
	  fi; \
	fi

demo: $(STAMP)
	$(VENV)/bin/boom demo $(DEMO_ARGS)

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Coverage-guided fuzzing of the bridge's decoder: make fuzz FUZZ_RUNS=1000000
FUZZ_RUNS ?= 100000
fuzz: $(STAMP)
	$(PY) tests/bridge/fuzz_codec.py -runs=$(FUZZ_RUNS)

bench: $(STAMP)
	$(PY) benchmarks/env_speed.py --out benchmarks/results/env_speed.json

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
