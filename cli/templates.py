"""``mediaflow templates …`` and the values of ``mediaflow submit --template NAME -v k=v``
(docs/API.md, "Templates"), against the API at ``MEDIAFLOW_URL``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cli.client import Api, console, fail

app = typer.Typer(help="Job templates: list (the default), show, create, delete. Run one "
                       "with `mediaflow submit --template NAME -v key=value`.",
                  invoke_without_command=True)


def _variables_cell(variables: dict[str, Any]) -> str:
    return ", ".join(
        f"{name}:{v['type']}" + (f"={v['default']}" if v.get("default") is not None else "")
        for name, v in variables.items())


@app.callback()
def templates(ctx: typer.Context) -> None:
    """Your templates and the public ones."""
    if ctx.invoked_subcommand is not None:
        return
    data = Api().request("GET", "/templates", params={"limit": 200}).json()
    table = Table("id", "name", "type", "variables", "public", "description")
    for t in data["items"]:
        table.add_row(t["id"], t["name"], str(t["spec"].get("type", "")),
                      _variables_cell(t["variables"]), "yes" if t["public"] else "",
                      t["description"])
    console.print(table)
    console.print(f"{data['total']} template(s)")


@app.command()
def show(template: Annotated[str, typer.Argument(help="id or name")]) -> None:
    """One template as JSON (the body `create` takes, plus id and owner)."""
    console.print_json(json.dumps(Api().request("GET", f"/templates/{template}").json()))


@app.command()
def create(
    body: Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                         help="JSON {name, description?, spec, variables, "
                                              "public?}")],
) -> None:
    """Save a template; prints its id."""
    try:
        payload = json.loads(body.read_text())
    except ValueError as exc:
        fail(f"{body} is not JSON: {exc}")
    created = Api().request("POST", "/templates", json=payload).json()
    console.print(f"template [green]{created['id']}[/green] {created['name']}")


@app.command()
def delete(template: Annotated[str, typer.Argument(help="id or name")]) -> None:
    """Delete one of your templates (jobs made from it keep their spec)."""
    Api().request("DELETE", f"/templates/{template}")
    console.print(f"deleted {template}")
