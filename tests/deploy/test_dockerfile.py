"""docker/Dockerfile and docker/Dockerfile.gpu, read line by line (no Docker here).

The checks stand in for a build: pinned bases, ffmpeg and fonts installed, a non-root
user, the ``mediaflow`` entrypoint, a health check, and a build context (.dockerignore)
that holds every file the COPYs and ``pip install .`` need, and no secrets.
"""

from __future__ import annotations

import subprocess
import tomllib

import pytest

from tests.deploy.static import (
    DOCKERFILE,
    GPU_DOCKERFILE,
    REPO,
    Dockerfile,
    DockerIgnore,
    copy_sources,
    parse_dockerfile,
    tool,
)

DOCKERFILES = {"cpu": DOCKERFILE, "gpu": GPU_DOCKERFILE}


@pytest.fixture(params=sorted(DOCKERFILES), ids=sorted(DOCKERFILES))
def dockerfile(request: pytest.FixtureRequest) -> Dockerfile:
    return parse_dockerfile(DOCKERFILES[request.param])


def test_every_base_image_is_pinned(dockerfile: Dockerfile) -> None:
    seen_stages: set[str] = set()
    for stage in dockerfile.stages:
        base = stage.base
        if base in seen_stages:
            continue
        assert "$" not in base, f"{dockerfile.path.name}: unresolved base {base!r}"
        repository, _, tag = base.rpartition(":")
        assert repository and tag and "/" not in tag, f"{base} has no tag"
        assert tag != "latest", f"{base} floats on :latest"
        if stage.name:
            seen_stages.add(stage.name)


def test_cpu_image_is_python_311_slim_bookworm() -> None:
    parsed = parse_dockerfile(DOCKERFILE)
    assert {stage.base for stage in parsed.stages} == {"python:3.11-slim-bookworm"}


def test_gpu_image_is_an_nvidia_cuda_image() -> None:
    parsed = parse_dockerfile(GPU_DOCKERFILE)
    for stage in parsed.stages:
        assert stage.base.startswith("nvidia/cuda:"), stage.base
    caps = set(parsed.env(parsed.final)["NVIDIA_DRIVER_CAPABILITIES"].split(","))
    assert {"compute", "video", "utility"} <= caps  # video: NVDEC/NVENC for ffmpeg


def test_ffmpeg_and_fonts_installed_without_recommends(dockerfile: Dockerfile) -> None:
    runs = [i.args for i in dockerfile.final.all("RUN")]
    installs = [run for run in runs if "apt-get install" in run]
    assert installs, "the final stage installs no packages"
    for run in installs:
        words = run.split()
        assert "--no-install-recommends" in words
        assert "rm -rf /var/lib/apt/lists/*" in run, "apt lists must be cleaned in the same RUN"
        assert "apt-get update" in run, "update and install belong in one RUN"
    packages = {word for run in installs for word in run.split()}
    assert {"ffmpeg", "fonts-dejavu-core"} <= packages


def test_runs_as_a_non_root_user(dockerfile: Dockerfile) -> None:
    user = dockerfile.final.last("USER")
    assert user is not None, "the final stage has no USER"
    name = user.args.split(":")[0]
    assert name not in ("root", "0")
    assert name.isdigit(), "a numeric USER lets runtimes verify it is not root"
    assert any(f"--uid {name}" in run.args for run in dockerfile.final.all("RUN")), (
        "the USER's uid is never created"
    )
    last_run = max(i.line for i in dockerfile.final.all("RUN"))
    assert user.line > last_run, "USER should come after the last root RUN"


def test_entrypoint_is_mediaflow(dockerfile: Dockerfile) -> None:
    entrypoint = dockerfile.final.last("ENTRYPOINT")
    assert entrypoint is not None and entrypoint.exec_form() == ["mediaflow"]


def test_cpu_default_command_is_the_api_on_all_interfaces() -> None:
    cmd = parse_dockerfile(DOCKERFILE).final.last("CMD")
    assert cmd is not None
    assert cmd.exec_form() == ["api", "--host", "0.0.0.0", "--port", "8000"]


