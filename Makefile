# Two entry points: `make run` (the embedded offline default) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all

.PHONY: run test test-faults test-slurm lint dryrun schema clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch is pinned only when none is installed: the CPU wheel of 2.13.0 is on disk here, and a
# bare `torch` requirement would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --configfile config.yaml

# Two pytest workers, a test file each at a time: the tiny DAG's fixture (most of the suite's
# time) runs beside the unit tests, one torch thread per worker.
test: $(STAMP)
	$(BIN)/ruff check .
	PATH="$(abspath $(BIN)):$$PATH" OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadfile

# Kills jobs and snakemake, damages artifacts, fills a tmpfs (mounting it needs root).
test-faults: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -m faults

# The Slurm suite: a real two-node cluster on 127.0.0.1 (slurm-wlm and munge from apt-get, so
# root) running the tiny DAG through profiles/slurm, which needs the executor plugin.
test-slurm: $(STAMP)
	$(BIN)/python -c "import snakemake_executor_plugin_slurm" 2>/dev/null || $(BIN)/pip install --quiet -e ".[slurm]"
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -m slurm

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/snakemake --lint

dryrun: $(STAMP)
	$(BIN)/snakemake -n --cores $(CORES)

# The config schema is generated from the settings models (src/wwmdistill/settings/).
schema: $(STAMP)
	$(BIN)/python -m wwmdistill.settings > schemas/config.schema.yaml

clean:
	rm -rf results .snakemake
