# syntax=docker/dockerfile:1
# The shared_ml image: the orchbench project (shared_ml + pipelines) installed from uv.lock,
# one variant per in-cluster role, because Airflow and Prefect cannot share an environment:
#
#   docker build --build-arg EXTRA=airflow  -t orchbench/shared-ml:0.1.0-airflow  .
#   docker build --build-arg EXTRA=prefect  -t orchbench/shared-ml:0.1.0-prefect  .
#   docker build --build-arg EXTRA=kubeflow -t orchbench/shared-ml:0.1.0-kubeflow .
#
# airflow: Airflow components and KubernetesExecutor task pods (DAGs in pipelines/airflow);
# prefect: the Prefect worker and flow-run job pods; kubeflow: KFP step pods.
# Every variant also gets the `s3` extra (s3fs) for the artifact store.

# Pinned to a patch release, not the floating 3.11-slim-bookworm. Not pinned by digest: a digest
# is per-architecture-index and would silently stop matching the Debian security rebuilds we do
# want; Renovate/Dependabot can bump this tag.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ARG EXTRA
ARG UV_VERSION=0.13.8
RUN case "${EXTRA}" in airflow|prefect|kubeflow) ;; \
      *) echo "build-arg EXTRA must be airflow, prefect or kubeflow, got '${EXTRA}'" >&2; exit 1;; \
    esac
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_CACHE_DIR=/var/cache/uv
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /src
# Seeded venv (has pip): the components set install_kfp_package=False, so nothing is installed
# at run time; pip stays only as a safety net should a launcher version try anyway.
RUN uv venv --seed /opt/venv
# Dependencies first (cached until uv.lock changes), then the project itself.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/var/cache/uv \
    uv sync --frozen --inexact --no-install-project --extra "${EXTRA}" --extra s3
COPY shared_ml ./shared_ml
COPY pipelines ./pipelines
COPY benchmarks ./benchmarks
COPY infra ./infra
RUN --mount=type=cache,target=/var/cache/uv \
    uv sync --frozen --inexact --no-editable --extra "${EXTRA}" --extra s3

FROM ${PYTHON_IMAGE} AS runtime
ARG EXTRA
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="orchbench shared-ml (${EXTRA})" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/orchbench/orchbench"
# uid 50000 / gid 0: the Airflow chart's defaults; any uid in group 0 can write the home dirs,
# so the Prefect and KFP pods may run it under another non-root uid.
RUN useradd --uid 50000 --gid 0 --home-dir /home/orchbench --create-home --shell /bin/bash \
        orchbench \
    && mkdir -p /opt/airflow /opt/orchbench \
    && chown 50000:0 /opt/airflow /home/orchbench \
    && chmod 2775 /opt/airflow /home/orchbench
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /src/shared_ml /opt/orchbench/shared_ml
COPY --from=builder /src/pipelines /opt/orchbench/pipelines
COPY configs /opt/orchbench/configs
ENV PATH=/opt/venv/bin:${PATH} \
    VIRTUAL_ENV=/opt/venv \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/home/orchbench \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/orchbench/pipelines/airflow \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    ORCHBENCH_IMAGE_EXTRA=${EXTRA}
WORKDIR /opt/orchbench
USER 50000:0
# Smoke check at build time: the library imports in this variant's environment.
RUN python -c "import shared_ml"
CMD ["python", "-c", "import shared_ml, sys; print('shared_ml image', sys.version)"]
