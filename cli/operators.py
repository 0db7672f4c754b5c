"""``mediaflow admin …``: the operator's client commands (superusers), against the same API
and with the same credentials as the other client commands (``cli.client``)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from cli.client import Api, console, jobs_table
from core.enums import Pool

app = typer.Typer(help="Operator commands (superusers): statistics, every job, users, "
                       "rerouting.", no_args_is_help=True)


def size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


@app.command()
def stats() -> None:
    """Jobs by status and type, mean durations, stored bytes, users."""
    data = Api().request("GET", "/admin/stats").json()
    by_status = Table("status", "jobs", title="jobs by status")
    for name, count in sorted(data["jobs_by_status"].items()):
        by_status.add_row(name, str(count))
    by_type = Table("type", "jobs", "mean duration (completed)", title="jobs by type")
    means = data["mean_duration_seconds_by_type"]
    for name, count in sorted(data["jobs_by_type"].items()):
        mean = means.get(name)
        by_type.add_row(name, str(count), f"{mean:.1f}s" if mean is not None else "")
    console.print(by_status)
    console.print(by_type)
    console.print(f"storage {size(data['storage_bytes'])}  users {data['users']}")


@app.command("jobs")
def all_jobs(
    user_id: Annotated[str | None, typer.Option(help="Only this user's jobs")] = None,
    status: Annotated[str | None, typer.Option()] = None,
    type_: Annotated[str | None, typer.Option("--type")] = None,
    limit: int = 50,
    offset: int = 0,
) -> None:
    """Every user's jobs, newest first."""
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    params.update({k: v for k, v in (("user_id", user_id), ("status", status),
                                     ("type", type_)) if v})
    data = Api().request("GET", "/admin/jobs", params=params).json()
    console.print(jobs_table(data["items"]))
    console.print(f"{data['total']} job(s)")


@app.command()
def users(
    q: Annotated[str | None, typer.Option(help="Part of the email or username")] = None,
    limit: int = 50,
    offset: int = 0,
) -> None:
    """Accounts with their job, file and storage counts."""
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if q:
        params["q"] = q
    data = Api().request("GET", "/users", params=params).json()
    table = Table("id", "email", "username", "active", "superuser", "jobs", "files", "stored")
    for user in data["items"]:
        table.add_row(user["id"], user["email"], user["username"],
                      "yes" if user["is_active"] else "no",
                      "yes" if user["is_superuser"] else "", str(user["job_count"]),
                      str(user["file_count"]), size(user["storage_bytes"]))
    console.print(table)
    console.print(f"{data['total']} user(s)")


@app.command()
def reroute(
    job_id: str,
    pool: Annotated[str, typer.Argument(help="cpu or gpu")],
) -> None:
    """Send a job's remaining steps to another pool."""
    if pool not in set(Pool):
        console.print(f"[red]error:[/red] the pool is one of {', '.join(Pool)}")
        raise typer.Exit(2)
    job = Api().request("POST", f"/admin/jobs/{job_id}/reroute", json={"pool": pool}).json()
    console.print(f"{job_id} ({job['status']}): remaining steps go to the {pool} pool")
