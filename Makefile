# The two front-door commands are `make demo` and `make test` (see README.md).
# Every environment is created by the project itself: uv comes from PyPI into .venvs/uv,
# then one environment per orchestrator is synced from the committed uv.lock.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .venvs/uv/bin/uv
VENVS := core airflow prefect kubeflow infra

.PHONY: demo test envs lint manifests check-manifests test-core test-smoke test-airflow \
	test-prefect test-kubeflow test-infra clean

$(UV):
	$(PYTHON) -m venv .venvs/uv
	.venvs/uv/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# core: shared_ml, benchmarks, tests; no orchestrator. Each tool: its own extra.
# --compile-bytecode, as pip does by default and the images do: without the .pyc files,
# and with PYTHONDONTWRITEBYTECODE set (as on the project's machines), every process
# compiles its imports from source (Airflow's: 8 s instead of 3 s here), which no
# production install does. The Makefile is a prerequisite so a change here re-syncs.
.venvs/%/.synced: $(UV) pyproject.toml uv.lock Makefile
	UV_PROJECT_ENVIRONMENT=.venvs/$* $(UV) sync --frozen --quiet --compile-bytecode \
		--extra dev $(if $(filter core,$*),,--extra $*)
	touch $@ .venvs/$*/.runtime

envs: $(foreach v,$(VENVS),.venvs/$(v)/.synced)

# `make demo` runs the pipeline and a quick benchmark, not the tests: it installs each
# tool's runtime only, without the dev tools (pytest, moto, selenium ...) or the infra
# environment. Compiling their bytecode took about 100 of the 220 s that `make envs`
# takes here. --inexact keeps the dev tools of an environment `make envs` built.
DEMO_VENVS := core airflow prefect kubeflow
.venvs/%/.runtime: $(UV) pyproject.toml uv.lock Makefile
	UV_PROJECT_ENVIRONMENT=.venvs/$* $(UV) sync --frozen --quiet --inexact --compile-bytecode \
		$(if $(filter core,$*),,--extra $*)
	touch $@

# Two syncs at a time: uv's bytecode compiler leaves part of the second core idle, so four
# environments took about 12% less time side by side than one after another here.
demo: $(UV)
	$(MAKE) --no-print-directory -j2 $(foreach v,$(DEMO_VENVS),.venvs/$(v)/.runtime)
	.venvs/core/bin/orchbench demo

lint: .venvs/core/.synced
	.venvs/core/bin/ruff check .
	.venvs/core/bin/ruff format --check .
	.venvs/core/bin/lint-imports

# The generated manifests, committed: Airflow's worker pod template, Prefect's Kubernetes
# work pool job template, the KFP IR. Each is built by pipelines/<tool>/manifest.py in its
# tool's environment; `check-manifests` fails when a committed one differs from a fresh build.
manifests: .venvs/airflow/.synced .venvs/prefect/.synced .venvs/kubeflow/.synced
	.venvs/airflow/bin/python -m pipelines.airflow.manifest
	.venvs/prefect/bin/python -m pipelines.prefect.manifest
	.venvs/kubeflow/bin/python -m pipelines.kubeflow.manifest

check-manifests: .venvs/airflow/.synced .venvs/prefect/.synced .venvs/kubeflow/.synced
	.venvs/airflow/bin/python -m pipelines.airflow.manifest --check
	.venvs/prefect/bin/python -m pipelines.prefect.manifest --check
	.venvs/kubeflow/bin/python -m pipelines.kubeflow.manifest --check

SMOKE := tests/benchmarks/test_smoke.py

# Core runs in its own environment, but some of its tests check every environment
# (tests/benchmarks/test_compiled_environments.py).
test-core: envs
	.venvs/core/bin/pytest tests/unit tests/benchmarks --ignore=$(SMOKE)

# The end-to-end smoke benchmark: it drives every tool from its own environment.
test-smoke: envs
	.venvs/core/bin/pytest $(SMOKE)

test-airflow: .venvs/airflow/.synced
	.venvs/airflow/bin/pytest tests/airflow

test-prefect: .venvs/prefect/.synced
	.venvs/prefect/bin/pytest tests/prefect

# Its CLI tests also drive the core environment's orchbench (tests/kubeflow/conftest.py).
test-kubeflow: .venvs/kubeflow/.synced .venvs/core/.synced
	.venvs/kubeflow/bin/pytest tests/kubeflow

test-infra: .venvs/infra/.synced
	.venvs/infra/bin/pytest tests/infra

# Two jobs at a time, the environments' syncs among them: a suite starts as soon as its own
# environment is synced while the next environment syncs beside it, rather than after all
# five (about 4 minutes here). Much of each suite's time is spent waiting on servers,
# schedulers and pollers, so on 2 cores two lanes finish well before one would. Each suite
# uses its own homes and free ports (tests/conftest.py), so they never meet. --output-sync
# keeps each job's output together. Make starts the goals in this order as lanes free up:
# lint first (it needs only the core environment), then the two longest suites, one per
# lane; the order balances the lanes by the suites' durations in the CI logs (--durations).
SUITES := test-prefect test-airflow test-kubeflow test-smoke test-core test-infra
TEST_JOBS := lint $(SUITES) check-manifests
test: $(UV)
	$(MAKE) --no-print-directory -j2 --output-sync=target $(TEST_JOBS)

clean:
	rm -rf .venvs var reports
