"""An adapter given a URL drives only the API at that URL.

The server is the real local server and worker of the session: the adapter must start
nothing, submit through the deployment, and read the runs back from that API. Its runs are
the session's backfill (configs/daily.yaml over three dates). ``--target cluster`` itself
(deployments on the cluster's Kubernetes pool, records on the object store) is tested in
tests/benchmarks/test_cluster_prefect.py.
"""

from __future__ import annotations

from benchmarks.tools.prefect.adapter import PrefectAdapter
from benchmarks.tools.prefect.client import PrefectClient
from shared_ml.records import RunRecord


def test_an_adapter_given_a_url_runs_through_that_api(
    cluster_adapter: PrefectAdapter, backfill: list[RunRecord], client: PrefectClient
) -> None:
    assert cluster_adapter.mode == "deployment"
    for record in backfill:
        assert record.status == "success", record.tool_details
        assert record.tool == "prefect"
        assert record.tool_details["mode"] == "deployment"
        # The flow run it reports exists on the server it was pointed at, and completed.
        flow_run = client.read_flow_run(record.tool_details["flow_run_id"])
        assert flow_run["state"]["type"] == "COMPLETED"
        assert flow_run["deployment_id"] is not None
    assert not cluster_adapter.services.home.exists(), "a cluster target must start nothing"
