"""deploy/k8s against Kubernetes' own schemas, KEDA's documented Temporal trigger, and the
code it deploys (``core.config.Settings``, the ``mediaflow`` CLI, ``core.temporal``, the
API's routes, docker-compose.yml's images).

No cluster is involved: the core kinds are validated against the Kubernetes JSON schemas
that the ``kubernetes-validate`` package bundles (strict: an unknown field fails), with
every non-loopback connection refused; KEDA's ScaledObject, a custom resource whose schema
lives in KEDA's CRDs, is checked field by field against KEDA's documentation.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

import click
import kubernetes_validate
import pytest
import typer
import yaml

from core import temporal as names
from core.config import Settings, WeakSecretError, secret_problem
from tests.deploy.static import REPO, interpolate, services, setting_names, tool

K8S = REPO / "deploy" / "k8s"
KUSTOMIZATION = K8S / "kustomization.yaml"
# the oldest Kubernetes the manifests are meant for (KEDA 2.17 supports 1.30 and later)
# and the newest the installed package knows
KUBE_VERSIONS = ("1.30", kubernetes_validate.latest_version())
KEDA_API_VERSION = "keda.sh/v1alpha1"
PLACEHOLDER = "REPLACE_ME"
TAG_PLACEHOLDER = "REPLACE_TAG"
TASK_QUEUES = {names.JOBS_QUEUE, *names.POOL_QUEUES.values()}
API_PREFIX = "/api/v1"
WORKERS = {"worker-cpu": "cpu", "worker-gpu": "gpu"}
SECRET_KEY = re.compile(r"(SECRET|PASSWORD|PASSWD|TOKEN|ACCESS_KEY|DATABASE_URL)", re.I)
# volumes a pod may have: none outlives the pod or is shared with another (shared-nothing)
POD_LOCAL_VOLUMES = {"emptyDir", "configMap", "secret", "projected", "downwardAPI"}

# KEDA's ScaledObject specification and its Temporal scaler as of v2.17, the first release
# with the scaler (keda.sh docs; pkg/scalers/temporal.go): the fields each may carry.
SCALED_OBJECT_SPEC = {
    "scaleTargetRef", "pollingInterval", "cooldownPeriod", "initialCooldownPeriod",
    "idleReplicaCount", "minReplicaCount", "maxReplicaCount", "fallback", "advanced",
    "triggers",
}
SCALE_TARGET_REF = {"apiVersion", "kind", "name", "envSourceContainerName"}
TRIGGER = {"type", "name", "metadata", "authenticationRef", "metricType", "useCachedMetrics"}
TEMPORAL_METADATA = {
    "endpoint", "endpointFromEnv", "namespace", "activationTargetQueueSize",
    "targetQueueSize", "taskQueue", "queueTypes", "buildId", "selectAllActive",
    "selectUnversioned", "apiKeyFromEnv", "minConnectTimeout", "unsafeSsl",
}
TEMPORAL_QUEUE_TYPES = {"workflow", "activity", "nexus"}


@dataclass(frozen=True)
class Manifest:
    path: Path
    doc: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.doc["kind"])

    @property
    def name(self) -> str:
        return str(self.doc["metadata"]["name"])

    def __str__(self) -> str:
        return f"{self.path.name}: {self.kind}/{self.name}"


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p != KUSTOMIZATION)


@cache
def manifests() -> tuple[Manifest, ...]:
    return tuple(Manifest(path, doc) for path in manifest_files()
                 for doc in yaml.safe_load_all(path.read_text()) if doc is not None)


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {m.name: m.doc for m in manifests() if m.kind == kind}


def one(kind: str, name: str) -> dict[str, Any]:
    found = of_kind(kind)
    assert name in found, f"deploy/k8s has no {kind} {name!r}"
    return found[name]


def workloads() -> dict[str, dict[str, Any]]:
    """Deployments and Jobs by name (their names do not collide)."""
    found = {**of_kind("Deployment"), **of_kind("Job")}
    assert len(found) == len(of_kind("Deployment")) + len(of_kind("Job"))
    return found


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"].get("labels", {})


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def main_container(workload: dict[str, Any]) -> dict[str, Any]:
    found = pod_spec(workload)["containers"]
    assert len(found) == 1, "one container per pod"
    return found[0]


def config() -> dict[str, str]:
    return one("ConfigMap", "mediaflow")["data"]


def secret() -> dict[str, str]:
    return one("Secret", "mediaflow")["stringData"]


def option(args: list[str], name: str) -> str:
    assert name in args, f"{name} missing from {args}"
    return args[args.index(name) + 1]


def parsed_command(container: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(command, parameters) of a container running the image's ``mediaflow`` entrypoint,
    parsed by the CLI itself: an unknown command, option or value raises."""
    from cli.main import app

    group = typer.main.get_command(app)
    args = [str(a) for a in container["args"]]
    command = group.commands.get(args[0])  # type: ignore[attr-defined]
    assert command is not None, f"`mediaflow {args[0]}` does not exist"
    try:
        context = command.make_context(f"mediaflow {args[0]}", args[1:])
    except click.ClickException as exc:
        raise AssertionError(f"mediaflow {' '.join(args)}: {exc.format_message()}") from exc
    return args[0], context.params


