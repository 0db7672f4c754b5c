"""The OpenAPI document tells the truth (docs/SECURITY.md #26): every status a route can
answer is listed, and operation ids are short (``jobs-get``), so a generated client reads
``jobs.get(id)`` returning a ``Job``.

Route decorators list what is particular to a route (a 409 on delete, a 415 on upload).
What follows from how a route is built is added here, once, for all of them — so a new
route cannot forget it:

* every route: 503 (a dependency — database, Temporal, storage — is down);
* an authenticated route (one with a security requirement): 401, and 429 (the per-user
  request budget);
* an operator route (``/admin``, ``/users/{id}``): 403;
* a route with a path parameter: 404 (missing, or someone else's);
* a route that takes a body: 400 (a malformed request line or Content-Length), 408 (the
  body stalled), 413 (over the route's cap), 422 (invalid).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from api.schemas import ErrorBody

WHY = {
    400: "Malformed request",
    401: "Missing, invalid or expired credentials",
    403: "Not allowed: operators only",
    404: "Not found, or not yours",
    408: "The request body stalled",
    413: "The body is over this route's limit",
    422: "Invalid body or parameters (with the field path)",
    429: "Rate limited; retry after Retry-After seconds",
    503: "A dependency (database, Temporal, storage) is down",
}
BODY_METHODS = {"post", "put", "patch", "delete"}
OPERATOR_PATH = re.compile(r"^/api/v1/(admin/|users/\{)")


def operation_id(route: APIRoute) -> str:
    """``<tag>-<route name>``: ``jobs-get``, ``files-download``, ``auth-register``."""
    tag = str(route.tags[0]) if route.tags else "api"
    return f"{tag}-{route.name.split(':')[-1]}"


def statuses_for(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    codes = {503}
    if operation.get("security"):
        codes |= {401, 429}
    if OPERATOR_PATH.match(path):
        codes.add(403)
    if "{" in path:
        codes.add(404)
    if method in BODY_METHODS:
        codes |= {400, 408, 413, 422}
    return codes


def complete(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the statuses of the module docstring to every operation that lacks them."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["ErrorBody"] = ErrorBody.model_json_schema(
        ref_template="#/components/schemas/{model}")
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for code in sorted(statuses_for(path, method, operation)):
                responses.setdefault(str(code), {"description": WHY[code], "content": error})
    return schema


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(get_openapi(
                title=app.title, version=app.version, description=app.description,
                routes=app.routes))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
