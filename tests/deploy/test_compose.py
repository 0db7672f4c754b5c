"""docker-compose.yml against the production services and configuration of docs/DEPLOYMENT.md.

Nothing here runs Docker: the file is parsed, interpolated the way compose does, and
checked against the code it deploys (``core.config.Settings``, the ``mediaflow`` CLI,
``core.temporal``, the API's routes).
"""

from __future__ import annotations

import re
import stat
from urllib.parse import urlparse

import pytest
import typer

from core import temporal as names
from core.config import Settings
from tests.deploy.static import (
    REPO,
    MissingVariable,
    compose_values,
    environment_of,
    healthcheck_test,
    interpolate,
    interpolations,
    load_compose,
    mounts_of,
    ports_of,
    required_variables,
    resolved_compose,
    services,
    setting_names,
)

COMPOSE_SERVICES = {
    "postgres", "temporal", "temporal-ui", "minio", "migrate", "api", "worker-cpu",
    "worker-gpu", "prometheus", "alertmanager", "grafana", "node-exporter", "cadvisor",
    "postgres-exporter",
}
# services built from this repository's Dockerfiles, i.e. running the `mediaflow` CLI
APP_SERVICES = ("migrate", "api", "worker-cpu", "worker-gpu")
LONG_RUNNING_APP_SERVICES = ("api", "worker-cpu", "worker-gpu")
TASK_QUEUES = {"mediaflow-jobs", "mediaflow-cpu", "mediaflow-gpu"}
SECRET_KEY = re.compile(r"(SECRET|PASSWORD|PASSWD|PWD|_PASS|ACCESS_KEY)", re.IGNORECASE)
SETTINGS_PREFIX = Settings.model_config.get("env_prefix", "")


def app_env(service: str) -> dict[str, str]:
    return environment_of(resolved_compose()["services"][service])


def depends_on(service: dict) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def test_spec_production_services_exist() -> None:
    missing = COMPOSE_SERVICES - set(services())
    assert not missing, f"production services missing from docker-compose.yml: {missing}"


def test_one_shots_prepare_temporal_minio_and_schema() -> None:
    svc = services()
    one_shots = {name for name, s in svc.items() if str(s.get("restart")) == "no"}
    assert {"migrate", "temporal-schema", "temporal-setup", "minio-setup"} <= one_shots
    assert "/mc:" in svc["minio-setup"]["image"]
    assert svc["migrate"]["command"] == ["migrate"]
    assert depends_on(svc["migrate"]) == {"postgres": "service_healthy"}


def test_every_image_is_pinned_to_a_tag() -> None:
    for name, service in resolved_compose()["services"].items():
        image = service.get("image")
        assert image, f"{name} has no image"
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert tag not in ("latest", ""), f"{name}: {image} floats on :latest"


def test_app_services_build_from_the_repository_dockerfiles() -> None:
    svc = services()
    for name in APP_SERVICES:
        build = svc[name]["build"]
        assert build["context"] == "."
        dockerfile = REPO / build["dockerfile"]
        assert dockerfile.is_file(), f"{name} builds from missing {dockerfile}"
    assert svc["worker-gpu"]["build"]["dockerfile"] == "docker/Dockerfile.gpu"
    assert {svc[n]["build"]["dockerfile"] for n in ("migrate", "api", "worker-cpu")} == {
        "docker/Dockerfile"
    }


def test_worker_cpu_is_scalable() -> None:
    worker = resolved_compose()["services"]["worker-cpu"]
    assert "container_name" not in worker, "a fixed container_name forbids --scale"
    assert not worker.get("ports"), "published host ports forbid --scale"
    assert int(worker["deploy"]["replicas"]) >= 1
    assert "profiles" not in worker


