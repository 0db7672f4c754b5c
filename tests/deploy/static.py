"""Static readers for the deployment files: docker-compose.yml with compose's variable
interpolation, Dockerfiles, and .dockerignore.

No Docker engine exists where the tests run, so these stand in for ``docker compose
config`` and the Dockerfile frontend: small, strict, and only as general as the files
in this repository need.
"""

from __future__ import annotations

import json
import re
import secrets
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic_settings import BaseSettings

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "docker" / "Dockerfile"
GPU_DOCKERFILE = REPO / "docker" / "Dockerfile.gpu"
DOCKERIGNORE = REPO / ".dockerignore"

def settings_classes() -> tuple[type[BaseSettings], ...]:
    """Every pydantic-settings class of the code: all read ``MEDIAFLOW_*`` variables.
    (tests/deploy/test_docs.py fails when a new one appears and is not listed here.)"""
    from core.config import Settings

    return (Settings,)


def setting_names() -> set[str]:
    """``MEDIAFLOW_*`` names the code reads: each class's prefix plus its field names."""
    names = set()
    for cls in settings_classes():
        prefix = cls.model_config.get("env_prefix", "")
        names |= {f"{prefix}{field}".upper() for field in cls.model_fields}
    return names


# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, ${NAME:+alt}
INTERPOLATION = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
)
BARE_VARIABLE = re.compile(r"(?<!\$)\$(?P<name>[A-Za-z_][A-Za-z0-9_]*)")


class MissingVariable(LookupError):
    """A ``${NAME:?…}`` variable that the given environment leaves unset or empty."""


@cache
def compose_text() -> str:
    return COMPOSE_FILE.read_text()


def compose_values() -> str:
    """Every string value of the compose file, one per line: what compose interpolates
    (comments excluded, unlike the raw text)."""

    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, str):
            yield node
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)
        elif isinstance(node, dict):
            for value in node.values():
                yield from walk(value)

    return "\n".join(walk(load_compose()))


def load_compose() -> dict[str, Any]:
    """docker-compose.yml as YAML (anchors and ``<<`` merges resolved), uninterpolated."""
    return yaml.safe_load(compose_text())


def services() -> dict[str, dict[str, Any]]:
    return load_compose()["services"]


def interpolations(text: str) -> list[tuple[str, str | None, str]]:
    """Every ``${…}`` in ``text``: (name, operator or None, argument)."""
    return [(m["name"], m["op"], m["arg"] or "") for m in INTERPOLATION.finditer(text)]


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation of one string against ``env``."""
    placeholder = "\0"
    value = value.replace("$$", placeholder)

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"] or ""
        present = name in env
        non_empty = bool(env.get(name))
        if op is None:
            return env.get(name, "")
        if op == ":-":
            return env[name] if non_empty else arg
        if op == "-":
            return env[name] if present else arg
        if op == ":?":
            if not non_empty:
                raise MissingVariable(f"{name}: {arg}")
            return env[name]
        if op == "?":
            if not present:
                raise MissingVariable(f"{name}: {arg}")
            return env[name]
        if op == ":+":
            return arg if non_empty else ""
        return arg if present else ""  # "+"

    value = INTERPOLATION.sub(substitute, value)
    value = BARE_VARIABLE.sub(lambda m: env.get(m["name"], ""), value)
    return value.replace(placeholder, "$")


def interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env) for key, value in node.items()}
    return node


def required_variables() -> set[str]:
    """Names compose refuses to run without (``${NAME:?…}``)."""
    return {name for name, op, _ in interpolations(compose_values()) if op in (":?", "?")}


def dummy_environment() -> dict[str, str]:
    """A value for every required variable: what a filled-in .env provides."""
    return {name: secrets.token_hex(32) for name in sorted(required_variables())}


def resolved_compose(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The compose file as ``docker compose config`` would see it with ``env``."""
    return interpolate_tree(load_compose(), dummy_environment() if env is None else env)