def quantity(value: str | int) -> float:
    """A Kubernetes CPU quantity in cores ("4", "500m")."""
    text = str(value)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Loopback only: the schemas must come from the package, never from the network."""
    connect = socket.socket.connect

    def loopback_only(sock: socket.socket, address: Any) -> Any:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0])
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
            assert loopback, f"a test tried to reach {address}"
        return connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", loopback_only)
    yield


# ---------------------------------------------------------------- the files


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load(KUSTOMIZATION.read_text())
    assert kustomization["kind"] == "Kustomization"
    assert sorted(kustomization["resources"]) == sorted(p.name for p in manifest_files())
    assert kustomization["namespace"] == one("Namespace", "mediaflow")["metadata"]["name"]


def test_the_deployment_is_complete_and_names_are_unique() -> None:
    found = [(m.kind, m.name) for m in manifests()]
    assert len(found) == len(set(found)), f"duplicates in {found}"
    assert {
        ("Namespace", "mediaflow"), ("ConfigMap", "mediaflow"), ("Secret", "mediaflow"),
        ("Job", "migrate"), ("Job", "temporal-setup"), ("Deployment", "api"),
        ("Service", "api"), ("Deployment", "worker-cpu"), ("Deployment", "worker-gpu"),
        ("ScaledObject", "worker-cpu"), ("ScaledObject", "worker-gpu"),
    } <= set(found)


def test_every_object_is_in_the_namespace() -> None:
    namespace = one("Namespace", "mediaflow")["metadata"]["name"]
    for m in manifests():
        if m.kind != "Namespace":
            assert m.doc["metadata"].get("namespace") == namespace, f"{m}: namespace"


@pytest.mark.parametrize("version", KUBE_VERSIONS)
@pytest.mark.parametrize("manifest", [m for m in manifests()
                                      if not m.doc["apiVersion"].startswith("keda.sh/")],
                         ids=str)
def test_core_kinds_match_the_kubernetes_schema(manifest: Manifest, version: str) -> None:
    try:
        kubernetes_validate.validate(manifest.doc, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path)
        pytest.fail(f"{manifest} against Kubernetes {version}: {path}: {exc.message}")


def test_the_only_custom_resources_are_keda_scaled_objects() -> None:
    custom = {(m.doc["apiVersion"], m.kind) for m in manifests()
              if m.doc["apiVersion"].startswith("keda.sh/")}
    assert custom == {(KEDA_API_VERSION, "ScaledObject")}


def test_the_schema_check_catches_a_typo() -> None:
    """The validation above is strict: a misspelt field is an error, not ignored."""
    broken = yaml.safe_load(yaml.safe_dump(one("Deployment", "api")))
    main_container(broken)["readinesProbe"] = main_container(broken).pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBE_VERSIONS[0], strict=True)


def test_queue_names_appear_nowhere_wrong() -> None:
    """Any ``mediaflow-<word>`` in the manifests is one of the task queues."""
    for path in [*manifest_files(), KUSTOMIZATION]:
        tokens = set(re.findall(r"mediaflow-[a-z0-9_-]*[a-z0-9]", path.read_text()))
        assert tokens <= TASK_QUEUES, f"{path.name} names unknown queues: {tokens - TASK_QUEUES}"


# ---------------------------------------------------------------- wiring


def test_selectors_match_their_pods_and_only_them() -> None:
    pods = {name: pod_labels(w) for name, w in workloads().items()}

    def selected(selector: dict[str, str]) -> set[str]:
        return {name for name, labels in pods.items() if selector.items() <= labels.items()}

    for name, deployment in of_kind("Deployment").items():
        assert selected(deployment["spec"]["selector"]["matchLabels"]) == {name}
    assert selected(one("Service", "api")["spec"]["selector"]) == {"api"}
    assert selected(one("PodDisruptionBudget", "api")["spec"]["selector"]["matchLabels"]) \
        == {"api"}


def test_env_sources_exist() -> None:
    for name, workload in workloads().items():
        for container in containers(workload):
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in of_kind("ConfigMap"), name
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in of_kind("Secret"), name


def test_mediaflow_env_names_are_settings_fields() -> None:
    used = set(config()) | set(secret())
    for workload in workloads().values():
        for container in containers(workload):
            used |= {e["name"] for e in container.get("env", [])
                     if e["name"].startswith("MEDIAFLOW_")}
    assert all(name.startswith("MEDIAFLOW_") for name in set(config()) | set(secret()))
    unknown = used - setting_names()
    assert not unknown, f"deploy/k8s sets MEDIAFLOW_* names no settings class has: {unknown}"


def test_volume_mounts_name_declared_volumes() -> None:
    for name, workload in workloads().items():
        declared = {v["name"] for v in pod_spec(workload).get("volumes", [])}
        for container in containers(workload):
            mounted = {m["name"] for m in container.get("volumeMounts", [])}
            assert mounted <= declared, f"{name}: {mounted - declared} are not declared"


def test_every_container_runs_as_the_images_non_root_user_read_only() -> None:
    for name, workload in workloads().items():
        pod = pod_spec(workload)["securityContext"]
        assert pod["runAsNonRoot"] and pod["runAsUser"] == 10001, name  # docker/Dockerfile
        for container in containers(workload):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            # a read-only root: whatever writes must have a volume
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{name}: no writable /tmp"


# ---------------------------------------------------------------- configuration


def filled_in_secret() -> dict[str, str]:
    """The Secret as an operator fills it in: every placeholder replaced."""
    return {key: value.replace(PLACEHOLDER, secrets.token_hex(32))
            for key, value in secret().items()}


def settings_from(env: dict[str, str]) -> Settings:
    prefix = len(Settings.model_config.get("env_prefix", ""))
    values = {key[prefix:].lower(): value for key, value in env.items()}
    # model_validate: these values and the code's defaults only, no process env or .env
    return Settings.model_validate({k: v for k, v in values.items() if k in Settings.model_fields})


def test_configuration_makes_production_settings_that_start() -> None:
    settings = settings_from({**config(), **filled_in_secret()})
    settings.check_startup()
    assert settings.env == "production" and not settings.is_dev
    assert settings.is_postgres
    assert settings.storage == "s3", "workers share nothing but S3, PostgreSQL and Temporal"
    assert settings.temporal_address == config()["MEDIAFLOW_TEMPORAL_ADDRESS"]
    assert settings.scratch_root == Path(config()["MEDIAFLOW_SCRATCH_DIR"])
    assert settings.public_url and settings.public_url.startswith("https://")


def test_several_api_processes_share_one_rate_limit_count() -> None:
    api = one("Deployment", "api")
    _, params = parsed_command(main_container(api))
    assert api["spec"]["replicas"] * params["workers"] > 1
    storage = settings_from(config()).rate_limit_storage
    assert storage.startswith(("redis://", "rediss://")), (
        "memory:// would count per process: each of the API's processes would allow the "
        "full rate")


def test_the_secret_holds_placeholders_only() -> None:
    doc = one("Secret", "mediaflow")
    assert "data" not in doc, "base64 `data` hides what is committed: use stringData"
    for key, value in secret().items():
        if "://" in value:
            url = urlparse(value)
            assert url.password == PLACEHOLDER, f"{key} embeds a password"
        else:
            assert value == PLACEHOLDER, f"{key} is not a placeholder"
    # left unreplaced, the placeholder stops the API and the workers instead of signing
    # tokens with a key everyone can read
    assert secret_problem(secret()["MEDIAFLOW_JWT_SECRET"]) is not None
    with pytest.raises(WeakSecretError):
        settings_from({**config(), **secret()}).check_startup()


def test_the_config_map_holds_nothing_secret() -> None:
    for key, value in config().items():
        assert not SECRET_KEY.search(key), f"{key} belongs in the Secret"
        if "://" in value:
            assert urlparse(value).password is None, f"{key} embeds a password"
    for workload in workloads().values():
        for container in containers(workload):
            for env in container.get("env", []):
                assert not SECRET_KEY.search(env["name"]), f"{env['name']} belongs in the Secret"


# ---------------------------------------------------------------- commands and images


def test_container_commands_are_real_cli_commands() -> None:
    """Every container runs the image's ``mediaflow`` entrypoint with a command and options
    the CLI accepts, except the Temporal setup, a shell script over the ``temporal`` CLI."""
    expected = {"migrate": "migrate", "api": "api", "worker-cpu": "worker",
                "worker-gpu": "worker"}
    for name, workload in workloads().items():
        container = main_container(workload)
        if name == "temporal-setup":
            assert container["command"][:2] == ["/bin/sh", "-c"]
            continue
        assert "command" not in container, f"{name}: keep the image's entrypoint"
        command, _ = parsed_command(container)
        assert command == expected[name], name


def test_workers_poll_their_pool() -> None:
    for name, pool in WORKERS.items():
        _, params = parsed_command(main_container(one("Deployment", name)))
        assert params["pool"] == pool and pool in names.POOL_QUEUES


def compose_image(service: str) -> str:
    """The image docker-compose.yml runs for ``service`` when .env names none."""
    return interpolate(services()[service]["image"], {})


def test_images_are_the_compose_images_with_a_tag_placeholder() -> None:
    compose = {"worker-gpu": compose_image("worker-gpu")}
    for name, workload in workloads().items():
        image = main_container(workload)["image"]
        assert TAG_PLACEHOLDER in image, f"{name}: {image} has no tag placeholder"
        # the compose default tag is `local`, -gpu for the GPU image
        as_compose = image.replace(TAG_PLACEHOLDER, "local")
        assert as_compose == compose.get(name, compose_image("api")), f"{name}: {image}"


# ---------------------------------------------------------------- the API


@cache
def api_paths() -> set[str]:
    from api.main import create_app

    app = create_app(settings_from({**config(), **filled_in_secret()}))
    # the documented routes, and those outside the OpenAPI document (/metrics)
    return set(app.openapi()["paths"]) | {getattr(route, "path", "") for route in app.routes}


def container_port(container: dict[str, Any], port: str | int) -> int:
    if isinstance(port, int):
        assert port in {p["containerPort"] for p in container["ports"]}
        return port
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port in named, f"no container port named {port}"
    return named[port]


def test_api_probes_use_the_health_routes() -> None:
    api = main_container(one("Deployment", "api"))
    ready = api["readinessProbe"]["httpGet"]
    live = api["livenessProbe"]["httpGet"]
    assert ready["path"] == f"{API_PREFIX}/health", "readiness: every dependency answers"
    assert live["path"] == f"{API_PREFIX}/health/live", "liveness: the process answers"
    assert api["startupProbe"]["httpGet"]["path"] == live["path"]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert api[probe]["httpGet"]["path"] in api_paths()


def test_api_port_service_and_scrape_annotations_agree() -> None:
    deployment = one("Deployment", "api")
    api = main_container(deployment)
    _, params = parsed_command(api)
    assert params["host"] == "0.0.0.0"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container_port(api, api[probe]["httpGet"]["port"]) == params["port"]
    service_ports = one("Service", "api")["spec"]["ports"]
    assert [container_port(api, p["targetPort"]) for p in service_ports] == [params["port"]]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == params["port"]
    assert annotations["prometheus.io/path"] in api_paths()


# ---------------------------------------------------------------- workers


def grace_seconds(value: str) -> int:
    match = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", value)
    assert match and value, f"unparsable duration {value!r}"
    return int(match[1] or 0) * 60 + int(match[2] or 0)


@pytest.mark.parametrize("name", WORKERS)
def test_worker_metrics_port_probes_and_scrape_annotations_agree(name: str) -> None:
    deployment = one("Deployment", name)
    worker = main_container(deployment)
    _, params = parsed_command(worker)
    port = params["metrics_port"]
    assert port > 0, "the probes and Prometheus need the metrics port"
    for probe in ("startupProbe", "livenessProbe"):
        check = worker[probe]["httpGet"]
        assert container_port(worker, check["port"]) == port and check["path"] == "/metrics"
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == port
    assert annotations["prometheus.io/path"] == "/metrics"


@pytest.mark.parametrize("name", WORKERS)
def test_worker_slots_and_threads_fit_its_cpus(name: str) -> None:
    """A container sees the node's cores, not its limit: the slots and the encoder threads
    per slot must be set, and together not ask for more CPUs than the pod has."""
    worker = main_container(one("Deployment", name))
    _, params = parsed_command(worker)
    env = {e["name"]: e.get("value") for e in worker.get("env", [])}
    threads = int(env["MEDIAFLOW_FFMPEG_THREADS"])
    assert params["concurrency"] > 0 and threads > 0
    cpus = quantity(worker["resources"]["limits"]["cpu"])
    assert params["concurrency"] * threads <= cpus


@pytest.mark.parametrize("name", WORKERS)
def test_worker_has_time_to_hand_back_its_steps(name: str) -> None:
    """At least the grace docker-compose.yml gives the same worker."""
    pod = pod_spec(one("Deployment", name))
    compose = grace_seconds(services()[name]["stop_grace_period"])
    assert pod["terminationGracePeriodSeconds"] >= compose


@pytest.mark.parametrize("name", sorted(workloads()))
def test_pods_share_nothing(name: str) -> None:
    """No PersistentVolumeClaim, hostPath or network volume in any pod: a pod's files die
    with it, and what outlives it is in S3, PostgreSQL or Temporal."""
    for volume in pod_spec(workloads()[name]).get("volumes", []):
        kinds = set(volume) - {"name"}
        assert kinds <= POD_LOCAL_VOLUMES, f"{name}: volume {volume['name']} is {kinds}"


def volume_at(workload: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The volume holding ``path`` in the pod's container (the deepest mount above it)."""
    mounts = [m for m in main_container(workload).get("volumeMounts", [])
              if PurePosixPath(path).is_relative_to(m["mountPath"])]
    if not mounts:
        return None
    deepest = max(mounts, key=lambda m: len(PurePosixPath(m["mountPath"]).parts))
    return {v["name"]: v for v in pod_spec(workload)["volumes"]}[deepest["name"]]


