"""Client commands: talk to a mediaflow API at ``MEDIAFLOW_URL`` (default localhost:8000).

Credentials: ``MEDIAFLOW_API_KEY`` when set, else the tokens that ``mediaflow login``
saved in ``~/.config/mediaflow/credentials.json`` (mode 0600), refreshed on a 401.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.live import Live
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

console = Console()
bars = Console(stderr=True)  # progress on stderr: stdout stays parseable
TERMINAL = {"completed", "failed", "cancelled"}
CHUNK = 1024 * 1024


def base_url() -> str:
    return os.environ.get("MEDIAFLOW_URL", "http://localhost:8000").rstrip("/")


def credentials_path() -> Path:
    root = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config"))
    return root / "mediaflow" / "credentials.json"


def save_credentials(data: dict[str, Any]) -> None:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps({**data, "url": base_url()}))


def load_credentials() -> dict[str, Any]:
    try:
        return json.loads(credentials_path().read_text())
    except (OSError, ValueError):
        return {}


class Api:
    """An httpx client that authenticates, refreshes once on 401, and turns errors into exits."""

    def __init__(self) -> None:
        self.http = httpx.Client(base_url=f"{base_url()}/api/v1", timeout=60.0)

    def _auth(self) -> dict[str, str]:
        key = os.environ.get("MEDIAFLOW_API_KEY")
        if key:
            return {"X-API-Key": key}
        token = load_credentials().get("access_token")
        if not token:
            fail("not logged in: run `mediaflow login` or set MEDIAFLOW_API_KEY")
        return {"Authorization": f"Bearer {token}"}

    def _refresh(self) -> bool:
        refresh = load_credentials().get("refresh_token")
        if not refresh or os.environ.get("MEDIAFLOW_API_KEY"):
            return False
        response = self.http.post("/auth/refresh", json={"refresh_token": refresh})
        if response.status_code != 200:
            return False
        save_credentials(response.json())
        return True

    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, headers={**(headers or {}),
                                                                **self._auth()}, **kwargs)
            if response.status_code == 401 and self._refresh() and "content" not in kwargs:
                response = self.http.request(method, path, headers={**(headers or {}),
                                                                    **self._auth()}, **kwargs)
        except httpx.HTTPError as exc:
            fail(f"cannot reach {base_url()}: {exc}")
        if response.status_code >= 400:
            fail(f"HTTP {response.status_code}: {describe_error(response)}")
        return response

    def stream(self, method: str, path: str,
               **kwargs: Any) -> contextlib.AbstractContextManager[httpx.Response]:
        return self.http.stream(method, path, headers=self._auth(), **kwargs)


def describe_error(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        return response.text[:500]
    if isinstance(detail, list):
        return "; ".join(f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}"
                         for d in detail)
    return str(detail)


def fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


def login(
    user: Annotated[str, typer.Option("--user", "-u", help="Email or username")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
) -> None:
    """Log in and keep the tokens for the other commands."""
    try:
        response = httpx.post(f"{base_url()}/api/v1/auth/login",
                              json={"email_or_username": user, "password": password}, timeout=30)
    except httpx.HTTPError as exc:
        fail(f"cannot reach {base_url()}: {exc}")
    if response.status_code != 200:
        fail(f"login failed: {describe_error(response)}")
    save_credentials(response.json())
    console.print(f"logged in to {base_url()}")


def _file_chunks(path: Path, progress: Progress, task: TaskID) -> Iterator[bytes]:
    with path.open("rb") as source:
        while data := source.read(CHUNK):
            progress.update(task, advance=len(data))
            yield data


def _transfer_progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), TimeRemainingColumn(), console=bars)


def upload(path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Upload a media file; prints its id (only the id when stdout is not a terminal)."""
    api = Api()
    api.request("GET", "/auth/me")  # refresh an expired token before streaming the body
    size = path.stat().st_size
    boundary = f"mediaflow-{os.urandom(8).hex()}"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{path.name.replace(chr(34), "")}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    with _transfer_progress() as progress:
        task = progress.add_task(path.name, total=size)

        def body() -> Iterator[bytes]:
            yield head
            yield from _file_chunks(path, progress, task)
            yield tail

        response = api.request("POST", "/files", content=body(), headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(head) + size + len(tail)),
        })
    item = response.json()
    if console.is_terminal:
        console.print(f"[green]{item['id']}[/green]  {item['kind']}  {item['filename']}")
    else:  # piped or captured: only the id, for `ID=$(mediaflow upload a.mp4)`
        print(item["id"])


