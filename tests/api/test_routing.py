"""The API's routers (api/routing.py) say no at once to paths outside their prefix, and
that changes no request's route: every documented operation, and the paths around it,
is resolved to the same router as with FastAPI's own matching."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from starlette.routing import Match

from api.routes import auth, files, jobs
from api.routing import API_PREFIX, ApiRouter

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def scope(path: str, method: str = "GET", root_path: str = "") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": root_path + path,
            "root_path": root_path, "headers": [], "query_string": b""}


def resolved(app: FastAPI, request: dict[str, Any]) -> tuple[str, int | None]:
    """What the app's router does with the request: the first of its routes that matches
    it fully, else the first that matches partly (a path with another method), else
    none; as the index into the app's routes."""
    partial = None
    for index, route in enumerate(app.router.routes):
        match, _ = route.matches(dict(request))
        if match == Match.FULL:
            return "full", index
        if match == Match.PARTIAL and partial is None:
            partial = index
    return ("partial", partial) if partial is not None else ("none", None)


def requests(app: FastAPI) -> list[dict[str, Any]]:
    """Every documented path with every method, and paths beside them: a trailing slash,
    one more segment, a prefix cut short or run on, outside the API, under a root path."""
    paths = {"/", API_PREFIX, API_PREFIX + "/", API_PREFIX + "x", "/api", "/metrics",
             "/s/token/master.m3u8", "/docs"}
    for template in app.openapi()["paths"]:
        path = re.sub(r"\{[^}]+\}", "x1", template)
        paths |= {path, path + "/", path + "/extra", path + "x", path[:-1]}
    return [scope(path, method, root_path) for path in sorted(paths) for method in METHODS
            for root_path in ("", "/behind/proxy")]


async def test_every_request_resolves_as_with_fastapis_own_matching(
        app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    cases = requests(app)
    gated = [resolved(app, request) for request in cases]
    monkeypatch.setattr(ApiRouter, "matches", APIRouter.matches)
    plain = [resolved(app, request) for request in cases]
    assert gated == plain
    assert ("full", None) not in gated
    found = {kind for kind, _ in gated}
    assert found == {"full", "partial", "none"}, "the cases reach every outcome"


def test_a_router_refuses_a_path_outside_its_prefix_without_trying_its_routes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def tried(self: APIRouter, scope: dict[str, Any]) -> tuple[Match, dict]:
        raise AssertionError(f"{self.prefix} tried its routes for {scope['path']}")

    monkeypatch.setattr(APIRouter, "matches", tried)
    for router in (jobs.router, files.router):
        for path in ("/api/v1/auth/me", "/api/v1", "/s/token/x", "/files/x", "/jobs"):
            assert router.matches(scope(path)) == (Match.NONE, {})
    assert auth.router.matches(scope("/api/v1/files/x1")) == (Match.NONE, {})
    with pytest.raises(AssertionError, match="/auth tried its routes"):
        auth.router.matches(scope("/api/v1/auth/me"))
    with pytest.raises(AssertionError, match="/files tried its routes"):
        files.router.matches(scope("/api/v1/files/x1", root_path="/behind/proxy"))


def test_every_api_router_is_an_api_router_included_under_the_prefix(app: FastAPI) -> None:
    """The gate's premise: each ApiRouter is included (once, not nested) under API_PREFIX
    and each of its routes, hidden ones too, begins with its own prefix. A plain
    APIRouter under the prefix would work, only slower."""
    included = [route for route in app.router.routes if hasattr(route, "original_router")]
    assert included, "FastAPI keeps included routers as units"
    kinds = {route.original_router.prefix: type(route.original_router) for route in included}
    assert kinds.pop("/s") is APIRouter  # share links: outside the API prefix
    assert set(kinds.values()) == {ApiRouter}
    for route in included:
        router = route.original_router
        if isinstance(router, ApiRouter):
            assert route.include_context.prefix == API_PREFIX, router.prefix
            paths = list(paths_of(router))
            assert paths and all(path.startswith(router.prefix) for path in paths), paths


def paths_of(router: APIRouter) -> Iterator[str]:
    """Each route's path below the app's include prefix, those of routers included into
    ``router`` too (fastapi-users' register and users routers are)."""
    for item in router.routes:
        if hasattr(item, "original_router"):  # its context's prefix is the includer's
            yield from (item.include_context.prefix + path
                        for path in paths_of(item.original_router))
        else:
            yield item.path
