"""The rooms import one way (docs/ARCHITECTURE.md, "Code layout"):

    cli ─▶ api ─▶ workflows ─▶ core
     └───▶ activities ─┘  ▲
                        └─┘

``core`` knows nothing of the others; ``workflows`` only ``core`` (deterministic code and
the activity stubs); ``activities`` implement the stubs; ``api`` starts and reads
workflows but never imports an activity; only ``cli`` and ``dashboards`` sit on top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROOMS = ("core", "workflows", "activities", "api", "cli", "dashboards")
ALLOWED = {
    "core": {"core"},
    "workflows": {"core", "workflows"},
    "activities": {"core", "workflows", "activities"},
    "api": {"core", "workflows", "api"},
    "cli": set(ROOMS),
    "dashboards": {"dashboards"},
}


def imported_rooms(path: Path) -> set[tuple[str, int]]:
    """(room, line) for every import of one of our rooms in ``path``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            room = name.split(".", 1)[0]
            if room in ROOMS:
                found.add((room, node.lineno))
    return found


@pytest.mark.parametrize("room", ROOMS)
def test_room_imports_only_what_it_may(room: str) -> None:
    wrong = sorted(
        f"{path.relative_to(REPO)}:{line} imports {other}"
        for path in (REPO / room).rglob("*.py")
        for other, line in imported_rooms(path)
        if other not in ALLOWED[room]
    )
    assert not wrong, "\n".join(wrong)
