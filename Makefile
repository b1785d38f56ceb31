# Two entry points, each creating .venv on a fresh machine:
#   make run   - the main job on the embedded default (synthetic data)
#   make test  - lint, format check and the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_DIR ?= runs/demo
USERS ?= 2000
SEED ?= 0

.PHONY: run test venv bench clean airflow

venv: $(STAMP)

# scripts/install.sh (torch==2.13.0 first, then the package) is shared with the Dockerfile.
$(STAMP): pyproject.toml scripts/install.sh
	PYTHON=$(PYTHON) bash scripts/install.sh $(VENV) dev,celery,datasets
	touch $(STAMP)

# The main job: synthetic data, validation, both Airflow DAGs for real (`airflow dags test`:
# nightly retrain -> basket.mar published into model_store/, then batch scoring to parquet),
# then TorchServe started on the published model, asked once and stopped.
run: $(STAMP)
	bash scripts/main_job.sh $(RUN_DIR) $(USERS) $(SEED)

# A real local Airflow (scheduler, dag-processor, api-server on 127.0.0.1:8090, triggerer;
# LocalExecutor, SQLite in airflow_home/) with the project's DAGs, until Ctrl-C.
airflow: $(STAMP)
	bash scripts/airflow_cluster.sh

# The Triton test's environment (nvidia-pytriton's server, numpy<2): its own venv, built once.
TRITON_STAMP := .venv-triton/.installed
$(TRITON_STAMP): scripts/triton_env.sh
	bash scripts/triton_env.sh .venv-triton

test: $(STAMP) $(TRITON_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/pytest

# Benchmarks at Instacart scale (generates ~700 MB of synthetic data under bench/out once; ~30
# minutes; the scale-out one needs PostgreSQL and Redis). The serving benchmark needs Debian's wrk, installed here when missing (as root).
bench: $(STAMP)
	command -v wrk >/dev/null || apt-get install -y wrk
	$(BIN)/python bench/bench_load.py
	$(BIN)/python bench/bench_train_epoch.py
	$(BIN)/python bench/bench_xgb_features.py
	$(BIN)/python bench/bench_score.py
	$(BIN)/python bench/bench_serve.py
	$(BIN)/python bench/bench_batch_scaleout.py

clean:
	rm -rf runs bench/out .pytest_cache .ruff_cache
