#!/usr/bin/env bash
# The e2e run reaches every system through kubectl port-forwards, which die with a pod restart
# or a dropped connection, and everything after would fail. This (re)starts each forward whose
# endpoint does not answer; run it before each step that needs them, and in a loop beside the
# long benchmark. The forwards are the ones infra exports (tests/infra/test_workflows.py).
set -euo pipefail
logs="${RUNNER_TEMP:-/tmp}"

forward() {  # name namespace service local:remote url
  local name=$1 namespace=$2 service=$3 ports=$4 url=$5
  # Any HTTP answer counts (S3 answers an anonymous request with an error status).
  if curl -sS -o /dev/null --max-time 5 "${url}" 2>/dev/null; then
    return 0
  fi
  echo "port-forward ${name}: (re)starting ${namespace}/svc/${service} ${ports}"
  pkill -f "port-forward svc/${service} ${ports}" || true
  kubectl -n "${namespace}" port-forward "svc/${service}" "${ports}" \
    >> "${logs}/pf-${name}.log" 2>&1 &
  for _ in $(seq 1 30); do
    curl -sS -o /dev/null --max-time 5 "${url}" 2>/dev/null && return 0
    sleep 2
  done
  echo "::error::port-forward ${name} (${namespace}/svc/${service} ${ports}) does not answer at ${url}"
  return 1
}

all_forwards() {
  forward airflow airflow airflow-api-server 8080:8080 http://localhost:8080/api/v2/monitor/health
  forward prefect prefect prefect-server 4200:4200 http://localhost:4200/api/health
  forward kfp kubeflow ml-pipeline 8888:8888 http://localhost:8888/apis/v2beta1/healthz
  forward s3 orchbench-storage seaweedfs 8333:8333 http://localhost:8333/
}

# --watch N: check every N seconds until killed, never exiting on a failed check (the step
# that uses the forwards reports the failure); otherwise check once and fail if one is down.
if [ "${1:-}" = "--watch" ]; then
  while sleep "${2:?--watch needs seconds}"; do
    all_forwards || echo "port-forwards.sh: a forward is down; trying again"
  done
fi
all_forwards
