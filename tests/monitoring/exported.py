"""The metric names mediaflow's processes export, read from the code's own registries."""

from __future__ import annotations

from prometheus_client import REGISTRY


def mediaflow_metric_names() -> set[str]:
    """Every ``mediaflow_*`` sample name the API and the workers can expose (histograms
    with their ``_bucket``/``_count``/``_sum``, counters with ``_total``)."""
    import activities.metrics  # noqa: F401 - registers the worker metrics
    import api.metrics  # noqa: F401 - registers the API metrics

    names = set()
    for family in REGISTRY.collect():
        if not family.name.startswith("mediaflow_"):
            continue
        if family.type == "histogram":
            names |= {f"{family.name}{suffix}" for suffix in ("_bucket", "_count", "_sum")}
        elif family.type == "counter":
            names.add(f"{family.name}_total")
        else:
            names.add(family.name)
    return names
