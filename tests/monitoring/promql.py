"""What the monitoring tests ask Prometheus: every expression of the dashboards and the
alert rules, and a real Prometheus (Debian's package) to ask."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import yaml

from tests.conftest import REPO

DASHBOARDS = REPO / "dashboards"
PROMETHEUS_CONFIG = REPO / "docker" / "prometheus" / "prometheus.yml"
ALERTS = REPO / "docker" / "prometheus" / "alerts.yml"

SET_OPERATOR = re.compile(
    r"(and|or|unless)\b(\s+(?:on|ignoring)\s*\([^)]*\))?(\s+group_(?:left|right)\b"
    r"(\s*\([^)]*\))?)?", re.IGNORECASE)
COMPARISON_TAIL = re.compile(
    r"\s*(==|!=|>=|<=|>|<)\s*(bool\s+)?[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")


def panel_queries() -> list[tuple[str, str]]:
    """(``<dashboard>: <panel title>``, expression) of every panel target."""
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                found.append((f"{path.stem}: {panel['title']}", target["expr"]))
    return found


def alert_rules() -> list[dict]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def operands(expr: str) -> list[str]:
    """The operands of ``expr``'s top-level ``and``/``or``/``unless``, each without its
    threshold (``x > 0.05`` → ``x``) and outer parentheses: the quantities an alert
    compares, which must exist for the alert to mean anything."""
    parts, depth, quote, start, i = [], 0, "", 0, 0
    while i < len(expr):
        char = expr[i]
        if quote:
            quote = "" if char == quote and expr[i - 1] != "\\" else quote
        elif char in "\"'`":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0 and (i == 0 or not (expr[i - 1].isalnum() or expr[i - 1] == "_")):
            match = SET_OPERATOR.match(expr, i)
            if match:
                parts.append(expr[start:i])
                start = i = match.end()
                continue
        i += 1
    parts.append(expr[start:])
    return [_quantity(part) for part in parts]


def _quantity(part: str) -> str:
    previous = None
    part = part.strip()
    while part != previous:
        previous = part
        part = COMPARISON_TAIL.sub("", part).strip()
        if part.startswith("(") and part.endswith(")") and _balanced(part[1:-1]):
            part = part[1:-1].strip()
    return part


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is missing: apt-get install prometheus prometheus-node-exporter " \
                  "(make system-deps)"
    return found


def local_config(targets: dict[str, str], scrape_interval: str = "1s") -> dict:
    """docker/prometheus/prometheus.yml with its jobs pointed at loopback ``targets``
    (job name → host:port; jobs without one are dropped), the repository's alert rules,
    and no Alertmanager."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"].update(scrape_interval=scrape_interval, evaluation_interval=scrape_interval,
                            scrape_timeout=scrape_interval)
    config["rule_files"] = [str(PROMETHEUS_CONFIG.parent / name) for name in config["rule_files"]]
    config.pop("alerting", None)
    jobs = []
    for job in config["scrape_configs"]:
        if job["job_name"] in targets:
            job.pop("dns_sd_configs", None)
            job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
            jobs.append(job)
    config["scrape_configs"] = jobs
    return config


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=f"{url}/api/v1", timeout=10)

    def query(self, expr: str) -> list[dict]:
        response = self.http.get("/query", params={"query": expr})
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", (expr, body)
        return body["data"]["result"]

    def wait_until_scraped_twice(self, name_pattern: str, timeout: float = 30) -> None:
        """Until every series whose name matches has two samples: what a rate needs (a
        counter born a scrape ago has one)."""
        deadline = time.monotonic() + timeout
        while True:
            series = self.query(f'{{__name__=~"{name_pattern}"}}[5m]')
            if series and min(len(s["values"]) for s in series) >= 2:
                return
            assert time.monotonic() < deadline, "some series were never scraped twice"
            time.sleep(0.5)

    def value(self, expr: str) -> float:
        result = self.query(expr)
        assert len(result) == 1, (expr, result)
        return float(result[0]["value"][1])

    def by(self, expr: str, label: str) -> dict[str, float]:
        return {r["metric"].get(label, ""): float(r["value"][1]) for r in self.query(expr)}

    def wait_for(self, expr: str, expected: float, timeout: float = 30, *,
                 at_least: bool = False) -> None:
        """Until ``expr`` is one series of value ``expected`` (or more, ``at_least``)."""
        deadline = time.monotonic() + timeout
        seen: object = None
        while time.monotonic() < deadline:
            result = self.query(expr)
            seen = result
            if len(result) == 1:
                value = float(result[0]["value"][1])
                if value == expected or (at_least and value > expected):
                    return
            time.sleep(0.5)
        raise AssertionError(f"{expr} never became {expected}: {seen}")


@contextmanager
def run_prometheus(workdir: Path, port: int, targets: dict[str, str]) -> Iterator[Prometheus]:
    config = workdir / "prometheus.yml"
    config.write_text(yaml.safe_dump(local_config(targets)))
    log = (workdir / "prometheus.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 - Debian's prometheus
        [tool("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (workdir / "prometheus.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "Prometheus did not become ready"
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield Prometheus(url)
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()
