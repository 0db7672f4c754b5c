"""Configuration is documented (every setting in README/docs and .env.example)
and docs/DEPLOYMENT.md covers what docker-compose.yml asks of an operator."""

from __future__ import annotations

import re

import pytest

from tests.deploy.static import (
    REPO,
    ports_of,
    required_variables,
    resolved_compose,
    services,
    setting_names,
    settings_classes,
)

PREFIX = "MEDIAFLOW_"
SETTINGS = sorted(setting_names())
DEPLOYMENT = REPO / "docs" / "DEPLOYMENT.md"
SOURCE_DIRS = ("api", "activities", "cli", "core", "workflows")


def test_every_settings_class_is_known() -> None:
    """Settings live in core/config.py and api/ratelimit.py; a new BaseSettings class
    must join tests/deploy/static.py settings_classes() so these checks cover it."""
    found = {
        match
        for folder in SOURCE_DIRS
        for path in (REPO / folder).rglob("*.py")
        for match in re.findall(r"^class (\w+)\([^)]*BaseSettings[^)]*\)", path.read_text(),
                                re.MULTILINE)
    }
    assert found == {cls.__name__ for cls in settings_classes()}
    for cls in settings_classes():
        assert cls.model_config.get("env_prefix") == PREFIX


def env_example_names() -> set[str]:
    lines = (REPO / ".env.example").read_text().splitlines()
    return {m[1] for line in lines if (m := re.match(r"\s*([A-Z][A-Z0-9_]*)=", line))}


def test_every_setting_is_in_env_example() -> None:
    missing = [name for name in SETTINGS if name not in env_example_names()]
    assert not missing, f".env.example lacks {missing}"


def test_env_example_names_only_settings() -> None:
    unknown = {n for n in env_example_names() if n.startswith(PREFIX)} - set(SETTINGS)
    assert not unknown, f".env.example documents settings that do not exist: {unknown}"


def test_every_setting_is_documented_in_readme_or_docs() -> None:
    text = "\n".join(
        path.read_text() for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    )
    missing = [name for name in SETTINGS if not re.search(rf"\b{name}\b", text)]
    assert not missing, f"README.md and docs/ never name {missing}"


@pytest.fixture(scope="module")
def deployment() -> str:
    return DEPLOYMENT.read_text()


def test_deployment_guide_names_every_variable_compose_requires(deployment: str) -> None:
    missing = sorted(v for v in required_variables() if f"`{v}`" not in deployment)
    assert not missing, f"docs/DEPLOYMENT.md does not explain {missing}"


def test_deployment_guide_describes_every_service(deployment: str) -> None:
    missing = sorted(name for name in services() if f"`{name}`" not in deployment)
    assert not missing, f"docs/DEPLOYMENT.md does not describe {missing}"


def test_deployment_guide_points_at_the_published_ports(deployment: str) -> None:
    """Each web UI the guide sends an operator to is one compose publishes, on that port."""
    named = {int(port) for port in re.findall(r"http://localhost:(\d+)", deployment)}
    resolved = resolved_compose()["services"]
    for service in ("api", "temporal-ui", "grafana", "prometheus"):
        published = {port.host for port in ports_of(resolved[service])}
        assert published & named, f"docs/DEPLOYMENT.md gives no URL for {service} {published}"
    every = {port.host for svc in resolved.values() for port in ports_of(svc)}
    assert named <= every, f"the guide names ports compose does not publish: {named - every}"


def test_deployment_guide_commands_name_real_services_and_commands(deployment: str) -> None:
    """The commands an operator copies from the guide run: scaled services and profiles
    exist in docker-compose.yml, and ``docker compose run api <cmd>`` is a mediaflow
    command."""
    from cli.main import app

    scaled = set(re.findall(r"--scale ([\w-]+)=\d+", deployment))
    assert scaled and scaled <= set(services()), scaled
    profiles = set(re.findall(r"--profile ([\w-]+)", deployment))
    known_profiles = {p for svc in services().values() for p in svc.get("profiles", [])}
    assert profiles and profiles <= known_profiles, profiles
    commands = set(re.findall(r"docker compose run --rm api ([\w-]+)", deployment))
    registered = {c.name or c.callback.__name__.replace("_", "-")
                  for c in app.registered_commands if c.callback}
    assert commands and commands <= registered, commands - registered
