"""Committed Grafana JSON matches what the grafanalib sources render, and every panel is
one an operator can use: described, and querying only metrics the code exports
(tests/monitoring evaluates every expression against a real Prometheus)."""

import json
import re

import pytest

from dashboards.build import HERE, build_all
from dashboards.panels import REFRESH
from tests.monitoring.exported import mediaflow_metric_names

DASHBOARDS = {"api.json": "mediaflow-api", "system.json": "mediaflow-system",
              "jobs.json": "mediaflow-jobs"}


def panels(name: str) -> list[dict]:
    return json.loads((HERE / name).read_text())["panels"]


def test_committed_dashboards_are_current() -> None:
    assert build_all(write=False) == []


def test_the_three_dashboards_exist_with_stable_uids() -> None:
    found = {path.name: json.loads(path.read_text())["uid"] for path in HERE.glob("*.json")}
    assert found == DASHBOARDS


@pytest.mark.parametrize("name", DASHBOARDS)
def test_panels_are_described_refreshed_and_uniquely_numbered(name: str) -> None:
    data = json.loads((HERE / name).read_text())
    assert data["refresh"] == REFRESH == "5s"
    graphs = [p for p in data["panels"] if p["type"] != "row"]
    assert graphs
    for panel in graphs:
        assert panel["description"] and len(panel["description"]) > 20, panel["title"]
        assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]
    assert len({p["id"] for p in data["panels"]}) == len(data["panels"])


@pytest.mark.parametrize("name", DASHBOARDS)
def test_queries_name_only_metrics_the_code_exports(name: str) -> None:
    known = mediaflow_metric_names()
    for panel in panels(name):
        for target in panel.get("targets", []):
            for metric in re.findall(r"\bmediaflow_\w+", target["expr"]):
                assert metric in known, f"{name} {panel['title']!r}: {metric} is not exported"


def test_jobs_dashboard_covers_every_worker_metric() -> None:
    exprs = " ".join(t["expr"] for p in panels("jobs.json") for t in p.get("targets", []))
    for family in ("mediaflow_jobs_finished_total", "mediaflow_job_duration_seconds",
                   "mediaflow_job_queue_wait_seconds", "mediaflow_step_duration_seconds",
                   "mediaflow_ffmpeg_speed", "mediaflow_step_failures_total",
                   "mediaflow_ffmpeg_running", "mediaflow_worker_slots",
                   "mediaflow_worker_slots_used", "mediaflow_task_queue_backlog"):
        assert re.search(rf"\b{family}(_bucket|_count|_sum)?\b", exprs), family