@pytest.mark.parametrize("name", [*WORKERS, "api"])
def test_scratch_and_data_dir_are_the_pods_own_empty_dirs(name: str) -> None:
    """MEDIAFLOW_SCRATCH_DIR (ffmpeg's files, uploads in flight) and the data dir (the
    API's metrics files) are writable under the read-only root, and private to the pod."""
    workload = one("Deployment", name)
    for setting in ("MEDIAFLOW_SCRATCH_DIR", "MEDIAFLOW_DATA_DIR"):
        volume = volume_at(workload, config()[setting])
        assert volume is not None, f"{name}: {setting} {config()[setting]} has no volume"
        assert "emptyDir" in volume, f"{name}: {setting} is on {volume}"


def test_only_the_gpu_worker_asks_for_a_gpu() -> None:
    for name, workload in workloads().items():
        limits = main_container(workload).get("resources", {}).get("limits", {})
        if name == "worker-gpu":
            assert int(limits["nvidia.com/gpu"]) >= 1
        else:
            assert "nvidia.com/gpu" not in limits, name
    env = {e["name"]: e.get("value", "")
           for e in main_container(one("Deployment", "worker-gpu")).get("env", [])}
    assert "video" in env["NVIDIA_DRIVER_CAPABILITIES"].split(","), "NVDEC needs `video`"


