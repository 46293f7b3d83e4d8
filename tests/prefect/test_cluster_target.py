"""--target cluster: the adapter drives only the API at the URL it is given.

The "cluster" here is the real local server and worker of the session: the adapter must
start nothing, submit through the deployment, and read the runs back from that API. Its
runs are the session's backfill (configs/daily.yaml over three dates).
"""

from __future__ import annotations

from benchmarks.tools.prefect.adapter import PrefectAdapter
from benchmarks.tools.prefect.client import PrefectClient
from shared_ml.records import RunRecord


def test_cluster_target_runs_through_the_given_api_url(
    cluster_adapter: PrefectAdapter, backfill: list[RunRecord], client: PrefectClient
) -> None:
    assert cluster_adapter.mode == "deployment"
    assert cluster_adapter.start_services() is None
    for record in backfill:
        assert record.status == "success", record.tool_details
        assert record.tool == "prefect"
        assert record.tool_details["mode"] == "deployment"
        # The flow run it reports exists on the server it was pointed at, and completed.
        flow_run = client.read_flow_run(record.tool_details["flow_run_id"])
        assert flow_run["state"]["type"] == "COMPLETED"
        assert flow_run["deployment_id"] is not None
    assert not cluster_adapter.services.home.exists(), "a cluster target must start nothing"