def files(kind: Annotated[str | None, typer.Option(help="video|audio|image|subtitle")] = None,
          limit: int = 50) -> None:
    """List your files."""
    params: dict[str, Any] = {"limit": limit}
    if kind:
        params["kind"] = kind
    data = Api().request("GET", "/files", params=params).json()
    table = Table("id", "kind", "name", "size", "duration", "created")
    for f in data["items"]:
        duration = (f.get("metadata") or {}).get("duration")
        table.add_row(f["id"], f["kind"], f["filename"], str(f["size"]),
                      f"{duration:.2f}s" if duration else "", f["created_at"][:19])
    console.print(table)
    console.print(f"{data['total']} file(s)")


def submit(
    spec: Annotated[Path | None, typer.Argument(exists=True, dir_okay=False,
                                                help="JobSpec JSON file")] = None,
    template: Annotated[str | None, typer.Option(
        "--template", "-t", help="Run this template (id or name) instead of a file")] = None,
    var: Annotated[list[str] | None, typer.Option(
        "--var", "-v", help="A template variable, key=value (repeatable)")] = None,
    priority: Annotated[int | None, typer.Option(
        min=1, max=5, help="1 (first) to 5 (last); replaces the spec's or template's")] = None,
    watch_: Annotated[bool, typer.Option("--watch", help="Follow progress")] = False,
    idempotency_key: Annotated[str | None, typer.Option(help="Idempotency-Key header")] = None,
) -> None:
    """Submit a job from a JSON file, or from a template with -t NAME -v key=value."""
    api = Api()
    if (spec is None) == (template is None):
        fail("give a JobSpec file or --template NAME (one of them)")
    body: Any
    if template is not None:
        body = {"template": template, "variables": typed_values(api, template, var or [])}
    else:
        assert spec is not None
        if var:
            fail("-v/--var sets template variables: use it with --template")
        body = _read_spec(spec)
    if priority is not None and isinstance(body, dict):
        body["priority"] = priority
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    job = api.request("POST", "/jobs", json=body, headers=headers).json()
    console.print(f"job [green]{job['id']}[/green] {job['status']}")
    if watch_:
        watch(job["id"])


def typed_values(api: Api, template: str, assignments: list[str]) -> dict[str, Any]:
    """``key=value`` pairs typed by the template's declared variables: a ``number``
    variable gets a JSON number, the others the string as written."""
    declared = api.request("GET", f"/templates/{template}").json()["variables"]
    values: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or not key:
            fail(f"-v takes key=value, not {assignment!r}")
        kind = declared.get(key, {}).get("type")
        if kind == "number":
            try:
                number = float(text)
            except ValueError:
                fail(f"{key} is a number variable; {text!r} is not a number")
            values[key] = int(number) if number.is_integer() else number
        else:
            values[key] = text  # unknown names go as they are: the API names them
    return values


def import_(
    url: Annotated[str, typer.Argument(help="http(s) URL of a media file")],
    filename: Annotated[str | None, typer.Option(help="Display name (default: from the URL)")]
    = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait",
                                       help="Wait until it is ready or failed")] = True,
) -> None:
    """Import a media file from a URL into your files; prints its id (alone when piped)."""
    api = Api()
    body: dict[str, Any] = {"url": url}
    if filename:
        body["filename"] = filename
    item = api.request("POST", "/files/import", json=body).json()
    with bars.status(f"importing {url}") if wait else contextlib.nullcontext():
        while wait and item["status"] == "importing":
            time.sleep(1.0)
            item = api.request("GET", f"/files/{item['id']}").json()
    if item["status"] == "failed":
        error = item.get("error") or {}
        fail(f"import failed: {error.get('code', '')} {error.get('message', '')}")
    if console.is_terminal:
        console.print(f"[green]{item['id']}[/green]  {item['status']}  "
                      f"{item['kind'] or ''}  {item['filename']}")
    else:
        print(item["id"])