def test_gpu_default_command_is_the_gpu_worker() -> None:
    cmd = parse_dockerfile(GPU_DOCKERFILE).final.last("CMD")
    assert cmd is not None
    argv = cmd.exec_form()
    assert argv is not None and argv[:3] == ["worker", "--pool", "gpu"]
    assert "--metrics-port" in argv


def test_healthcheck_uses_python(dockerfile: Dockerfile) -> None:
    check = dockerfile.final.last("HEALTHCHECK")
    assert check is not None, "no HEALTHCHECK"
    argv = check.exec_form()
    assert argv is not None and argv[0] == "python", "slim images have no curl: use python"
    compile(argv[2], "<healthcheck>", "exec")  # the -c program is valid Python
    cmd = dockerfile.final.last("CMD")
    assert cmd is not None and cmd.exec_form() is not None
    default = cmd.exec_form() or []
    if default[0] == "api":
        port = default[default.index("--port") + 1]
        assert f"http://127.0.0.1:{port}/api/v1/health" in argv[2]
    else:
        port = default[default.index("--metrics-port") + 1]
        assert f"http://127.0.0.1:{port}/metrics" in argv[2]


def test_cpu_healthcheck_hits_the_api_health_route() -> None:
    check = parse_dockerfile(DOCKERFILE).final.last("HEALTHCHECK")
    assert check is not None and "/api/v1/health" in check.args


def test_data_dir_is_a_volume_owned_by_the_user(dockerfile: Dockerfile) -> None:
    final = dockerfile.final
    assert dockerfile.env(final)["MEDIAFLOW_DATA_DIR"] == "/data"
    volumes = [i.exec_form() or i.args.split() for i in final.all("VOLUME")]
    assert ["/data"] in volumes
    assert any("chown" in run.args and "/data" in run.args for run in final.all("RUN"))
    assert "/opt/venv/bin" in dockerfile.env(final)["PATH"]


def test_copy_sources_exist_and_are_in_the_build_context(dockerfile: Dockerfile) -> None:
    ignore = DockerIgnore.load()
    stage_names = set()
    for stage in dockerfile.stages:
        for instruction in stage.all("COPY") + stage.all("ADD"):
            origin, sources = copy_sources(instruction)
            if origin is not None:
                assert origin in stage_names, f"COPY --from={origin}: no such earlier stage"
                continue
            for source in sources:
                assert (REPO / source).exists(), f"COPY {source}: not in the repository"
                assert not ignore.excluded(source), f"COPY {source}: .dockerignore drops it"
        if stage.name:
            stage_names.add(stage.name)


def test_everything_pip_install_needs_is_copied(dockerfile: Dockerfile) -> None:
    """A new top-level package in pyproject.toml must reach the image too."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    setuptools = project["tool"]["setuptools"]
    needed = {"pyproject.toml", project["project"]["readme"]}
    needed |= {f"{module}.py" for module in setuptools.get("py-modules", [])}
    needed |= {pattern.rstrip("*") for pattern in setuptools["packages"]["find"]["include"]}
    build = dockerfile.stages[0]
    copied = {source.rstrip("/") for i in build.all("COPY") for source in copy_sources(i)[1]}
    assert needed <= copied, f"not copied into the build stage: {needed - copied}"
    assert any("pip install" in run.args and run.args.rstrip().split("pip install")[1]
               for run in build.all("RUN"))


def test_dockerignore_keeps_secrets_and_state_out() -> None:
    ignore = DockerIgnore.load()
    for path in (".env", ".git/config", ".venv/bin/python", ".mediaflow/jwt_secret",
                 "tests/conftest.py", "core/__pycache__/config.cpython-311.pyc"):
        assert ignore.excluded(path), f"{path} would be sent to the builder"
    for path in ("core/config.py", "pyproject.toml", "piccolo_migrations/__init__.py"):
        assert not ignore.excluded(path), f"{path} is missing from the build context"


def test_hadolint_is_clean() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--no-color", str(DOCKERFILE), str(GPU_DOCKERFILE)],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