def environment_of(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's ``environment`` as a dict, whichever of the two forms it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) for item in env)
        return {pair[0]: pair[1] if len(pair) > 1 else "" for pair in pairs}
    return {key: "" if value is None else str(value) for key, value in env.items()}


def command_of(service: Mapping[str, Any]) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def healthcheck_test(service: Mapping[str, Any]) -> list[str] | None:
    """The healthcheck's test as argv-ish words, or None when absent or disabled."""
    check = service.get("healthcheck")
    if not check or check.get("disable"):
        return None
    test = check.get("test")
    if isinstance(test, str):
        return ["CMD-SHELL", test]
    if not test or test[0] == "NONE":
        return None
    return [str(word) for word in test]


PORT = re.compile(
    r"^(?:(?P<ip>\d+\.\d+\.\d+\.\d+|\[[0-9a-fA-F:]*\]):)?(?:(?P<host>\d+):)?(?P<container>\d+)"
    r"(?:/(?P<proto>tcp|udp))?$"
)


@dataclass(frozen=True)
class Port:
    ip: str | None
    host: int | None
    container: int


def ports_of(service: Mapping[str, Any]) -> list[Port]:
    """Published ports of an *interpolated* service definition."""
    found = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            found.append(Port(entry.get("host_ip"), int(entry["published"]), int(entry["target"])))
            continue
        match = PORT.match(str(entry))
        assert match, f"unparsable port {entry!r}"
        host = match["host"]
        found.append(Port(match["ip"], int(host) if host else None, int(match["container"])))
    return found


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool

    @property
    def is_bind(self) -> bool:
        return self.source.startswith(("./", "../", "/"))


def mounts_of(service: Mapping[str, Any]) -> list[Mount]:
    found = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            found.append(Mount(entry.get("source", ""), entry["target"],
                               bool(entry.get("read_only"))))
            continue
        parts = str(entry).split(":")
        if len(parts) == 1:  # anonymous volume
            found.append(Mount("", parts[0], False))
            continue
        options = parts[2].split(",") if len(parts) > 2 else []
        found.append(Mount(parts[0], parts[1], "ro" in options))
    return found


# ---------------------------------------------------------------- Dockerfiles


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form instruction, else None."""
        text = re.sub(r"^(?:--\S+\s+)*", "", self.args)
        if self.keyword == "HEALTHCHECK":
            keyword, _, text = text.partition(" ")
            if keyword.upper() != "CMD":
                return None
            text = text.strip()
        if not text.startswith("["):
            return None
        value = json.loads(text)
        assert isinstance(value, list)
        return [str(v) for v in value]


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None


@dataclass
class Dockerfile:
    path: Path
    global_args: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def env(self, stage: Stage) -> dict[str, str]:
        """ENV of a stage in its ``KEY=value`` form (the legacy ``KEY value`` is refused)."""
        values: dict[str, str] = {}
        for instruction in stage.all("ENV"):
            for pair in shlex.split(instruction.args):
                assert "=" in pair, f"{self.path.name}:{instruction.line}: use ENV KEY=value"
                key, value = pair.split("=", 1)
                values[key] = value
        return values


def logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Instruction lines with continuations joined and comment lines dropped."""
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if buffer and stripped.startswith("#"):  # a comment inside a continuation
            continue
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer.append(stripped[:-1].strip())
            continue
        buffer.append(stripped)
        yield start, " ".join(part for part in buffer if part)
        buffer = []
    assert not buffer, "a Dockerfile ends inside a line continuation"


def parse_dockerfile(path: Path) -> Dockerfile:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line, text in logical_lines(path.read_text()):
        keyword, _, args = text.partition(" ")
        keyword = keyword.upper()
        args = args.strip()
        if keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--platform")]
            base = interpolate(words[0], global_args)
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=base, name=name))
            continue
        if not stages:
            assert keyword == "ARG", f"{path.name}:{line}: only ARG may precede FROM"
            key, _, default = args.partition("=")
            global_args[key] = default
            continue
        stages[-1].instructions.append(Instruction(keyword, args, line))
    return Dockerfile(path, global_args, stages)


def copy_sources(instruction: Instruction) -> tuple[str | None, list[str]]:
    """(--from stage or None, source paths) of a COPY/ADD."""
    words = shlex.split(instruction.args)
    origin = None
    plain = []
    for word in words:
        if word.startswith("--from="):
            origin = word.split("=", 1)[1]
        elif not word.startswith("--"):
            plain.append(word)
    if instruction.exec_form() is not None:
        plain = instruction.exec_form() or []
    return origin, plain[:-1]


# ---------------------------------------------------------------- .dockerignore


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's .dockerignore glob: ``*`` and ``?`` stay within one path segment,
    ``**`` spans any number of them."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        out.append({"*": "[^/]*", "?": "[^/]"}.get(c, re.escape(c)))
        i += 1
    return re.compile("".join(out) + r"\Z")


@dataclass(frozen=True)
class DockerIgnore:
    rules: tuple[tuple[bool, re.Pattern[str]], ...]

    @classmethod
    def load(cls, path: Path = DOCKERIGNORE) -> DockerIgnore:
        rules = []
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exclude = not line.startswith("!")
            pattern = line.lstrip("!").strip().strip("/")
            rules.append((exclude, _pattern_regex(pattern)))
        return cls(tuple(rules))

    def excluded(self, relative: str) -> bool:
        """Whether the build context leaves ``relative`` out: the last rule matching the
        path or one of its parent directories decides, as in Docker's matcher."""
        relative = relative.strip("/")
        parts = relative.split("/")
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        verdict = False
        for exclude, regex in self.rules:
            if any(regex.match(candidate) for candidate in candidates):
                verdict = exclude
        return verdict


def tool(name: str) -> str:
    """A linter installed by the test extras: beside this Python (the venv) or on PATH."""
    import shutil
    import sys
    from pathlib import Path

    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} is missing: make test installs it with the test extras"
    return found
