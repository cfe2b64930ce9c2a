# Pinpoint — the commands of DESIGN.md §4. Every target creates .venv when it is missing.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DAGSTER := $(VENV)/bin/dagster
export PYTHONPATH := $(CURDIR)
export DAGSTER_HOME := $(CURDIR)/.dagster_home
export PINPOINT_ARTIFACTS ?= $(CURDIR)/artifacts
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: demo test ui bench lint clean venv gpu-wheels

venv: $(VENV)/.installed

# torch first and pinned: an unpinned resolve would pull gigabytes of CUDA wheels.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
	  print('\n'.join(p['dependencies'] + p['optional-dependencies']['dev']))" > $(VENV)/requirements.txt
	$(PY) -m pip install -q -r $(VENV)/requirements.txt
	$(PY) -m pip install -q --no-deps -e .  # the packages, and the `pinpoint` command
	$(PY) -m proofs.native  # the C state root (~1 s; says why and goes on if it cannot be built)
	$(PY) -m verification.execution.repro.build  # reproducible mode's fused C++ kernels (~20 s; says why and goes on if they cannot be built)
	touch $@

# Telemetry off; no newsletter dialog over the UI's first page (nux).
$(DAGSTER_HOME)/dagster.yaml: Makefile
	mkdir -p $(DAGSTER_HOME)
	printf 'telemetry:\n  enabled: false\nnux:\n  enabled: false\n' > $@

# The whole lifecycle of the embedded default job (or $PINPOINT_PRESET / $PINPOINT_SPEC) through
# the Dagster CLI, stage by stage as it runs, then its summary.
demo: venv $(DAGSTER_HOME)/dagster.yaml
	mkdir -p $(PINPOINT_ARTIFACTS)
	@echo "materializing every asset of the job (full log: $(PINPOINT_ARTIFACTS)/demo-dagster.log) ..."
	@start=$$(date +%s); job=$$($(PY) -m pipelines.job_key); echo "job $$job (its partition key)"; \
	if ! $(VENV)/bin/dg launch --assets '*' --partition $$job 2>&1 \
	  | $(PY) -m pipelines.progress $(PINPOINT_ARTIFACTS)/demo-dagster.log; then \
	  tail -n 60 $(PINPOINT_ARTIFACTS)/demo-dagster.log; exit 1; fi; \
	echo "done in $$(( $$(date +%s) - start ))s"
	$(PY) -m verification show

# Benchmarks run once each, at their smallest sizes (PINPOINT_BENCH_SMOKE), so that they cannot rot.
# One worker per core (pytest-xdist), a test module per worker: the suite is mostly one-threaded.
test: venv $(DAGSTER_HOME)/dagster.yaml
	PINPOINT_BENCH_SMOKE=1 $(PY) -m pytest -q -p no:randomly --benchmark-disable --durations=15 \
	  -n $${PINPOINT_TEST_WORKERS:-auto} --dist loadfile

# Dagster UI on 127.0.0.1 (the launcher restores default signal handling: Ctrl-C stops it all).
ui: venv $(DAGSTER_HOME)/dagster.yaml
	$(PY) -m pipelines.launch $(DAGSTER) dev -h 127.0.0.1 -p $${PORT:-3000} -w workspace.yaml

bench: venv $(DAGSTER_HOME)/dagster.yaml
	mkdir -p $(PINPOINT_ARTIFACTS)/bench
	$(PY) -m pytest benchmarks --benchmark-only --benchmark-json=$(PINPOINT_ARTIFACTS)/bench/benchmarks.json -q \
	  $(foreach group,$(GROUP),--group $(group)) $(if $(QUICK),--quick)
	$(PY) -m benchmarks.report $(PINPOINT_ARTIFACTS)/bench/benchmarks.json $(PINPOINT_ARTIFACTS)/bench
	$(DAGSTER) asset materialize -m pipelines.bench_definitions --select '*' > $(PINPOINT_ARTIFACTS)/bench/dagster.log 2>&1 \
	  || { tail -n 40 $(PINPOINT_ARTIFACTS)/bench/dagster.log; exit 1; }
	@echo "report: $(PINPOINT_ARTIFACTS)/bench/report.md"

lint: venv
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(PINPOINT_ARTIFACTS) $(DAGSTER_HOME)

# Wheels for scripts/gpu_check.sh on a lent GPU machine (Python 3.12 with its own torch, no network).
gpu-wheels: venv
	$(PY) -m pip download -q --python-version 3.12 --only-binary=:all: --platform manylinux_2_28_x86_64 \
	  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl -r scripts/gpu-requirements.txt
