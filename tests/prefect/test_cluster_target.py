"""--target cluster: the adapter drives only the API at the URL it is given.

The "cluster" here is the real local server and worker of the session: the adapter must
start nothing, submit through the deployment, and read the run back from that API.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.tools.prefect.adapter import PrefectAdapter
from benchmarks.tools.prefect.client import PrefectClient


def test_cluster_target_runs_through_the_given_api_url(
    services, client: PrefectClient, config_path: Path, tmp_path: Path
) -> None:
    adapter = PrefectAdapter(target="cluster", url=services.api_url, home=tmp_path / "unused")
    assert adapter.mode == "deployment"
    assert adapter.start_services() is None
    record = adapter.run_pipeline(config_path, seed=5)
    assert record.status == "success", record.tool_details
    assert record.tool == "prefect"
    # The flow run it reports exists on the server it was pointed at, and completed.
    flow_run_id = record.tool_details["flow_run_id"]
    assert client.read_flow_run(flow_run_id)["state"]["type"] == "COMPLETED"
    assert not (tmp_path / "unused").exists(), "a cluster target must not start local services"