def batch(
    jobs_file: Annotated[Path, typer.Argument(
        exists=True, dir_okay=False, help="JSON: {\"jobs\": [...]} or a list of jobs")],
    idempotency_key: Annotated[str | None, typer.Option(
        help="Idempotency-Key header; item i uses <key>:<i>")] = None,
) -> None:
    """Submit up to 100 jobs (JobSpecs or template requests) at once; exit 1 if any item
    was refused."""
    body = _read_spec(jobs_file)
    if isinstance(body, list):
        body = {"jobs": body}
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    items = Api().request("POST", "/jobs/batch", json=body, headers=headers).json()["items"]
    table = Table("index", "status", "job", "error")
    for item in items:
        error = ""
        if item.get("error"):
            detail = item["error"]["detail"]
            error = "; ".join(f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}"
                              for d in detail) if isinstance(detail, list) else str(detail)
        table.add_row(str(item["index"]), str(item["status"]),
                      (item.get("job") or {}).get("id", ""), error)
    console.print(table)
    refused = [i for i in items if i["status"] >= 400]
    console.print(f"{len(items) - len(refused)} job(s) accepted, {len(refused)} refused")
    if refused:
        raise typer.Exit(1)


def jobs_table(items: list[dict[str, Any]]) -> Table:
    table = Table("id", "type", "status", "progress", "step", "eta", "created")
    for j in items:
        progress = j["progress"]
        eta = progress.get("eta_seconds")
        table.add_row(j["id"], j["type"], j["status"], f"{progress['percent']:.0f}%",
                      progress.get("step") or "", f"{eta:.0f}s" if eta else "",
                      (j["created_at"] or "")[:19])
    return table


def jobs(
    status: Annotated[str | None, typer.Option()] = None,
    limit: int = 50,
    watch_: Annotated[bool, typer.Option(
        "--watch", help="A live table, refreshed every second, until every listed job has "
                        "ended (Ctrl-C stops it sooner)")] = False,
) -> None:
    """List your jobs."""
    params: dict[str, Any] = {"limit": limit}
    if status:
        params["status"] = status
    api = Api()
    data = api.request("GET", "/jobs", params=params).json()
    if not watch_:
        console.print(jobs_table(data["items"]))
        return
    with contextlib.suppress(KeyboardInterrupt), Live(
            jobs_table(data["items"]), console=console, refresh_per_second=4) as live:
        while any(j["status"] not in TERMINAL for j in data["items"]):
            time.sleep(1.0)
            data = api.request("GET", "/jobs", params=params).json()
            live.update(jobs_table(data["items"]))


def watch(job_id: str) -> None:
    """Follow a job's progress until it ends."""
    api = Api()
    with Progress(TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.percentage:>5.1f}%"), TextColumn("{task.fields[eta]}"),
                  console=bars) as progress:
        task = progress.add_task(job_id[:8], total=100, eta="")
        while True:
            job = api.request("GET", f"/jobs/{job_id}").json()
            p = job["progress"]
            eta = f"ETA {p['eta_seconds']:.0f}s" if p.get("eta_seconds") else ""
            progress.update(task, completed=p["percent"], eta=eta,
                            description=f"{job_id[:8]} {job['status']} {p.get('step') or ''}")
            if job["status"] in TERMINAL:
                break
            time.sleep(1.0)
    if job["status"] == "completed":
        console.print(f"[green]completed[/green] outputs: {', '.join(job['output_files'])}")
    else:
        error = job.get("error") or {}
        console.print(f"[red]{job['status']}[/red] {error.get('code', '')} "
                      f"{error.get('message', '')}")
        raise typer.Exit(1)


