"""Browser apps and CORS (docs/API.md, "Browser apps (CORS)"): listed origins may call
/api/v1 with credentials; any other origin gets no CORS header; dev allows local pages;
``*`` is refused at start; share links keep answering every origin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from core.config import Settings
from tests.conftest import REPO
from tests.utils.apps import other_app
from tests.utils.media import make_png
from tests.utils.users import new_user_headers

APP = "https://studio.example.com"
OTHER = "https://studio.example.com.evil.example"


def preflight(origin: str, method: str = "POST",
              headers: str = "authorization,content-type") -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers}


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k.lower(): v for k, v in response.headers.items()
            if k.lower().startswith("access-control-")}


async def test_an_allowed_origin_gets_a_preflight_with_credentials(settings: Settings) -> None:
    async with other_app(settings, cors_origins=f"{APP}, https://admin.example.com/") as (
            client, _):
        answer = await client.options("/api/v1/jobs", headers=preflight(APP))
        assert answer.status_code == 200, answer.text
        allowed = cors_headers(answer)
        assert allowed["access-control-allow-origin"] == APP
        assert allowed["access-control-allow-credentials"] == "true"
        assert "POST" in allowed["access-control-allow-methods"]
        assert {"authorization", "content-type"} <= {
            h.strip().lower() for h in allowed["access-control-allow-headers"].split(",")}
        assert "Origin" in answer.headers.get("vary", "")

        headers = await new_user_headers(client)
        me = await client.get("/api/v1/auth/me", headers={**headers, "Origin": APP})
        assert me.status_code == 200
        assert cors_headers(me)["access-control-allow-origin"] == APP
        assert cors_headers(me)["access-control-allow-credentials"] == "true"
        assert "X-Request-ID" in cors_headers(me)["access-control-expose-headers"]
        # errors are readable by the app too
        denied = await client.get("/api/v1/auth/me", headers={"Origin": APP})
        assert denied.status_code == 401
        assert cors_headers(denied)["access-control-allow-origin"] == APP
        second = await client.options("/api/v1/files", headers=preflight(
            "https://admin.example.com", "DELETE", "x-api-key"))
        assert second.status_code == 200
        assert cors_headers(second)["access-control-allow-origin"] == \
            "https://admin.example.com"


async def test_any_other_origin_gets_no_cors_headers(settings: Settings) -> None:
    async with other_app(settings, cors_origins=APP) as (client, _):
        for origin in (OTHER, "http://studio.example.com", "null", "http://localhost:5173"):
            answer = await client.options("/api/v1/jobs", headers=preflight(origin))
            assert answer.status_code == 400 and cors_headers(answer) == {}, origin
            headers = await new_user_headers(client)
            me = await client.get("/api/v1/auth/me", headers={**headers, "Origin": origin})
            assert me.status_code == 200 and cors_headers(me) == {}, origin


async def test_by_default_no_origin_is_allowed(client: httpx.AsyncClient) -> None:
    answer = await client.options("/api/v1/jobs", headers=preflight(APP))
    assert cors_headers(answer) == {}
    health = await client.get("/api/v1/health", headers={"Origin": APP})
    assert cors_headers(health) == {}


async def test_dev_allows_local_pages_on_any_port(settings: Settings) -> None:
    async with other_app(settings, env="dev") as (client, _):
        for origin in ("http://localhost:5173", "http://127.0.0.1:3000", "http://[::1]:8080",
                       "http://localhost"):
            answer = await client.options("/api/v1/templates", headers=preflight(origin))
            assert answer.status_code == 200, origin
            assert cors_headers(answer)["access-control-allow-origin"] == origin
        for origin in ("http://localhost.example.com:5173", "https://example.com",
                       "http://localhost:5173.example.com"):
            answer = await client.options("/api/v1/templates", headers=preflight(origin))
            assert cors_headers(answer) == {}, origin


async def test_share_links_still_answer_every_origin(
    settings: Settings, tmp_path: Path
) -> None:
    async with other_app(settings, cors_origins=APP) as (client, _):
        headers = await new_user_headers(client)
        with make_png(tmp_path / "still.png").open("rb") as f:
            uploaded = await client.post("/api/v1/files", headers=headers,
                                         files={"file": ("still.png", f, "image/png")})
        link = (await client.post(f"/api/v1/files/{uploaded.json()['id']}/share",
                                  headers=headers, json={})).json()["url"]
        path = httpx.URL(link).raw_path.decode()
        answer = await client.options(path, headers=preflight(OTHER, "GET", "range"))
        assert answer.status_code == 204
        assert cors_headers(answer)["access-control-allow-origin"] == "*"
        fetched = await client.get(path, headers={"Origin": OTHER})
        assert fetched.status_code == 200
        assert cors_headers(fetched)["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("value", ["*", f"{APP},*", "https://*.example.com"])
def test_a_wildcard_is_refused_with_credentials(value: str) -> None:
    with pytest.raises(ValidationError, match="credentials"):
        Settings(env="test", cors_origins=value)


@pytest.mark.parametrize("value", ["studio.example.com", "ftp://x.example", f"{APP}/app",
                                   f"{APP}?x=1", "https://user@studio.example.com"])
def test_only_origins_are_accepted(value: str) -> None:
    with pytest.raises(ValidationError, match="not an origin"):
        Settings(env="test", cors_origins=value)


def test_the_api_refuses_to_start_with_a_wildcard(tmp_path: Path) -> None:
    env = {**os.environ, "MEDIAFLOW_ENV": "dev", "MEDIAFLOW_DATA_DIR": str(tmp_path),
           "MEDIAFLOW_CORS_ORIGINS": "*"}
    run = subprocess.run([sys.executable, "-m", "cli.main", "api", "--port", "1"], env=env,
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "refusing to start" in run.stderr and "MEDIAFLOW_CORS_ORIGINS" in run.stderr
