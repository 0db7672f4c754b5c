"""Prometheus and Grafana as docker-compose.yml provisions them."""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from urllib.parse import urlparse

import yaml

from dashboards.panels import DATASOURCE
from tests.deploy.static import REPO, mounts_of, services

PROMETHEUS_CONFIG = REPO / "docker" / "prometheus" / "prometheus.yml"
PROVISIONING = REPO / "docker" / "grafana" / "provisioning"


def scrape_configs() -> dict[str, dict]:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert len(jobs) == len(config["scrape_configs"]), "duplicate job_name"
    return jobs


def static_targets(job: dict) -> list[str]:
    return [target for group in job.get("static_configs", []) for target in group["targets"]]


def test_prometheus_scrapes_the_api_metrics() -> None:
    jobs = [job for job in scrape_configs().values() if "api:8000" in static_targets(job)]
    assert jobs, "no scrape job targets api:8000"
    assert jobs[0].get("metrics_path", "/metrics") == "/metrics"


def test_prometheus_finds_every_worker_replica_on_its_metrics_port() -> None:
    jobs = scrape_configs()
    svc = services()
    for worker in ("worker-cpu", "worker-gpu"):
        command = svc[worker]["command"]
        port = int(command[command.index("--metrics-port") + 1])
        discovered = [
            sd for job in jobs.values() for sd in job.get("dns_sd_configs", [])
            if worker in sd["names"]
        ]
        assert discovered, f"{worker} replicas are not discovered"
        assert discovered[0]["type"] == "A" and discovered[0]["port"] == port


def test_prometheus_scrapes_the_exporters() -> None:
    targets = {t for job in scrape_configs().values() for t in static_targets(job)}
    assert {"node-exporter:9100", "postgres-exporter:9187"} <= targets


def test_every_scrape_target_is_a_compose_service() -> None:
    svc = services()
    for name, job in scrape_configs().items():
        for target in static_targets(job):
            host = target.rsplit(":", 1)[0]
            assert host == "localhost" or host in svc, f"job {name}: unknown host {host}"
        for sd in job.get("dns_sd_configs", []):
            assert set(sd["names"]) <= set(svc), f"job {name}: unknown service {sd['names']}"


def test_prometheus_service_loads_this_config() -> None:
    prometheus = services()["prometheus"]
    flags = dict(arg.split("=", 1) for arg in prometheus["command"] if "=" in arg)
    mounted = {m.target: m.source for m in mounts_of(prometheus)}
    assert mounted[flags["--config.file"]] == "./docker/prometheus/prometheus.yml"


def test_grafana_datasource_is_the_one_the_dashboards_name() -> None:
    datasources = [
        source
        for path in sorted((PROVISIONING / "datasources").glob("*.yml"))
        for source in yaml.safe_load(path.read_text())["datasources"]
    ]
    prometheus = [s for s in datasources if s["type"] == "prometheus"]
    assert prometheus and prometheus[0]["name"] == DATASOURCE
    url = urlparse(prometheus[0]["url"])
    assert url.hostname == "prometheus" and url.port == 9090


def test_grafana_provisioning_points_at_the_mounted_dashboards() -> None:
    grafana = services()["grafana"]
    mounts = {m.target: m for m in mounts_of(grafana)}
    assert mounts["/etc/grafana/provisioning"].source == "./docker/grafana/provisioning"
    providers = [
        provider
        for path in sorted((PROVISIONING / "dashboards").glob("*.yml"))
        for provider in yaml.safe_load(path.read_text())["providers"]
    ]
    assert providers
    for provider in providers:
        assert provider["type"] == "file"
        path = PurePosixPath(provider["options"]["path"])
        mount = next(
            (m for target, m in mounts.items()
             if path == PurePosixPath(target) or PurePosixPath(target) in path.parents),
            None,
        )
        assert mount is not None, f"nothing is mounted at {path}"
        host = REPO / mount.source / path.relative_to(mount.target)
        dashboards = sorted(host.glob("*.json"))
        assert dashboards, f"{host} holds no dashboard JSON"
        assert {REPO / "dashboards" / f"{name}.json" for name in ("api", "system", "jobs")} \
            <= set(dashboards)


def test_committed_dashboards_use_the_provisioned_datasource() -> None:
    def datasources(node: object) -> set[str]:
        if isinstance(node, dict):
            found = {node["datasource"]} if isinstance(node.get("datasource"), str) else set()
            return found.union(*(datasources(v) for v in node.values()))
        if isinstance(node, list):
            return set().union(*(datasources(v) for v in node))
        return set()

    for path in sorted((REPO / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"], f"{path.name} needs a uid for provisioning"
        assert datasources(dashboard) <= {DATASOURCE}, path.name


def test_prometheus_container_has_the_rule_files_next_to_its_config() -> None:
    """rule_files are relative to the config file: promtool (tests/monitoring) resolves them
    in docker/prometheus/, Prometheus in the container's config directory."""
    prometheus = services()["prometheus"]
    flags = dict(arg.split("=", 1) for arg in prometheus["command"] if "=" in arg)
    config_dir = PurePosixPath(flags["--config.file"]).parent
    mounted = {m.target: m.source for m in mounts_of(prometheus)}
    for rule_file in yaml.safe_load(PROMETHEUS_CONFIG.read_text())["rule_files"]:
        assert mounted[str(config_dir / rule_file)] == f"./docker/prometheus/{rule_file}"
        assert (PROMETHEUS_CONFIG.parent / rule_file).is_file()


def test_prometheus_sends_alerts_to_the_compose_alertmanager() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    targets = [t for am in config["alerting"]["alertmanagers"]
               for group in am["static_configs"] for t in group["targets"]]
    assert targets == ["alertmanager:9093"]
    alertmanager = services()["alertmanager"]
    flags = dict(arg.split("=", 1) for arg in alertmanager["command"] if "=" in arg)
    mounted = {m.target: m.source for m in mounts_of(alertmanager)}
    assert mounted[flags["--config.file"]] == "./docker/alertmanager/alertmanager.yml"


def test_prometheus_scrapes_cadvisor_for_the_container_panels() -> None:
    targets = {t for job in scrape_configs().values() for t in static_targets(job)}
    assert "cadvisor:8080" in targets
    assert "cadvisor" in services()
