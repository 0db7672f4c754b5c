"""Panel helpers shared by the dashboards: one place for units, sizes and datasource."""

from __future__ import annotations

from grafanalib.core import GridPos, Target, TimeSeries

DATASOURCE = "Prometheus"


def timeseries(title: str, exprs: dict[str, str], *, unit: str = "short", x: int = 0,
               y: int = 0, w: int = 12, h: int = 8) -> TimeSeries:
    """A time series of PromQL expressions, legend → expression."""
    return TimeSeries(
        title=title,
        dataSource=DATASOURCE,
        targets=[Target(expr=expr, legendFormat=legend, refId=chr(ord("A") + i))
                 for i, (legend, expr) in enumerate(exprs.items())],
        unit=unit,
        gridPos=GridPos(h=h, w=w, x=x, y=y),
    )
