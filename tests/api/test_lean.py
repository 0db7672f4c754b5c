"""Lean routes (api/lean.py) answer exactly what FastAPI's own handling of them answers:
the same status, body and headers for owners, strangers, bad ids, bad queries and every
kind of credential; and a route they cannot serve is refused when it is declared."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import AliasChoices, BaseModel

import api.lean
from api.deps import CurrentUser, SettingsDep
from api.lean import LeanRoute, lean_get
from api.routes import auth, files, jobs
from api.users.tokens import AccessTokenStrategy
from core.config import Settings
from core.enums import FileKind
from core.tables import Job, MediaFile
from tests.utils.apps import other_app
from tests.utils.users import create_user

API = "/api/v1"
MADE = itertools.count()
"""What a test route's ``default_factory`` hands out (annotations here are strings,
resolved in this module's namespace)."""


def lean_paths() -> list[str]:
    return [API + route.path for module in (auth, files, jobs) for route in module.router.routes
            if isinstance(route, LeanRoute)]


@pytest.fixture
def lean_answers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The status of every answer a lean handler makes (it answers with
    ``api.lean.Response``), so a test can tell that the lean handling answered."""
    made: list[int] = []

    class Counted(Response):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self.status_code)

    monkeypatch.setattr(api.lean, "Response", Counted)
    return made


@pytest.fixture
async def plain(settings: Settings, client: httpx.AsyncClient,
                headers: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                ) -> AsyncIterator[httpx.AsyncClient]:
    """A second app on the same database whose lean routes are handled by FastAPI itself.

    FastAPI builds a route's handler when an app first routes to it: the session app's are
    built (lean) before the class is patched for the second app's."""
    for path in lean_paths():
        await client.get(path.replace("{job_id}", "x").replace("{file_id}", "x"),
                         headers=headers)
    monkeypatch.setattr(LeanRoute, "get_route_handler", APIRoute.get_route_handler)
    async with other_app(settings) as (plain_client, _):
        yield plain_client


def answer(response: httpx.Response) -> tuple[int, Any, dict[str, str]]:
    headers = {k: v for k, v in response.headers.items()
               if k not in ("x-request-id", "date", "content-length")}
    return response.status_code, response.json(), headers


async def test_lean_routes_answer_what_fastapi_answers(
    client: httpx.AsyncClient, plain: httpx.AsyncClient, headers: dict[str, str],
    settings: Settings, lean_answers: list[int],
) -> None:
    me = (await client.get(f"{API}/auth/me", headers=headers)).json()
    owner = uuid.UUID(me["id"])
    stranger, _ = await create_user()
    inactive, _ = await create_user(active=False)
    strategy = AccessTokenStrategy(settings.jwt_secret_value(), settings.access_token_seconds)
    key = (await client.post(f"{API}/api-keys", headers=headers, json={"name": "lean"})).json()

    job_ids = []
    for n, (type_, status_, user) in enumerate([
            ("trim", "completed", owner), ("join", "failed", owner),
            ("transcode", "cancelled", owner), ("trim", "completed", stranger.id)]):
        job = Job(user=user, type=type_, status=status_, workflow_id=f"job-{uuid.uuid4()}",
                  spec={"type": type_, "note": "é ✓"}, progress={"percent": 100.0},
                  error={"code": "X", "message": "no"} if status_ == "failed" else None,
                  output_files=[str(uuid.uuid4())],
                  created_at=dt.datetime(2026, 1, 1, 0, 0, n, tzinfo=dt.UTC),
                  completed_at=dt.datetime(2026, 1, 1, 0, 1, n, tzinfo=dt.UTC))
        await job.save()
        job_ids.append(str(job.id))
    file_ids = []
    for user in (owner, stranger.id):
        media = MediaFile(user=user, filename="a.mp4", original_filename="à b.mp4", size=10,
                          content_type="video/mp4", kind="video", storage_key="k",
                          checksum_sha256="0" * 64, metadata={"duration": 1.5, "width": 320})
        await media.save()
        file_ids.append(str(media.id))

    credentials: dict[str, dict[str, str]] = {
        "bearer": headers,
        "api key": {"X-API-Key": key["key"]},
        "none": {},
        "garbage": {"Authorization": "Bearer not.a.token"},
        "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
        "inactive": {"Authorization": f"Bearer {await strategy.write_token(inactive)}"},
        "bad key": {"X-API-Key": "mf_" + "x" * 40},
    }
    paths = [f"{API}/auth/me", f"{API}/jobs/{job_ids[0]}", f"{API}/jobs/{job_ids[1]}",
             f"{API}/jobs/{job_ids[3]}", f"{API}/jobs/not-a-job", f"{API}/jobs/{uuid.uuid4()}",
             f"{API}/files/{file_ids[0]}", f"{API}/files/{file_ids[1]}", f"{API}/files/x",
             f"{API}/jobs", f"{API}/jobs?limit=2", f"{API}/jobs?limit=1&offset=1",
             f"{API}/jobs?status=failed&type=join", f"{API}/jobs?status=completed&limit=5",
             f"{API}/jobs?limit=0", f"{API}/jobs?limit=201", f"{API}/jobs?limit=abc",
             f"{API}/jobs?offset=-1", f"{API}/jobs?status=bogus", f"{API}/jobs?type=",
             f"{API}/jobs?limit=2&limit=3", f"{API}/jobs?unknown=1"]
    statuses = []
    for path in paths:
        for name, credential in credentials.items():
            before = len(lean_answers)
            lean = answer(await client.get(path, headers=credential))
            made = len(lean_answers) - before
            fastapi = answer(await plain.get(path, headers=credential))
            assert lean == fastapi, (path, name)
            # the session app's answer is the lean handler's (it makes every 200), and the
            # second app's is FastAPI's own (it made none)
            assert made == (lean[0] == 200) and len(lean_answers) == before + made, (path, name)
            statuses.append(lean[0])
    assert len(statuses) == len(paths) * len(credentials)
    assert set(statuses) == {200, 401, 404, 422} and statuses.count(200) >= 2 * 11


