"""Committed Grafana JSON matches what the grafanalib sources render."""

import json

from dashboards.build import HERE, build_all


def test_committed_dashboards_are_current() -> None:
    assert build_all(write=False) == []


def test_dashboard_queries_use_our_metric_names() -> None:
    data = json.loads((HERE / "mediaflow.json").read_text())
    exprs = [t["expr"] for p in data["panels"] for t in p["targets"]]
    assert any("mediaflow_http_requests_total" in e for e in exprs)
    assert any("temporal_activity_schedule_to_start_latency" in e for e in exprs)
    assert len({p["id"] for p in data["panels"]}) == len(data["panels"])
