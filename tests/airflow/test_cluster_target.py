"""--target cluster: the adapter drives only the API at the URL it is given.

The "cluster" is the session's real local api-server and scheduler: the adapter must start
nothing, log in with $ORCHBENCH_AIRFLOW_PASSWORD, trigger and read the run through REST.
"""

from __future__ import annotations

import pytest

from benchmarks.tools.airflow.adapter import AirflowAdapter
from benchmarks.tools.airflow.services import ServiceError, admin_password
from tests.airflow.conftest import DEFAULT_CONFIG, AirflowTestInstance


def test_cluster_target_runs_through_the_given_api_url(
    airflow: AirflowTestInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = airflow.services.settings.url
    monkeypatch.delenv("ORCHBENCH_AIRFLOW_PASSWORD", raising=False)
    adapter = AirflowAdapter(target="cluster", url=url)
    with pytest.raises(ServiceError, match="ORCHBENCH_AIRFLOW_PASSWORD"):
        adapter.run_pipeline(DEFAULT_CONFIG)

    monkeypatch.setenv("ORCHBENCH_AIRFLOW_PASSWORD", admin_password(airflow.home))
    # The "cluster's" store: the services' tasks share this machine's disk, named as a
    # URL (the config travels by value; a plain path would be refused).
    monkeypatch.setenv("ORCHBENCH_ARTIFACT_ROOT", airflow.orchbench_home.as_uri())
    assert adapter.start_services() is None
    assert adapter.service_pids() == []
    record = adapter.run_pipeline(DEFAULT_CONFIG, seed=5)
    assert record.status == "success", record.tool_details
    assert record.tool_details["url"] == url
    assert [t["task_id"] for t in record.tool_details["tasks"]], "task timings come from the API"
    # Steps, metrics and hash: read back from the store the tasks wrote to.
    assert record.steps and record.metrics and record.prediction_hash
