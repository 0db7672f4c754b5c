"""Share links: creating, opening without credentials (Range, CORS), revoking, and every way
a token must fail (docs/SECURITY.md #27): guessed, tampered, expired, revoked, another
secret, another file's name, paths that try to leave a package."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from core.config import Settings
from core.shares import ShareGrant, make_token
from core.tables import MediaFile
from tests.utils.jobs import upload
from tests.utils.media import make_png
from tests.utils.server import raw_get, serving
from tests.utils.users import new_user_headers

API = "/api/v1"
MEMBERS = {"master.m3u8": b"#EXTM3U\nv0.m3u8\n", "v0.m3u8": b"#EXTM3U\nseg-0.ts\n",
           "seg-0.ts": bytes(range(256)) * 4}


@pytest.fixture
async def png(tmp_path: Path) -> Path:
    return make_png(tmp_path / "logo.png")


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def share(client: httpx.AsyncClient, headers: dict, file_id: str,
                **body: int) -> httpx.Response:
    return await client.post(f"{API}/files/{file_id}/share", headers=headers,
                             json=body or None)


def path_of(url: str) -> str:
    return urlsplit(url).path


async def package_row(app: FastAPI, client: httpx.AsyncClient, headers: dict) -> str:
    """A package File as a package job leaves it: members under its key, listed in its
    metadata (made directly: the package job itself is tested in tests/jobs)."""
    me = (await client.get(f"{API}/auth/me", headers=headers)).json()
    file_id = uuid.uuid4()
    key = f"jobs/{uuid.uuid4()}/steps/00-hls/package"
    for path, data in MEMBERS.items():
        await app.state.storage.put_stream(f"{key}/{path}", one_chunk(data))
    await app.state.storage.put_stream(f"{key}/_index.json", one_chunk(b"{}"))
    members = [{"path": path, "size": len(data)} for path, data in MEMBERS.items()]
    await MediaFile(
        id=file_id, user=uuid.UUID(me["id"]), filename="package.zip",
        original_filename="package.zip", size=sum(m["size"] for m in members),
        content_type="application/zip", kind="package", storage_key=key,
        checksum_sha256=hashlib.sha256(b"x").hexdigest(),
        metadata={"format": "hls", "entry": "master.m3u8", "members": members},
        source="job_output").save()
    return str(file_id)


async def test_share_a_file(client: httpx.AsyncClient, headers: dict, png: Path) -> None:
    file_id = await upload(client, headers, png)
    before = time.time()
    created = await share(client, headers, file_id)
    assert created.status_code == 201, created.text
    body = created.json()
    url = urlsplit(body["url"])
    assert (url.scheme, url.netloc) == ("http", "testserver")
    assert url.path.startswith("/s/") and url.path.endswith("/logo.png")
    expires_at = dt.datetime.fromisoformat(body["expires_at"])
    assert expires_at.timestamp() == pytest.approx(before + 3600, abs=5)

    opened = await client.get(url.path)  # no credentials
    assert opened.status_code == 200
    assert opened.content == png.read_bytes()
    assert opened.headers["access-control-allow-origin"] == "*"
    assert opened.headers["content-type"] == "image/png"
    ranged = await client.get(url.path, headers={"Range": "bytes=1-3"})
    assert ranged.status_code == 206 and ranged.content == png.read_bytes()[1:4]
    assert "Content-Range" in ranged.headers["access-control-expose-headers"]
    head = await client.head(url.path)
    assert head.status_code == 200 and int(head.headers["content-length"]) == png.stat().st_size

    preflight = await client.options(url.path, headers={
        "Origin": "https://player.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "range"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "GET" in preflight.headers["access-control-allow-methods"]
    assert "Range" in preflight.headers["access-control-allow-headers"]


async def test_public_url_setting(client: httpx.AsyncClient, headers: dict, png: Path,
                                  app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app.state.settings, "public_url", "https://media.example.com/mf")
    file_id = await upload(client, headers, png)
    url = (await share(client, headers, file_id)).json()["url"]
    assert url.startswith("https://media.example.com/mf/s/") and url.endswith("/logo.png")


def test_public_url_is_validated() -> None:
    assert Settings(public_url="https://x.example/base/").public_url == "https://x.example/base"
    assert Settings(public_url="").public_url is None
    for bad in ("ftp://x.example", "x.example", "https://x.example/?a=1", "https:///nohost"):
        with pytest.raises(ValueError):
            Settings(public_url=bad)


@pytest.mark.parametrize(("body", "ok"), [
    ({"expires_in": 60}, True), ({"expires_in": 604800}, True),
    ({"expires_in": 59}, False), ({"expires_in": 604801}, False),
    ({"expires_in": "soon"}, False), ({"other": 1}, False),
])
async def test_expires_in_bounds(client: httpx.AsyncClient, headers: dict, png: Path,
                                 body: dict, ok: bool) -> None:
    file_id = await upload(client, headers, png)
    created = await client.post(f"{API}/files/{file_id}/share", headers=headers, json=body)
    assert created.status_code == (201 if ok else 422), created.text


async def test_only_the_owner_shares_or_revokes(client: httpx.AsyncClient, headers: dict,
                                                png: Path) -> None:
    file_id = await upload(client, headers, png)
    other = await new_user_headers(client)
    assert (await share(client, other, file_id)).status_code == 404
    assert (await client.delete(f"{API}/files/{file_id}/share",
                                headers=other)).status_code == 404
    assert (await client.post(f"{API}/files/{file_id}/share")).status_code == 401
    assert (await share(client, headers, "not-a-uuid")).status_code == 404


async def test_revoke_expire_tamper(client: httpx.AsyncClient, headers: dict, png: Path,
                                    settings: Settings) -> None:
    file_id = await upload(client, headers, png)
    first = path_of((await share(client, headers, file_id)).json()["url"])
    second = path_of((await share(client, headers, file_id, expires_in=60)).json()["url"])
    assert (await client.get(first)).status_code == 200
    token = first.split("/")[2]

    flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    for bad in (flipped, token[:-1], token + "A", "x" * 82, "", "%00",
                make_token("another-secret-" * 4, ShareGrant(uuid.UUID(file_id),
                                                             int(time.time()) + 60, 0))):
        response = await client.get(f"/s/{bad}/logo.png")
        assert response.status_code in (403, 404), bad  # "" and "%00" never match a token
        if bad and bad != "%00":
            assert response.status_code == 403, bad
            assert response.headers["access-control-allow-origin"] == "*"

    secret = settings.jwt_secret_value()
    expired = make_token(secret, ShareGrant(uuid.UUID(file_id), int(time.time()) - 1, 0))
    refused = await client.get(f"/s/{expired}/logo.png")
    assert refused.status_code == 403 and "expired" in refused.json()["detail"]

    revoked = await client.delete(f"{API}/files/{file_id}/share", headers=headers)
    assert revoked.status_code == 204
    for old in (first, second):
        refused = await client.get(old)
        assert refused.status_code == 403 and "revoked" in refused.json()["detail"]
    fresh = path_of((await share(client, headers, file_id)).json()["url"])
    assert (await client.get(fresh)).status_code == 200

    assert (await client.delete(f"{API}/files/{file_id}", headers=headers)).status_code == 204
    assert (await client.get(fresh)).status_code == 404


async def test_a_token_serves_only_its_file(client: httpx.AsyncClient, headers: dict,
                                            png: Path, tmp_path: Path) -> None:
    mine = await upload(client, headers, png)
    other = await upload(client, headers, make_png(tmp_path / "other.png", "32x32"))
    url = path_of((await share(client, headers, mine)).json()["url"])
    token = url.split("/")[2]
    for name in ("other.png", other, f"..%2F{other}", "logo.png/x", "LOGO.PNG"):
        response = await client.get(f"/s/{token}/{quote(name, safe='/%')}")
        assert response.status_code == 404, name


async def test_a_shared_package_serves_its_members(client: httpx.AsyncClient, headers: dict,
                                                   app: FastAPI) -> None:
    file_id = await package_row(app, client, headers)
    url = path_of((await share(client, headers, file_id)).json()["url"])
    assert url.endswith("/master.m3u8")
    base = url.rsplit("/", 1)[0]
    for path, data in MEMBERS.items():
        response = await client.get(f"{base}/{path}")
        assert response.status_code == 200 and response.content == data, path
        assert response.headers["access-control-allow-origin"] == "*"
    assert (await client.get(f"{base}/master.m3u8")).headers["content-type"] == \
        "application/vnd.apple.mpegurl"
    ranged = await client.get(f"{base}/seg-0.ts", headers={"Range": "bytes=-10"})
    assert ranged.status_code == 206 and ranged.content == MEMBERS["seg-0.ts"][-10:]
    assert (await client.get(f"{base}/seg-0.ts",
                             headers={"Range": "bytes=5000-"})).status_code == 416


ESCAPES = [
    "_index.json", "..", "../master.m3u8", "%2e%2e/master.m3u8", "%2E%2E%2Fmaster.m3u8",
    "..%2f..%2fetc%2fpasswd", "%2fetc%2fpasswd", "/etc/passwd", "%5Cmaster.m3u8",
    "..%5Cmaster.m3u8", "C:%5Cwindows", "master.m3u8%00.png", "./master.m3u8",
    "master.m3u8/", "MASTER.M3U8", "%252e%252e%252fmaster.m3u8", "v0.m3u8/../master.m3u8",
    "%2e/master.m3u8",
]


async def test_member_paths_cannot_escape(client: httpx.AsyncClient, headers: dict,
                                          app: FastAPI) -> None:
    """Sent raw to a real server: no client gets to normalise the path first."""
    file_id = await package_row(app, client, headers)
    base = path_of((await share(client, headers, file_id)).json()["url"]).rsplit("/", 1)[0]
    async with serving(app) as server:
        assert (await raw_get(server, f"{base}/master.m3u8"))[0] == 200
        for escape in ESCAPES:
            code, body = await raw_get(server, f"{base}/{escape}")
            assert code in (403, 404), escape
            assert b"EXTM3U" not in body, escape
        other_user = await new_user_headers(client)
        foreign = await package_row(app, client, other_user)
        assert (await raw_get(server, f"{base}/../{foreign}/master.m3u8"))[0] in (403, 404)
