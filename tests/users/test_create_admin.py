"""``mediaflow create-admin`` as an operator runs it: a subprocess on the test database."""

from __future__ import annotations

import re
import uuid

import httpx

from tests.conftest import run_cli
from tests.utils.users import login_headers


async def test_create_admin_prints_a_generated_password_once(
    pg_url: str, client: httpx.AsyncClient, api_prefix: str
) -> None:
    email = f"root-{uuid.uuid4().hex[:8]}@example.com"
    result = run_cli("create-admin", "--email", email, env=_env(pg_url))
    assert result.returncode == 0, result.stderr

    printed = re.findall(r"^password: (\S+)$", result.stdout, flags=re.MULTILINE)
    assert len(printed) == 1
    headers = await login_headers(client, email, printed[0])
    me = (await client.get(f"{api_prefix}/auth/me", headers=headers)).json()
    assert me["is_superuser"] is True
    assert me["username"] == email.split("@")[0]


async def test_create_admin_with_password_and_refusals(
    pg_url: str, client: httpx.AsyncClient, api_prefix: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    email, username = f"ops-{tag}@example.com", f"ops_{tag}"

    weak = run_cli("create-admin", "--email", email, "--password", "password1", env=_env(pg_url))
    assert weak.returncode == 1
    assert "upper-case" in weak.stderr

    given = run_cli(
        "create-admin",
        "--email",
        email,
        "--username",
        username,
        "--password",
        "Sup3rSecret!",
        env=_env(pg_url),
    )
    assert given.returncode == 0, given.stderr
    assert "Sup3rSecret!" not in given.stdout
    headers = await login_headers(client, username, "Sup3rSecret!")
    assert (await client.get(f"{api_prefix}/users/me", headers=headers)).json()["is_superuser"]

    again = run_cli("create-admin", "--email", email.upper(), env=_env(pg_url))
    assert again.returncode == 1
    assert "already exists" in again.stderr


def _env(pg_url: str) -> dict[str, str]:
    return {"MEDIAFLOW_DATABASE_URL": pg_url, "MEDIAFLOW_ENV": "test"}