def cancel(job_id: str) -> None:
    """Cancel a running job."""
    Api().request("POST", f"/jobs/{job_id}/cancel")
    console.print(f"cancel requested for {job_id}")


def download(
    file_id: str,
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
) -> None:
    """Download a file (an upload or a job output)."""
    api = Api()
    meta = api.request("GET", f"/files/{file_id}").json()
    target = output or Path(Path(meta["filename"]).name or file_id)
    with api.stream("GET", f"/files/{file_id}/download", follow_redirects=True) as response:
        if response.status_code != 200:
            response.read()
            fail(f"HTTP {response.status_code}: {describe_error(response)}")
        with _transfer_progress() as progress, target.open("wb") as out:
            task = progress.add_task(target.name, total=int(meta["size"]))
            for chunk in response.iter_bytes(CHUNK):
                out.write(chunk)
                progress.update(task, advance=len(chunk))
    console.print(f"saved {target}")


def pause(job_id: str) -> None:
    """Pause a job at its next step boundary."""
    job = Api().request("POST", f"/jobs/{job_id}/pause").json()
    console.print(f"pause requested for {job_id} ({job['status']})")


def resume(job_id: str) -> None:
    """Resume a paused job."""
    job = Api().request("POST", f"/jobs/{job_id}/resume").json()
    console.print(f"resume requested for {job_id} ({job['status']})")


def logs(job_id: str) -> None:
    """A job's operation log: every ffmpeg run and webhook attempt, with errors."""
    rows = Api().request("GET", f"/jobs/{job_id}/logs").json()
    table = Table("step", "operation", "pool", "decoder", "attempt", "started", "seconds",
                  "speed", "result")
    for row in rows:
        speed = f"{row['speed']:.2f}x" if row.get("speed") else ""
        duration = f"{row['duration']:.2f}" if row.get("duration") is not None else ""
        result = "ok" if row["success"] else (row.get("error_details") or "failed")
        table.add_row(f"{row['step']} {row['step_id']}", row["operation_type"], row["pool"],
                      row["decoder"], str(row["attempt"]), (row["started_at"] or "")[:19],
                      duration, speed, result)
    console.print(table)
    console.print(f"{len(rows)} operation(s)")


def _read_spec(spec: Path) -> Any:
    try:
        return json.loads(spec.read_text())
    except ValueError as exc:
        fail(f"{spec} is not JSON: {exc}")


def validate(
    spec: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JobSpec JSON file")],
) -> None:
    """Check a job without running it: the ffmpeg runs it would make, or why not (exit 1).

    Paths in the argv are placeholders ({in0}, {out}); nothing is started."""
    plan = Api().request("POST", "/jobs/validate", json=_read_spec(spec)).json()
    table = Table("step", "op", "pool", "argv")
    for run in plan["plan"]:
        table.add_row(run["step"], run["op"], run["pool"], " ".join(run["argv"]))
    console.print(table)
    for warning in plan["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    console.print(f"[green]valid[/green]: {len(plan['plan'])} ffmpeg run(s)")


def share(
    file_id: str,
    expires_in: Annotated[int, typer.Option(
        "--expires-in", min=60, max=604800, help="Seconds the link works (60-604800)")] = 3600,
    revoke: Annotated[bool, typer.Option(
        "--revoke", help="Revoke every share link of the file instead")] = False,
) -> None:
    """Print a link that opens a file without credentials (for a package: its playlist)."""
    api = Api()
    if revoke:
        api.request("DELETE", f"/files/{file_id}/share")
        console.print(f"every share link of {file_id} is revoked")
        return
    link = api.request("POST", f"/files/{file_id}/share", json={"expires_in": expires_in}).json()
    typer.echo(link["url"])  # alone on stdout, unwrapped: scripts can take it as it is
    bars.print(f"expires {link['expires_at']}")


def register(app: typer.Typer) -> None:
    for command in (login, upload, files, submit, validate, jobs, watch, pause, resume, cancel,
                    logs, download, share, batch):
        app.command()(command)
    app.command(name="import")(import_)