# ---------------------------------------------------------------- the Temporal setup Job


def setup_script() -> str:
    return str(main_container(one("Job", "temporal-setup"))["command"][2])


def test_temporal_setup_registers_the_code_search_attributes() -> None:
    listed = re.search(r"for attribute in ([^;]*);", setup_script().replace("\\\n", " "))
    assert listed, "no `for attribute in …` list"
    found = dict(word.split(":") for word in listed[1].split())
    assert found == {key.name: names.search_attribute_type(key)
                     for key in names.SEARCH_ATTRIBUTES}


def test_temporal_setup_reads_the_configured_temporal() -> None:
    used = set(re.findall(r"\$\{?(MEDIAFLOW_[A-Z_]+)", setup_script()))
    assert used == {"MEDIAFLOW_TEMPORAL_ADDRESS", "MEDIAFLOW_TEMPORAL_NAMESPACE"}
    assert used <= set(config()) and used <= setting_names()


def test_temporal_setup_script_is_clean_posix_sh(tmp_path: Path) -> None:
    script = tmp_path / "temporal-setup.sh"
    script.write_text(setup_script())
    assert setup_script().startswith("set -eu\n")
    result = subprocess.run([tool("shellcheck"), "-s", "sh", str(script)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------- KEDA


def scaled_objects() -> dict[str, dict[str, Any]]:
    return of_kind("ScaledObject")


@pytest.mark.parametrize("name", sorted(scaled_objects()))
def test_scaled_object_has_only_documented_fields(name: str) -> None:
    scaled = scaled_objects()[name]
    assert scaled["apiVersion"] == KEDA_API_VERSION
    spec = scaled["spec"]
    assert set(spec) <= SCALED_OBJECT_SPEC, set(spec) - SCALED_OBJECT_SPEC
    assert set(spec["scaleTargetRef"]) <= SCALE_TARGET_REF
    for field in ("pollingInterval", "cooldownPeriod", "minReplicaCount", "maxReplicaCount"):
        assert isinstance(spec.get(field, 0), int), field
    for trigger in spec["triggers"]:
        assert set(trigger) <= TRIGGER, set(trigger) - TRIGGER


def test_each_worker_deployment_has_one_scaled_object_and_no_fixed_replicas() -> None:
    targets = []
    for scaled in scaled_objects().values():
        ref = scaled["spec"]["scaleTargetRef"]
        assert ref.get("apiVersion", "apps/v1") == "apps/v1"
        assert ref.get("kind", "Deployment") == "Deployment"
        assert ref["name"] in of_kind("Deployment"), f"no Deployment {ref['name']}"
        targets.append(ref["name"])
    assert sorted(targets) == sorted(WORKERS)
    for name in WORKERS:
        assert "replicas" not in one("Deployment", name)["spec"], (
            f"{name}: an applied `replicas` would reset what KEDA chose")


@pytest.mark.parametrize("name", sorted(scaled_objects()))
def test_scaled_object_scales_on_its_pools_task_queue(name: str) -> None:
    spec = scaled_objects()[name]["spec"]
    target = one("Deployment", spec["scaleTargetRef"]["name"])
    _, params = parsed_command(main_container(target))
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "temporal"
    metadata = trigger["metadata"]
    assert set(metadata) <= TEMPORAL_METADATA, set(metadata) - TEMPORAL_METADATA
    assert all(isinstance(v, str) for v in metadata.values()), "KEDA metadata values are strings"
    assert metadata["taskQueue"] == names.POOL_QUEUES[params["pool"]]
    # FFmpeg steps are activity tasks: say so (KEDA's default set of types has changed
    # between releases, and a workflow backlog on these queues is always empty)
    assert set(metadata["queueTypes"].split(",")) == {"activity"} <= TEMPORAL_QUEUE_TYPES
    assert metadata["endpoint"] == config()["MEDIAFLOW_TEMPORAL_ADDRESS"]
    assert metadata.get("namespace", "default") == config()["MEDIAFLOW_TEMPORAL_NAMESPACE"]
    assert int(metadata["targetQueueSize"]) > 0
    assert int(metadata.get("activationTargetQueueSize", "0")) >= 0


@pytest.mark.parametrize("name", sorted(scaled_objects()))
def test_scaled_object_never_scales_a_pool_to_zero(name: str) -> None:
    """The CPU workers run every job's workflow; the GPU pool gets `auto` steps only while
    a GPU worker polls. Either at zero would never see the backlog that should wake it."""
    spec = scaled_objects()[name]["spec"]
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    assert "idleReplicaCount" not in spec


@pytest.mark.parametrize("name", sorted(scaled_objects()))
def test_scaled_object_hpa_behavior_matches_the_kubernetes_schema(name: str) -> None:
    """KEDA copies ``advanced.horizontalPodAutoscalerConfig.behavior`` into the HPA it
    creates: validate it there."""
    spec = scaled_objects()[name]["spec"]
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    hpa = {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                    "name": name},
                 "minReplicas": spec["minReplicaCount"],
                 "maxReplicas": spec["maxReplicaCount"], "behavior": behavior},
    }
    for version in KUBE_VERSIONS:
        kubernetes_validate.validate(hpa, version, strict=True)
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 300, (
        "an idle backlog does not mean idle workers: scale down slowly")
