"""The alert rules and the monitoring configuration, checked by the tools that load them:
Debian's promtool (check rules, check config, unit tests) and amtool."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.monitoring.promql import operands

PROMETHEUS = REPO / "docker" / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
UNIT_TESTS = Path(__file__).with_name("alerts.test.yml")
ALERTMANAGER = REPO / "docker" / "alertmanager" / "alertmanager.yml"
OPERATIONS = REPO / "docs" / "OPERATIONS.md"


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is missing: apt-get install prometheus prometheus-alertmanager " \
                  "(make system-deps)"
    return found


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=REPO)


def alert_rules() -> list[dict]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_accepts_the_rules() -> None:
    checked = run(tool("promtool"), "check", "rules", str(ALERTS))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in checked.stdout


def test_promtool_accepts_the_compose_prometheus_config_and_its_rule_files() -> None:
    checked = run(tool("promtool"), "check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 1 rule files found" in checked.stdout


def test_every_alert_passes_its_unit_tests() -> None:
    tested = run(tool("promtool"), "test", "rules", str(UNIT_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_has_a_unit_test_that_fires_it() -> None:
    cases = yaml.safe_load(UNIT_TESTS.read_text())["tests"]
    fired = {check["alertname"] for case in cases for check in case.get("alert_rule_test", [])
             if check.get("exp_alerts")}
    assert {rule["alert"] for rule in alert_rules()} <= fired


def test_the_spec_alerts_exist() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    assert {
        "MediaflowApi5xxRatioHigh", "MediaflowApiLatencyP99High", "MediaflowJobFailureRatioHigh",
        "MediaflowBacklogGrowingWithoutProgress", "MediaflowNoWorkersForPoolWithWork",
        "MediaflowGpuIdleWhileGpuJobsWait", "MediaflowQueueWaitP95High",
        "MediaflowDiskNearlyFull", "MediaflowStorageErrors",
    } <= names


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_every_alert_has_a_severity_and_a_runbook_in_operations(rule: dict) -> None:
    assert rule["labels"]["severity"] in ("page", "ticket")
    assert rule.get("for"), "an alert fires only when the condition lasts"
    runbook = rule["annotations"]["runbook"]
    anchor = f"docs/OPERATIONS.md#{rule['alert'].lower()}"
    assert runbook == anchor
    headings = re.findall(r"^### (\S+)", OPERATIONS.read_text(), re.MULTILINE)
    assert rule["alert"] in headings, f"docs/OPERATIONS.md has no runbook for {rule['alert']}"


def test_amtool_accepts_the_alertmanager_config() -> None:
    checked = run(tool("amtool"), "check-config", str(ALERTMANAGER))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = yaml.safe_load(ALERTMANAGER.read_text())
    assert config["route"]["receiver"] in {r["name"] for r in config["receivers"]}


def test_alert_operands_are_the_quantities_without_thresholds() -> None:
    """What tests/monitoring/test_prometheus.py evaluates for each alert."""
    assert operands('a{x="(y)"} / b > 0.05 and on () (c or vector(0)) + d == 0'
                    ' unless on (queue) label_replace(e > 0, "q", "$1", "p", "(.+)")') == [
        'a{x="(y)"} / b', "(c or vector(0)) + d",
        'label_replace(e > 0, "q", "$1", "p", "(.+)")']
    assert operands("(sum(up) or vector(0)) < 1") == ["sum(up) or vector(0)"]
