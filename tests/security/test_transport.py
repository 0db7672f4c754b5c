"""Hostile requests on every route that takes a body or numbers (docs/SECURITY.md #21, #22,
#25): each gets its documented 4xx with an encodable ``{"detail"}``, nothing is stored,
and ``/health`` still answers afterwards."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

from core.tables import ApiKey, Job, MediaFile, User
from tests.utils.jobs import upload
from tests.utils.users import new_user_headers

API = "/api/v1"
HOSTILE_JSON = {
    "nan": b'{"x": NaN}',
    "infinity": b'{"x": -Infinity}',
    "beyond_double": b'{"x": 1e400}',
    "lone_surrogate": b'{"x": "\\ud800"}',
    "lone_low_surrogate_key": b'{"\\udc00": 1}',
    "duplicate_keys": b'{"x": 1, "x": 2}',
    "deep_nesting": b"[" * 30_000 + b"]" * 30_000,  # under every route's cap
    "not_utf8": b'{"x": "\xff\xfe"}',
    "truncated": b'{"x": ',
}
# (method, path template, needs auth, a valid-looking body the hostile value is spliced into)
JSON_ROUTES = [
    ("POST", "/auth/register", False,
     '{"email": "h@example.com", "username": "hostile", "password": %s}'),
    ("POST", "/auth/login", False, '{"email_or_username": %s, "password": "Secret123"}'),
    ("POST", "/auth/refresh", False, '{"refresh_token": %s}'),
    ("PATCH", "/users/me", True, '{"username": %s}'),
    ("POST", "/api-keys", True, '{"name": %s}'),
    ("POST", "/jobs", True,
     '{"type": "text_overlay", "params": {"video": "{video}", "text": %s}}'),
    ("POST", "/jobs/validate", True,
     '{"type": "text_overlay", "params": {"video": "{video}", "text": "t"}, '
     '"output": {"crf": %s}}'),
]
SPLICED = {"nan": "NaN", "infinity": "-Infinity", "beyond_double": "1e400",
           "lone_surrogate": '"\\ud800"', "lone_low_surrogate_key": '{"\\udc00": 1}'}


async def counts() -> tuple[int, ...]:
    return (await User.count(), await ApiKey.count(), await Job.count(),
            await MediaFile.count())


def assert_clean_4xx(response: httpx.Response, *expected: int) -> None:
    assert response.status_code in expected, (response.status_code, response.text)
    body = response.json()  # always JSON, always decodable
    assert "detail" in body
    text = json.dumps(body, allow_nan=False)  # encodable by the strictest encoder
    assert "0x" not in text and "Traceback" not in text


@pytest.fixture(scope="module")
async def session(app: object, media_dir: Path) -> dict:
    """One account and one upload for the whole module (the requests store nothing)."""
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        headers = await new_user_headers(c)
        video = await upload(c, headers, media_dir / "b.mp4")
    return {"headers": headers, "video": video}


@pytest.mark.parametrize(("method", "path", "auth", "template"), JSON_ROUTES,
                         ids=[f"{m} {p}" for m, p, _, _ in JSON_ROUTES])
@pytest.mark.parametrize("kind", sorted(HOSTILE_JSON))
async def test_hostile_json_is_422_on_every_route(
    client: httpx.AsyncClient, session: dict, method: str, path: str, auth: bool,
    template: str, kind: str,
) -> None:
    if kind in SPLICED:  # inside a realistic body, at a field the route reads
        body = template.replace("{video}", session["video"]) % SPLICED[kind]
        content = body.encode()
    else:
        content = HOSTILE_JSON[kind]
    before = await counts()
    headers = {"Content-Type": "application/json", **(session["headers"] if auth else {})}
    response = await client.request(method, API + path, content=content, headers=headers)
    assert_clean_4xx(response, 422)
    assert await counts() == before
    assert (await client.get(f"{API}/health")).status_code == 200


@pytest.mark.parametrize("path", ["/jobs", "/files", "/api-keys"])
@pytest.mark.parametrize("query", [
    "offset=99999999999999999999999999999", "offset=-1", "limit=0",
    "limit=" + "9" * 5000, "offset=1e3", "offset=%00",
])
async def test_numbers_beyond_range_in_queries_are_422(
    client: httpx.AsyncClient, session: dict, path: str, query: str,
) -> None:
    if path == "/api-keys":  # no paging: unknown query parameters are ignored, not a 500
        response = await client.get(f"{API}{path}?{query}", headers=session["headers"])
        assert response.status_code == 200
        return
    response = await client.get(f"{API}{path}?{query}", headers=session["headers"])
    assert_clean_4xx(response, 422)


async def test_admin_list_bounds(client: httpx.AsyncClient) -> None:
    admin = await new_user_headers(client, superuser=True)
    for query in ("offset=" + "9" * 30, "type=bogus", "status=done", "user_id=nope"):
        assert_clean_4xx(await client.get(f"{API}/admin/jobs?{query}", headers=admin), 422)


@pytest.mark.parametrize("header", [
    "bytes=" + "9" * 5000 + "-", "bytes=0-" + "9" * 5000, "bytes=-" + "9" * 40,
    "bytes=99999999999999999999-1",
])
async def test_huge_range_headers_never_fail(
    client: httpx.AsyncClient, session: dict, header: str
) -> None:
    """An unreadable range is ignored (the whole file), one past the end is a 416."""
    response = await client.get(f"{API}/files/{session['video']}/download",
                                headers={**session["headers"], "Range": header})
    assert response.status_code in (200, 416), response.status_code
    if response.status_code == 416:
        assert response.headers["Content-Range"].startswith("bytes */")


async def test_job_type_filter_and_strict_params(
    client: httpx.AsyncClient, session: dict
) -> None:
    headers = session["headers"]
    assert_clean_4xx(await client.get(f"{API}/jobs?type=bogus", headers=headers), 422)
    assert (await client.get(f"{API}/jobs?type=join", headers=headers)).status_code == 200
    video = session["video"]
    refused = {
        "a boolean volume": {"type": "audio_overlay",
                             "params": {"video": video, "audio": video, "audio_volume": True}},
        "a string number": {"type": "text_overlay", "params": {"video": video, "text": "t"},
                            "output": {"crf": "23"}},
        "webhook port 0": {"type": "text_overlay", "params": {"video": video, "text": "t"},
                           "webhook": {"url": "http://127.0.0.1:0/hook"}},
        "webhook port 65536": {"type": "text_overlay", "params": {"video": video, "text": "t"},
                               "webhook": {"url": "http://127.0.0.1:65536/hook"}},
    }
    before = await counts()
    for name, body in refused.items():
        response = await client.post(f"{API}/jobs/validate", headers=headers, json=body)
        assert response.status_code == 422, (name, response.text)
        response = await client.post(f"{API}/jobs", headers=headers, json=body)
        assert response.status_code == 422, (name, response.text)
    assert await counts() == before


@pytest.mark.parametrize(("path", "size"), [
    ("/jobs", 1024 * 1024 + 1), ("/jobs/validate", 2 * 1024 * 1024),
    ("/auth/login", 64 * 1024 + 1), ("/api-keys", 100_000),
])
async def test_bodies_over_the_route_cap_are_413(
    client: httpx.AsyncClient, session: dict, path: str, size: int
) -> None:
    body = b'{"x": "' + b"a" * size + b'"}'
    before = await counts()
    response = await client.post(API + path, content=body, headers={
        **session["headers"], "Content-Type": "application/json"})
    assert_clean_4xx(response, 413)
    assert await counts() == before


async def test_a_garbage_content_length_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{API}/auth/login", content=b"{}", headers={
        "Content-Type": "application/json", "Content-Length": "12abc"})
    assert_clean_4xx(response, 400)


async def test_unknown_ids_of_every_kind_are_404(
    client: httpx.AsyncClient, session: dict
) -> None:
    headers = session["headers"]
    for path in (f"/jobs/{uuid.uuid4()}", "/jobs/not-an-id", f"/jobs/{uuid.uuid4()}/logs",
                 f"/files/{uuid.uuid4()}", "/files/%00", f"/jobs/{'9' * 300}"):
        assert_clean_4xx(await client.get(API + path, headers=headers), 404)
