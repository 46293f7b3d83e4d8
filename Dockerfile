# syntax=docker/dockerfile:1
# The shared_ml images: the orchbench project (shared_ml + pipelines) installed from uv.lock,
# one variant per in-cluster role, because Airflow and Prefect cannot share an environment:
#
#   docker build --build-arg EXTRA=airflow  -t orchbench/shared-ml:0.1.0-airflow  .
#   docker build --build-arg EXTRA=prefect  -t orchbench/shared-ml:0.1.0-prefect  .
#   docker build --build-arg EXTRA=kubeflow -t orchbench/shared-ml:0.1.0-kubeflow .
#
# airflow: Airflow components and KubernetesExecutor task pods (DAGs in pipelines/airflow);
# prefect: the Prefect worker and flow-run job pods; kubeflow: KFP step pods.
# Every variant also gets the `s3` extra (s3fs) for the artifact store.
#
# The last stage picks the variant: `FROM runtime-${EXTRA}`. Any other EXTRA fails there
# (no stage `runtime-<value>`).
#
# Every variant runs as uid 50000, gid 0 (the Airflow chart's `uid`/`gid`), with a home
# that uid owns ($HOME) and $ORCHBENCH_HOME=/home/orchbench, owned by it too: storage that a
# config leaves relative, and anything a step writes under the home, must be writable by
# the pod's user. Each variant checks that at build time, as that user.

# Pinned to a patch release, not the floating 3.11-slim-bookworm. Not pinned by digest: a digest
# is per-architecture-index and would silently stop matching the Debian security rebuilds we do
# want; Renovate/Dependabot can bump this tag.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
# The Airflow variant is the official image at the locked apache-airflow version (uv.lock),
# same Python minor as above. The chart's scheduler and dag-processor probes run
# `/entrypoint airflow jobs check ...` (apache/airflow chart/templates/_helpers.yaml,
# scheduler_liveness_check_command, chart helm-chart/1.22.0), and its defaults assume that
# image's layout: user airflow (uid 50000, gid 0) owning HOME=/home/airflow, the Python
# environment in /home/airflow/.local (a venv: $VIRTUAL_ENV), AIRFLOW_HOME=/opt/airflow,
# ENTRYPOINT dumb-init -- /entrypoint (apache/airflow Dockerfile, `main` stage).
ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11
ARG EXTRA

FROM ${PYTHON_IMAGE} AS uv
ARG UV_VERSION=0.13.8
RUN pip install --no-cache-dir "uv==${UV_VERSION}"

# --- prefect and kubeflow: python slim with the locked environment in /opt/venv ----------------
FROM uv AS builder
ARG EXTRA
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_CACHE_DIR=/var/cache/uv
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

FROM ${PYTHON_IMAGE} AS slim-runtime
ARG EXTRA
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="orchbench shared-ml (${EXTRA})" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/orchbench/orchbench"
# gid 0 and group-writable (setgid) home: any uid in group 0 can write it too, so the Prefect
# and KFP pods may run the image under another non-root uid.
RUN useradd --uid 50000 --gid 0 --home-dir /home/orchbench --create-home --shell /bin/bash \
        orchbench \
    && mkdir -p /opt/orchbench \
    && chown 50000:0 /home/orchbench \
    && chmod 2775 /home/orchbench
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /src/shared_ml /opt/orchbench/shared_ml
COPY --from=builder /src/pipelines /opt/orchbench/pipelines
COPY configs /opt/orchbench/configs
ENV PATH=/opt/venv/bin:${PATH} \
    VIRTUAL_ENV=/opt/venv \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/home/orchbench \
    ORCHBENCH_HOME=/home/orchbench \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    ORCHBENCH_IMAGE_EXTRA=${EXTRA}
WORKDIR /opt/orchbench
USER 50000:0
# Build-time contract check, as the pods' user: the library imports, the homes are writable.
RUN python -c "import shared_ml" && test -w "$HOME" && test -w "$ORCHBENCH_HOME"
CMD ["python", "-c", "import shared_ml, sys; print('shared_ml image', sys.version)"]

FROM slim-runtime AS runtime-prefect

FROM slim-runtime AS runtime-kubeflow

# --- airflow: the official image, its environment replaced by the locked one ----------------
# What uv.lock pins for the airflow and s3 extras, as a hashed requirements file; this stage
# changes only when the lock does, so the dependency layer below stays cached.
FROM uv AS airflow-lock
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
RUN uv export --frozen --no-emit-project --extra airflow --extra s3 \
        --output-file /requirements-airflow.txt

# The project as a wheel (non-editable, like the other variants' `uv sync --no-editable`).
FROM uv AS project-wheel
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
COPY shared_ml ./shared_ml
COPY pipelines ./pipelines
COPY benchmarks ./benchmarks
COPY infra ./infra
RUN uv build --wheel --out-dir /dist

FROM ${AIRFLOW_IMAGE} AS runtime-airflow
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="orchbench shared-ml (airflow)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/orchbench/orchbench"
USER root
RUN mkdir -p /opt/orchbench /home/orchbench \
    && chown 50000:0 /home/orchbench \
    && chmod 2775 /home/orchbench
# Installed as the image's user into its environment, as the official image expects (its pip
# refuses root). `uv pip sync` makes that environment exactly the lock's: the versions the
# suites test, not the image's constraints; the image's providers that orchbench does not
# lock are removed rather than left to run against other versions. uv comes from the `uv`
# stage (a mount, so it does not stay in the image); its cache is the image's UV_CACHE_DIR.
USER 50000:0
RUN --mount=from=uv,source=/usr/local/bin/uv,target=/usr/local/bin/uv \
    --mount=from=airflow-lock,source=/requirements-airflow.txt,target=/tmp/requirements-airflow.txt \
    --mount=type=cache,target=/tmp/.cache/uv,uid=50000,gid=0 \
    UV_PYTHON_DOWNLOADS=never uv pip sync --compile-bytecode --python "${VIRTUAL_ENV}/bin/python" \
        /tmp/requirements-airflow.txt
RUN --mount=from=uv,source=/usr/local/bin/uv,target=/usr/local/bin/uv \
    --mount=from=project-wheel,source=/dist,target=/tmp/dist \
    --mount=type=cache,target=/tmp/.cache/uv,uid=50000,gid=0 \
    UV_PYTHON_DOWNLOADS=never uv pip install --no-deps --compile-bytecode \
        --python "${VIRTUAL_ENV}/bin/python" /tmp/dist/*.whl
COPY --chown=50000:0 shared_ml /opt/orchbench/shared_ml
COPY --chown=50000:0 pipelines /opt/orchbench/pipelines
COPY --chown=50000:0 configs /opt/orchbench/configs
# HOME stays the image's /home/airflow (owned by uid 50000 there; the environment lives in it).
ENV HOME=/home/airflow \
    ORCHBENCH_HOME=/home/orchbench \
    PYTHONUNBUFFERED=1 \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/orchbench/pipelines/airflow \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    ORCHBENCH_IMAGE_EXTRA=airflow
WORKDIR /opt/orchbench
# ENTRYPOINT and CMD stay the image's (dumb-init -- /entrypoint): the chart's commands and
# probes go through /entrypoint.
RUN python -c "import airflow, shared_ml, pipelines.airflow.tasks" \
    && test -x /entrypoint && test -w "$HOME" && test -w "$ORCHBENCH_HOME"

FROM runtime-${EXTRA}
