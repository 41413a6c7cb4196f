# Two commands matter: `make demo` (set up, then run the main job on the embedded model) and
# `make test` (set up with test tools, then the whole suite). Both can be run again safely.
VENV ?= .venv
BIN := $(VENV)/bin
STAMPS := .stamps
DEMO_GOAL ?= improve handwritten digit classification accuracy
DEMO_BUDGET ?= trials=6

.PHONY: demo test setup setup-dev bench clean

demo: setup
	$(BIN)/nanoresearch doctor --no-model
	$(BIN)/nanoresearch run "$(DEMO_GOAL)" --task examples/tasks/digits-classifier \
		--offline --corpus examples/corpus --budget $(DEMO_BUDGET) --yes

test: setup-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/pytest

setup: $(STAMPS)/setup
setup-dev: $(STAMPS)/setup-dev

$(STAMPS)/setup: pyproject.toml scripts/setup.sh
	scripts/setup.sh
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/setup-dev: pyproject.toml scripts/setup.sh
	scripts/setup.sh --dev
	@mkdir -p $(STAMPS) && touch $@ $(STAMPS)/setup

bench: setup-dev
	$(BIN)/python bench/bench_local_generation.py
	$(BIN)/python bench/bench_pipeline.py
	$(BIN)/python bench/bench_store.py
	$(BIN)/python bench/bench_retrieval.py
	$(BIN)/python bench/bench_sandbox.py
	$(BIN)/python bench/bench_sdpo.py
	$(BIN)/python bench/bench_web.py
	$(BIN)/python bench/bench_budget.py

clean:
	rm -rf $(STAMPS) $(VENV)
