"""The ``mediaflow`` command: server processes, administration and the client."""

from __future__ import annotations

import typer

from cli import admin, client, operators, server, templates

app = typer.Typer(
    name="mediaflow",
    help="mediaflow: multi-step FFmpeg media jobs on durable Temporal workflows.",
    no_args_is_help=True,
    add_completion=False,
)
server.register(app)
admin.register(app)
client.register(app)
app.add_typer(operators.app, name="admin")
app.add_typer(templates.app, name="templates")


if __name__ == "__main__":
    app()
