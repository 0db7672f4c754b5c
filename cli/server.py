"""Server-side commands: dev, api, worker, migrate, dashboards."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from core.config import Settings, WeakSecretError, get_settings


def _settings_or_exit() -> Settings:
    try:
        settings = get_settings()
    except ValidationError as exc:
        problems = "; ".join(f"MEDIAFLOW_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}"
                             for e in exc.errors())
        typer.secho(f"refusing to start: {problems}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc
    try:
        settings.check_startup()
    except WeakSecretError as exc:
        typer.secho(f"refusing to start: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc
    return settings


def api(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """Run the REST API (FastAPI on uvicorn); OpenAPI at /docs."""
    from api.server import serve

    serve(_settings_or_exit(), host=host, port=port, workers=workers)


def worker(
    pool: Annotated[str, typer.Option(help="cpu or gpu")] = "cpu",
    concurrency: Annotated[int, typer.Option(
        help="FFmpeg steps run at once (0: one per core)")] = 0,
    metrics_port: Annotated[int, typer.Option(help="Prometheus port (0: off)")] = 0,
    metrics_host: Annotated[str, typer.Option(help="Interface of the metrics port")] = "0.0.0.0",
) -> None:
    """Run a worker: MediaJobWorkflow on mediaflow-jobs, FFmpeg steps on the pool's queue."""
    if pool not in ("cpu", "gpu"):
        typer.secho("--pool must be cpu or gpu", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    settings = _settings_or_exit()
    from activities.worker import run_worker
    from core.logs import configure

    configure(settings.log_level, settings.log_format)

    from core.volume import StorageNotShared

    slots = concurrency or default_slots()
    try:
        asyncio.run(run_worker(settings, pool=pool, concurrency=slots,
                               metrics_port=metrics_port, metrics_host=metrics_host))
    except StorageNotShared as exc:
        typer.secho(f"refusing to start: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None


def default_slots() -> int:
    """One FFmpeg slot per core (docs/OPERATIONS.md, "Worker slots"): small jobs run side
    by side, and each run's encoder threads shrink as more run at once, so large ones do
    not oversubscribe the cores."""
    return max(1, os.cpu_count() or 1)


def migrate() -> None:
    """Run the Piccolo migrations forwards."""
    from core.migrate import migrate_forwards

    settings = get_settings()
    asyncio.run(migrate_forwards(settings))
    typer.echo("migrations are up to date")


def dev(
    host: Annotated[str, typer.Option(help="API interface")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="API port")] = 8000,
    temporal_port: Annotated[int, typer.Option(help="Temporal gRPC port")] = 7233,
    ui_port: Annotated[int, typer.Option(help="Temporal Web UI port")] = 8233,
    data_dir: Annotated[Path | None, typer.Option(help="State directory")] = None,
    worker_metrics_port: Annotated[int, typer.Option(
        help="The CPU worker's Prometheus port on 127.0.0.1 (the GPU worker's is the next "
             "one; 0: off)")] = 9464,
) -> None:
    """Run everything on this machine: Temporal dev server, SQLite, a worker and the API."""
    from cli.devstack import DevStack, PortBusy

    stack = DevStack(host=host, api_port=port, temporal_port=temporal_port,
                     ui_port=ui_port, data_dir=data_dir,
                     worker_metrics_port=worker_metrics_port)
    try:
        code = stack.run()
    except PortBusy as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    raise typer.Exit(code)


def dashboards(
    check: Annotated[bool, typer.Option(help="Fail if committed JSON is stale")] = False,
) -> None:
    """Regenerate Grafana JSON from dashboards/*.dashboard.py."""
    from dashboards.build import build_all

    stale = build_all(write=not check)
    if check and stale:
        typer.secho(f"stale dashboards: {', '.join(stale)}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    typer.echo("dashboards are up to date" if check else "dashboards written")


def register(app: typer.Typer) -> None:
    for command in (dev, api, worker, migrate, dashboards):
        app.command()(command)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use the mediaflow command")
