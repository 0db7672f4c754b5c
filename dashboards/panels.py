"""Panel helpers shared by the dashboards: one place for units, sizes, layout and datasource.

Every panel says what it shows (``description``): an operator opening a dashboard during
an incident reads it, and the runbooks in docs/OPERATIONS.md point at panels by title.
Expressions are plain PromQL with literal windows (no Grafana variables), so that
``tests/monitoring`` can evaluate each one against a real Prometheus.
"""

from __future__ import annotations

from grafanalib.core import Dashboard, GridPos, Panel, RowPanel, Target, Time, TimeSeries

DATASOURCE = "Prometheus"
REFRESH = "5s"
WIDTH = 24
PANEL_HEIGHT = 8


def timeseries(title: str, exprs: dict[str, str], *, description: str, unit: str = "short",
               width: int = 12) -> TimeSeries:
    """A time series of PromQL expressions, legend → expression (placed by ``dashboard``)."""
    return TimeSeries(
        title=title,
        description=description,
        dataSource=DATASOURCE,
        targets=[Target(expr=expr, legendFormat=legend, refId=chr(ord("A") + i))
                 for i, (legend, expr) in enumerate(exprs.items())],
        unit=unit,
        gridPos=GridPos(h=PANEL_HEIGHT, w=width, x=0, y=0),
    )


def quantiles(metric: str, by: str, *, window: str = "5m", levels: tuple[float, ...] = (
        0.5, 0.95, 0.99), selector: str = "") -> dict[str, str]:
    """``histogram_quantile`` of ``metric`` at each level, one series per ``by`` value."""
    legend_by = " ".join(f"{{{{{label.strip()}}}}}" for label in by.split(","))
    return {
        f"p{round(level * 100)} {legend_by}":
            f"histogram_quantile({level}, sum by (le, {by}) "
            f"(rate({metric}_bucket{selector}[{window}])))"
        for level in levels
    }


def dashboard(title: str, uid: str, description: str,
              sections: list[tuple[str, list[TimeSeries]]]) -> Dashboard:
    """A dashboard of titled rows, panels laid out left to right, refreshed every 5 s."""
    panels: list[Panel] = []
    y = 0
    for heading, members in sections:
        panels.append(RowPanel(title=heading, gridPos=GridPos(h=1, w=WIDTH, x=0, y=y)))
        y += 1
        x = 0
        for panel in members:
            width = panel.gridPos.w
            if x + width > WIDTH:
                x, y = 0, y + PANEL_HEIGHT
            panel.gridPos = GridPos(h=PANEL_HEIGHT, w=width, x=x, y=y)
            panels.append(panel)
            x += width
        y += PANEL_HEIGHT
    return Dashboard(
        title=title,
        uid=uid,
        description=description,
        tags=["mediaflow"],
        timezone="browser",
        refresh=REFRESH,
        time=Time("now-1h", "now"),
        panels=panels,
    ).auto_panel_ids()