def test_worker_gpu_is_in_profile_gpu_with_an_nvidia_reservation() -> None:
    worker = resolved_compose()["services"]["worker-gpu"]
    assert worker["profiles"] == ["gpu"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    nvidia = [d for d in devices if d.get("driver") == "nvidia"]
    assert nvidia, "worker-gpu reserves no NVIDIA device"
    capabilities = set(nvidia[0]["capabilities"])
    assert {"gpu", "video"} <= capabilities, capabilities
    driver_caps = set(environment_of(worker)["NVIDIA_DRIVER_CAPABILITIES"].split(","))
    assert {"compute", "video", "utility"} <= driver_caps


def test_no_default_service_depends_on_a_profiled_one() -> None:
    svc = services()
    profiled = {name for name, s in svc.items() if s.get("profiles")}
    for name, service in svc.items():
        if service.get("profiles"):
            continue
        assert not set(depends_on(service)) & profiled, (
            f"{name} would not start without --profile: depends on {profiled}"
        )


def test_worker_commands_use_the_spec_pools() -> None:
    svc = services()
    assert svc["worker-cpu"]["command"][:3] == ["worker", "--pool", "cpu"]
    assert svc["worker-gpu"]["command"][:3] == ["worker", "--pool", "gpu"]
    assert set(names.POOL_QUEUES) == {"cpu", "gpu"}
    assert {names.JOBS_QUEUE, *names.POOL_QUEUES.values()} == TASK_QUEUES


def test_queue_names_appear_nowhere_wrong() -> None:
    """Any ``mediaflow-<word>`` in the deployment files is one of our task queues (the one
    exceptions: the dashboard uids). A typo such as ``mediaflow-cpus`` fails here."""
    allowed = TASK_QUEUES | {"mediaflow-api", "mediaflow-system"}  # + dashboard uids
    files = [
        REPO / "docker-compose.yml",
        REPO / "docker" / "prometheus" / "prometheus.yml",
        REPO / "docs" / "DEPLOYMENT.md",
        *sorted((REPO / "docker").glob("Dockerfile*")),
        *sorted((REPO / "docker").rglob("*.sh")),
        *sorted((REPO / "docker").rglob("*.yml")),
        *sorted((REPO / "docker").rglob("*.yaml")),
    ]
    for path in files:
        tokens = set(re.findall(r"mediaflow-[a-z0-9_-]*[a-z0-9]", path.read_text()))
        wrong = tokens - allowed
        assert not wrong, f"{path.relative_to(REPO)} names unknown queues/ids: {wrong}"


def test_compose_commands_are_real_cli_commands_and_options() -> None:
    from cli.main import app

    group = typer.main.get_command(app)
    commands = group.commands  # type: ignore[attr-defined]
    for name in APP_SERVICES:
        argv = services()[name]["command"]
        command = commands.get(argv[0])
        assert command is not None, f"{name}: `mediaflow {argv[0]}` does not exist"
        options = {opt for param in command.params for opt in param.opts}
        used = {word.split("=", 1)[0] for word in argv[1:] if word.startswith("--")}
        assert used <= options, f"{name}: unknown options {used - options}"
    assert "create-admin" in commands  # docs/DEPLOYMENT.md: `docker compose run --rm api ...`


def test_mediaflow_env_names_are_settings_fields() -> None:
    used = set()
    for service in services().values():
        used |= {key for key in environment_of(service) if key.startswith("MEDIAFLOW_")}
    used |= {name for name, _, _ in interpolations(compose_values())
             if name.startswith("MEDIAFLOW_")}
    unknown = used - setting_names()
    assert not unknown, f"compose uses MEDIAFLOW_* names no settings class has: {unknown}"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_services_pass_every_setting(service: str) -> None:
    """Each setting reaches the containers, fixed or from .env with the code's default:
    a setting added to the code but not here could not be changed in production."""
    missing = setting_names() - set(app_env(service))
    assert not missing, f"{service} never receives {sorted(missing)}"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_services_get_the_spec_configuration(service: str) -> None:
    env = app_env(service)
    assert env["MEDIAFLOW_ENV"] == "production"
    assert env["MEDIAFLOW_DATA_DIR"] == "/data"
    assert env["MEDIAFLOW_DATABASE_URL"].startswith("postgresql://")
    assert env["MEDIAFLOW_TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["MEDIAFLOW_STORAGE"] == "s3"
    assert env["MEDIAFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    for key in ("MEDIAFLOW_S3_BUCKET", "MEDIAFLOW_S3_ACCESS_KEY", "MEDIAFLOW_S3_SECRET_KEY",
                "MEDIAFLOW_JWT_SECRET"):
        assert env[key], f"{service}: {key} is empty"


def test_compose_environment_makes_settings_that_start_the_api() -> None:
    """The environment a filled-in .env produces parses into Settings, passes the
    production start-up check, and the app built from it serves the health check and
    metrics that the healthcheck and Prometheus use."""
    from api.main import create_app

    env = app_env("api")
    prefix = len(SETTINGS_PREFIX)
    values = {key[prefix:].lower(): value for key, value in env.items()
              if key.startswith("MEDIAFLOW_")}
    # model_validate: the compose values and the code's defaults only, no process env
    settings = Settings.model_validate(
        {k: v for k, v in values.items() if k in Settings.model_fields})
    settings.check_startup()
    assert settings.rate_limit_login and settings.rate_limit_requests
    assert settings.is_postgres and settings.storage == "s3" and not settings.is_dev
    assert settings.webhook_allow_private is False
    app = create_app(settings)
    paths = set(app.openapi()["paths"]) | {getattr(r, "path", None) for r in app.routes}
    assert {"/api/v1/health", "/metrics"} <= paths


def test_app_endpoints_name_compose_services() -> None:
    env = app_env("api")
    svc = services()
    database = urlparse(env["MEDIAFLOW_DATABASE_URL"])
    assert database.hostname in svc and database.port == 5432
    assert urlparse(env["MEDIAFLOW_S3_ENDPOINT_URL"]).hostname in svc
    assert env["MEDIAFLOW_TEMPORAL_ADDRESS"].split(":")[0] in svc


def test_published_ports() -> None:
    expected = {
        "api": {(8000, 8000)},
        "temporal-ui": {(8233, 8080)},
        "minio": {(9000, 9000), (9001, 9001)},
        "prometheus": {(9090, 9090)},
        "alertmanager": {(9093, 9093)},
        "grafana": {(3000, 3000)},
    }
    resolved = resolved_compose()["services"]
    for name, pairs in expected.items():
        published = {(p.host, p.container) for p in ports_of(resolved[name])}
        assert pairs <= published, f"{name} publishes {published}, expected {pairs}"


def test_admin_ports_default_to_loopback() -> None:
    """Temporal UI has no login and MinIO/Prometheus are internals: by default only
    the API is reachable from other hosts."""
    resolved = resolved_compose()["services"]
    for name, service in resolved.items():
        for port in ports_of(service):
            if name == "api":
                continue
            assert port.ip == "127.0.0.1", f"{name} publishes {port} beyond loopback"


@pytest.mark.parametrize("service,probe", [
    ("postgres", "pg_isready"),
    ("api", "/api/v1/health"),
    ("temporal", "7233"),
    ("minio", "ready"),
])
def test_healthchecks(service: str, probe: str) -> None:
    test = healthcheck_test(services()[service])
    assert test is not None, f"{service} has no healthcheck"
    assert test[0] in ("CMD", "CMD-SHELL")
    assert probe in " ".join(test)


def test_api_healthcheck_uses_python_and_the_published_port() -> None:
    test = healthcheck_test(services()["api"])
    assert test is not None and test[1] == "python"  # slim images have no curl
    assert "127.0.0.1:8000/api/v1/health" in " ".join(test)
    assert services()["api"]["command"][-2:] == ["--port", "8000"]


@pytest.mark.parametrize("service", ["worker-cpu", "worker-gpu"])
def test_workers_override_the_api_healthcheck(service: str) -> None:
    """The image's HEALTHCHECK asks the API; a worker must ask its metrics port."""
    definition = services()[service]
    test = healthcheck_test(definition)
    assert test is not None
    port = definition["command"][definition["command"].index("--metrics-port") + 1]
    assert f"127.0.0.1:{port}/metrics" in " ".join(test)


def test_depends_on_conditions_reference_fit_services() -> None:
    svc = services()
    for name, service in svc.items():
        for target, condition in depends_on(service).items():
            assert target in svc, f"{name} depends on unknown service {target}"
            assert condition in ("service_started", "service_healthy",
                                 "service_completed_successfully")
            if condition == "service_healthy":
                assert healthcheck_test(svc[target]), (
                    f"{name} waits for {target} to be healthy, but it has no healthcheck"
                )
            if condition == "service_completed_successfully":
                assert str(svc[target].get("restart")) == "no", (
                    f"{name} waits for one-shot {target}, which must not restart"
                )


@pytest.mark.parametrize("service", LONG_RUNNING_APP_SERVICES)
def test_app_services_wait_for_their_dependencies(service: str) -> None:
    deps = depends_on(services()[service])
    assert deps["migrate"] == "service_completed_successfully"
    assert deps["temporal"] == "service_healthy"
    assert deps["temporal-setup"] == "service_completed_successfully"
    assert deps["minio"] == "service_healthy"
    assert deps["minio-setup"] == "service_completed_successfully"


def test_no_literal_secrets() -> None:
    """Every secret-looking value is a required ``${NAME:?…}`` interpolation: no value
    and no fallback default is committed."""
    for name, service in services().items():
        for key, value in environment_of(service).items():
            if SECRET_KEY.search(key):
                found = interpolations(value)
                whole = value.startswith("${") and value.endswith("}")
                assert len(found) == 1 and whole, (
                    f"{name}.{key} must be exactly one interpolation, got {value!r}"
                )
                assert found[0][1] == ":?", f"{name}.{key} must be ${{NAME:?message}}"
            for url in re.findall(r"[a-z]+://[^\s\"']+", value):
                password = urlparse(interpolate(url, _markers())).password
                if password is not None:
                    assert password.startswith("<") and password.endswith(">"), (
                        f"{name}.{key} embeds a literal password"
                    )
    for variable, op, argument in interpolations(compose_values()):
        if SECRET_KEY.search(variable):
            assert op == ":?", f"${{{variable}}} must be required, not defaulted ({op}{argument})"


def _markers() -> dict[str, str]:
    """Each variable stands for itself, so a URL shows which parts came from .env."""
    return {name: f"<{name}>" for name, _, _ in interpolations(compose_values())}


def test_required_variables_are_the_secrets() -> None:
    expected = {
        "POSTGRES_PASSWORD", "APP_DB_PASSWORD", "TEMPORAL_DB_PASSWORD", "MINIO_ROOT_USER",
        "MINIO_ROOT_PASSWORD", "MEDIAFLOW_S3_ACCESS_KEY", "MEDIAFLOW_S3_SECRET_KEY",
        "MEDIAFLOW_JWT_SECRET", "GRAFANA_ADMIN_PASSWORD",
    }
    assert required_variables() == expected


def test_bind_mounts_exist_and_named_volumes_are_declared() -> None:
    compose = load_compose()
    declared = set(compose.get("volumes") or {})
    # node-exporter and cAdvisor read the host
    host_paths = {"/", "/proc", "/sys", "/var/run", "/var/lib/docker", "/dev/disk"}
    for name, service in compose["services"].items():
        for mount in mounts_of(service):
            if not mount.source:
                continue
            if mount.is_bind and mount.source not in host_paths:
                path = REPO / mount.source
                assert path.exists(), f"{name} mounts missing {mount.source}"
                assert mount.read_only, f"{name} should mount {mount.source} read-only"
            elif not mount.is_bind:
                assert mount.source in declared, f"{name} uses undeclared volume {mount.source}"


def test_mounted_scripts_are_executable() -> None:
    for service in services().values():
        for mount in mounts_of(service):
            if mount.source.endswith(".sh"):
                mode = (REPO / mount.source).stat().st_mode
                assert mode & stat.S_IXUSR, f"{mount.source} is not executable"


def test_temporal_runs_on_postgres_with_the_init_scripts_databases() -> None:
    svc = services()
    init = (REPO / "docker/postgres/10-create-databases.sh").read_text()
    created = set(re.findall(r"CREATE DATABASE (\w+) OWNER (\w+)", init))
    roles = set(re.findall(r"CREATE ROLE (\w+) LOGIN", init))
    temporal = environment_of(svc["temporal"])
    assert temporal["DB"] == "postgres12" and temporal["POSTGRES_SEEDS"] == "postgres"
    assert temporal["POSTGRES_USER"] in roles
    assert {(temporal["DBNAME"], temporal["POSTGRES_USER"]),
            (temporal["VISIBILITY_DBNAME"], temporal["POSTGRES_USER"])} <= created
    schema = environment_of(svc["temporal-schema"])
    assert schema["SQL_PLUGIN"] == "postgres12" and schema["SQL_USER"] == temporal["POSTGRES_USER"]
    script = (REPO / "docker/temporal/setup-schema.sh").read_text()
    assert {temporal["DBNAME"], temporal["VISIBILITY_DBNAME"]} <= set(
        re.findall(r"--db (\w+)", script))
    database = urlparse(interpolate(environment_of(svc["api"])["MEDIAFLOW_DATABASE_URL"],
                                    _markers()))
    assert (database.path.lstrip("/"), database.username) in created
    assert database.username in roles


def test_search_attributes_registered_are_the_spec_ones() -> None:
    script = (REPO / "docker/temporal/setup-namespace.sh").read_text()
    listed = re.search(r'^SEARCH_ATTRIBUTES="([^"]+)"', script, re.MULTILINE)
    assert listed, "setup-namespace.sh lists no SEARCH_ATTRIBUTES"
    assert set(listed[1].split()) == {f"{key.name}:{names.search_attribute_type(key)}"
                                      for key in names.SEARCH_ATTRIBUTES}
    assert "search-attribute create" in script and '--type "$2"' in script
    svc = services()
    assert "setup-namespace.sh" in " ".join(svc["temporal-setup"]["entrypoint"])
    # the namespace it prepares is the one mediaflow uses
    setup_ns = environment_of(svc["temporal-setup"])["NAMESPACE"]
    app_ns = environment_of(svc["api"])["MEDIAFLOW_TEMPORAL_NAMESPACE"]
    assert setup_ns == app_ns


def test_minio_setup_prepares_the_bucket_and_keys_mediaflow_uses() -> None:
    svc = services()
    setup = environment_of(svc["minio-setup"])
    app = environment_of(svc["api"])
    assert setup["S3_BUCKET"] == app["MEDIAFLOW_S3_BUCKET"]
    assert setup["S3_ACCESS_KEY"] == app["MEDIAFLOW_S3_ACCESS_KEY"]
    assert setup["S3_SECRET_KEY"] == app["MEDIAFLOW_S3_SECRET_KEY"]
    assert setup["MINIO_ROOT_PASSWORD"] == environment_of(svc["minio"])["MINIO_ROOT_PASSWORD"]


def test_compose_refuses_to_start_without_secrets() -> None:
    with pytest.raises(MissingVariable, match="MEDIAFLOW_JWT_SECRET"):
        resolved_compose(env={name: "x" for name in required_variables()
                              if name != "MEDIAFLOW_JWT_SECRET"})
    # .env.example leaves the secrets empty: an empty value is refused too
    with pytest.raises(MissingVariable):
        resolved_compose(env={name: "" for name in required_variables()})