async def test_other_methods_and_nearby_paths_are_routed_as_before(
    client: httpx.AsyncClient, headers: dict[str, str], lean_answers: list[int],
) -> None:
    """HEAD is not a GET here (405, as FastAPI answers); a literal route declared before a
    lean one still wins (``/files/usage``); a deeper path is its own route's."""
    head = await client.head(f"{API}/jobs/{uuid.uuid4()}", headers=headers)
    assert head.status_code == 405
    usage = await client.get(f"{API}/files/usage", headers=headers)
    assert usage.status_code == 200
    assert set(usage.json()) == {"used_bytes", "quota_bytes", "file_count"}
    assert lean_answers == []
    events = await client.get(f"{API}/jobs/{uuid.uuid4()}/events", headers=headers)
    assert events.status_code == 404


def test_a_route_that_asks_for_more_is_refused_when_declared() -> None:
    router = APIRouter()

    async def with_settings(job_id: str, user: CurrentUser, settings: SettingsDep) -> dict:
        return {}

    with pytest.raises(TypeError, match="settings"):
        lean_get(router, "/{job_id}")(with_settings)

    async def with_body_number(job_id: int, user: CurrentUser) -> dict:
        return {}

    with pytest.raises(TypeError, match="job_id"):  # a path parameter that is no str
        lean_get(router, "/{job_id}/n")(with_body_number)

    async def plain_read(user: CurrentUser, request: Request) -> dict:
        return {}

    with pytest.raises(TypeError, match="dependencies"):
        lean_get(router, "/guarded", dependencies=[Depends(lambda: None)])(plain_read)
    lean_get(router, "/fine")(plain_read)  # the user and the request are served
    assert [route.path for route in router.routes] == ["/fine"]


def test_query_parameters_left_out_take_what_fastapi_gives_them() -> None:
    """An optional parameter the request leaves out gets its default directly (not through
    FastAPI's validation of it): a fresh copy of a mutable one, never the copy an earlier
    request changed; a required one, an aliased one and given ones are FastAPI's."""
    async def read(*, need: int, tags: Annotated[list[str], Query()] = [],  # noqa: B006
                   limit: int = 3, kind: FileKind | None = None,
                   named: Annotated[str | None, Query(alias="a-b")] = None,
                   pick: Annotated[str | None, Query(validation_alias=AliasChoices("p", "q"))]
                   = None,
                   fresh: Annotated[int, Query(default_factory=lambda: next(MADE))],
                   ) -> dict:
        tags.append("seen")  # a shared default would grow from request to request
        return {"need": need, "tags": tags, "limit": limit, "kind": kind, "named": named,
                "pick": pick, "fresh": fresh // 2}  # lean and plain take turns: k, k

    clients = lean_and_plain(read)
    queries = ["need=1", "need=1", "", "need=x", "need=1&tags=a&tags=b", "need=1&limit=9",
               "need=1&limit=", "need=1&kind=video", "need=1&kind=nope", "need=1&a-b=z",
               "need=1&named=z", "need=2&limit=1&kind=audio&a-b=&tags=", "need=1&q=v",
               "need=1&p=v&q=w", "need=1&pick=v"]
    answers: list[list] = [[], []]
    for query in queries:  # in turns, so each default_factory call is matched
        for client, got in zip(clients, answers, strict=True):
            response = client.get(f"/r?{query}")
            got.append((response.status_code, response.json()))
    assert answers[0] == answers[1]
    assert answers[0][1] == (200, {"need": 1, "tags": ["seen"], "limit": 3, "kind": None,
                                   "named": None, "pick": None, "fresh": 1})
    assert answers[0][-3][1]["pick"] == "v"
    assert {status for status, _ in answers[0]} == {200, 422}


class Filter(BaseModel):
    status: str = "any"


def test_a_model_of_query_parameters_is_left_to_fastapi() -> None:
    async def read(filters: Annotated[Filter, Query()] = Filter()) -> dict:  # noqa: B008
        return filters.model_dump()

    answers = [[client.get(path).json() for path in ("/r", "/r?status=done")]
               for client in lean_and_plain(read)]
    assert answers[0] == answers[1] == [{"status": "any"}, {"status": "done"}]


def lean_and_plain(endpoint: Any) -> list[TestClient]:
    """Clients of two apps serving ``endpoint`` at ``/r``: as a lean route, and as a plain
    FastAPI route."""
    lean, plain = APIRouter(), APIRouter()
    lean_get(lean, "/r", response_model=dict[str, Any])(endpoint)
    plain.get("/r", response_model=dict[str, Any])(endpoint)
    clients = []
    for router in (lean, plain):
        app = FastAPI()
        app.include_router(router)
        clients.append(TestClient(app))
    return clients
