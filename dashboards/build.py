"""Render every ``dashboards/*.dashboard.py`` to the JSON next to it.

The JSON is committed (Grafana provisioning reads it); a test renders again and
compares, so the two never drift.
"""

from __future__ import annotations

import io
from pathlib import Path

from grafanalib._gen import loader, write_dashboard

HERE = Path(__file__).resolve().parent


def render(source: Path) -> str:
    out = io.StringIO()
    write_dashboard(loader(str(source)), out)
    return out.getvalue()


def build_all(*, write: bool = True) -> list[str]:
    """Render all dashboards; returns the names whose committed JSON differed, and JSON
    left behind by a source that is gone (Grafana would keep showing it): removed."""
    stale = []
    targets = set()
    for source in sorted(HERE.glob("*.dashboard.py")):
        target = source.with_name(source.name.replace(".dashboard.py", ".json"))
        targets.add(target)
        rendered = render(source)
        if not target.exists() or target.read_text() != rendered:
            stale.append(target.name)
            if write:
                target.write_text(rendered)
    for orphan in sorted(set(HERE.glob("*.json")) - targets):
        stale.append(orphan.name)
        if write:
            orphan.unlink()
    return stale
