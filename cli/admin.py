"""``mediaflow create-admin``: the only way a superuser comes to exist.

There is no default admin and no default password anywhere: the operator names
the account, and either supplies a password that passes the policy or gets a
generated one printed exactly once.
"""

from __future__ import annotations

import asyncio
import re
from typing import Annotated

import typer
from pydantic import ValidationError

from core.config import Settings, get_settings

USERNAME_DISALLOWED = re.compile(r"[^A-Za-z0-9_.-]")


class AdminError(Exception):
    """The admin could not be created; the message says why, for the operator."""


def default_username(email: str) -> str:
    """The email's local part, reduced to the username alphabet and length."""
    return USERNAME_DISALLOWED.sub("", email.split("@", 1)[0])[:32]


async def create_superuser(settings: Settings, email: str, username: str, password: str) -> None:
    # Imported here so that `mediaflow --help` does not load the API stack.
    from fastapi_users import exceptions

    from api.users.db import PiccoloUserDatabase
    from api.users.manager import UserManager
    from api.users.schemas import TrustedUserCreate
    from core.db import bind_tables, close_pool, engine_from_settings, start_pool
    from core.tables import User

    try:
        admin = TrustedUserCreate(
            email=email,
            username=username,
            password=password,
            is_superuser=True,
            is_verified=True,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise AdminError(problems) from exc
    engine = engine_from_settings(settings)
    bind_tables(engine)
    await start_pool(engine)
    try:
        await UserManager(PiccoloUserDatabase(User)).create(admin, safe=False)
    except exceptions.UserAlreadyExists as exc:
        raise AdminError("a user with this email or username already exists") from exc
    except exceptions.InvalidPasswordException as exc:
        raise AdminError(str(exc.reason)) from exc
    finally:
        await close_pool(engine)


def create_admin(
    email: Annotated[str, typer.Option(help="Login email of the new superuser")],
    username: Annotated[
        str | None, typer.Option(help="Login name (default: from the email's local part)")
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(
            help="Password (default: generate one and print it once; "
            "a password on the command line lands in shell history)"
        ),
    ] = None,
) -> None:
    """Create a superuser; prints a generated password once unless --password is given."""
    from api.users.manager import generate_password

    username = username or default_username(email)
    chosen = password or generate_password(email=email, username=username)
    try:
        asyncio.run(create_superuser(get_settings(), email, username, chosen))
    except AdminError as exc:
        typer.secho(f"cannot create admin: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"created superuser {email} (username {username})")
    if password is None:
        typer.echo(f"password: {chosen}")
        typer.echo("This password is shown once. Store it now.")


def register(app: typer.Typer) -> None:
    app.command("create-admin")(create_admin)
