"""Lean handling of the busiest reads: the same routes, without FastAPI's per-request
plumbing.

Clients poll ``GET /jobs/{id}`` and read files and themselves far more often than they
do anything else, and on those reads FastAPI's plumbing cost more than the answer.
Profiled in-process on a finished job, a request through the FastAPI route took 350 µs
and the same endpoint called directly 200 µs: most of the difference was FastAPI solving
the route's dependencies (a tree, resolved afresh on every request, in which the
validation of four query parameters alone took longer than reading the jobs).

A route declared with :func:`lean_get` is an ordinary FastAPI route (routed in its
place among the others, in the OpenAPI document as before, answering other methods
and HEAD with 405, labelled in the metrics by its template) whose handler — FastAPI's
documented hook, ``APIRoute.get_route_handler`` — calls the endpoint with what its
signature asks for resolved directly:

* query parameters: validated by FastAPI's own function for them
  (``request_params_to_args``), so values, defaults and the 422 are FastAPI's; an
  optional one the request leaves out takes its default at once, as that function would
  give it;
* a ``str`` path parameter: the path's segment, as FastAPI passes it;
* ``CurrentUser`` or ``SuperUser`` (``api.deps``): the same dependency function, given
  the credentials its security schemes read (the same scheme objects, called on the
  request), so 401, 403, the request budget and the log binding are the same;
* ``Request``: the request.

The endpoint's answer is validated against the route's response model and serialised by
it, as FastAPI does (the model fills in what a view leaves out, and drops what it does not
document); ``tests/api/test_lean.py`` checks that each lean route answers exactly what
FastAPI's own handling of it answers. An ``HTTPException`` from the endpoint is answered
by the app's handlers, as before.

An endpoint whose signature asks for anything else, or a route with dependencies of its
own, is refused when the route is declared: a dependency added to it later cannot be
skipped unnoticed.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any, get_args, get_origin, get_type_hints

from fastapi import APIRouter, Request, Response
from fastapi.dependencies.utils import request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.params import Depends
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter

from api.users.auth import (
    API_KEY_SCHEME,
    BEARER_SCHEME,
    authenticated_superuser,
    authenticated_user,
)

if TYPE_CHECKING:
    from fastapi._compat import ModelField

Resolver = Callable[[Request], Awaitable[Any]]
Endpoint = Callable[..., Awaitable[Any]]
USER_DEPENDENCIES = (authenticated_user, authenticated_superuser)
BY_NAME = {"validate_by_name", "validate_by_alias", "populate_by_name"}
"""Settings under which a parameter may go by another name than its alias."""


def lean_get(router: APIRouter, path: str, **options: Any) -> Callable[[Endpoint], Endpoint]:
    """``@router.get(path, **options)`` for an endpoint whose route is a :class:`LeanRoute`."""
    def register(endpoint: Endpoint) -> Endpoint:
        router.add_api_route(path, endpoint, methods=["GET"], route_class_override=LeanRoute,
                             **options)
        return endpoint
    return register


class LeanRoute(APIRoute):
    """An ``APIRoute`` whose handler resolves its endpoint's arguments itself."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Called by FastAPI as the route is built (and again for each inclusion)."""
        if self.dependencies:
            raise TypeError(f"{self.path}: a lean route takes no route-level dependencies")
        if self.response_model is None or any((
                self.response_model_include, self.response_model_exclude,
                self.response_model_exclude_unset, self.response_model_exclude_defaults,
                self.response_model_exclude_none)):
            raise TypeError(f"{self.path}: a lean route answers its whole response model")
        query = self.dependant.query_params
        defaults = _defaults_when_absent(query)
        endpoint = self.endpoint
        resolvers = _resolvers(endpoint, self.path_format, {field.name for field in query})
        model: TypeAdapter[Any] = TypeAdapter(self.response_model)
        status_code = self.status_code or 200

        async def handle(request: Request) -> Response:
            # as FastAPI: the dependencies (the user: 401) before the parameters (422)
            resolved = {name: await resolve(request) for name, resolve in resolvers.items()}
            params = request.query_params
            left_out = {field for field, key in defaults.items() if key not in params}
            arguments, errors = request_params_to_args(
                [field for field in query if field not in left_out], params)
            if errors:
                raise RequestValidationError(errors)
            for field in left_out:  # as FastAPI gives an absent one: a copy, not validated
                arguments[field.name] = copy.deepcopy(field.default)
            arguments.update(resolved)
            answer = model.validate_python(await endpoint(**arguments))
            return Response(model.dump_json(answer), status_code=status_code,
                            media_type="application/json")

        return handle


def _defaults_when_absent(query: list[ModelField]) -> dict[ModelField, str]:
    """The query parameters that, absent from a request, take their default: what
    FastAPI's validation of them does (a deep copy of the default, not validated) without
    its analysis of each parameter's annotation on every request: 25 µs for the four of
    ``GET /jobs?limit=20``, 6 µs for the one given. Required ones, ones whose default is
    validated or made afresh (``default_factory``), models of parameters and ones with
    other names to go by are left to FastAPI. Each maps to the name the request gives it
    by."""
    defaults: dict[ModelField, str] = {}
    for field in query:
        info = field.field_info
        key = info.validation_alias or field.alias  # as FastAPI reads it: ?status= …
        if info.is_required() or info.validate_default or not isinstance(key, str) or \
                info.default_factory is not None or _names_a_model(info.annotation) or \
                set(field.config or {}) & BY_NAME:
            continue  # a fresh default each time, a model of parameters, other names
        defaults[field] = key
    return defaults


def _names_a_model(annotation: Any) -> bool:
    """Whether a pydantic model appears in ``annotation`` (``Model``, ``Model | None``,
    ``Annotated[Model, …]``): FastAPI reads such a parameter field by field."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_names_a_model(arg) for arg in get_args(annotation))


def _resolvers(endpoint: Endpoint, path: str, query: set[str]) -> dict[str, Resolver]:
    """How to get each argument of ``endpoint`` but its query parameters (``query``)."""
    hints = get_type_hints(endpoint, include_extras=True)
    resolvers: dict[str, Resolver] = {}
    for name in inspect.signature(endpoint).parameters:
        hint = hints.get(name)
        if name in query:
            continue
        if hint is Request:
            resolvers[name] = _the_request
        elif hint is str and f"{{{name}}}" in path:
            resolvers[name] = _path_parameter(name)
        elif (dependency := _dependency(hint)) in USER_DEPENDENCIES:
            resolvers[name] = _user(dependency)
        else:
            raise TypeError(f"{endpoint.__name__}({name}: {hint}) cannot be served leanly: "
                            "only query and str path parameters, the user and the request")
    return resolvers


def _dependency(hint: Any) -> Any:
    if get_origin(hint) is not Annotated:
        return None
    marker = next((m for m in get_args(hint)[1:] if isinstance(m, Depends)), None)
    return marker.dependency if marker else None


async def _the_request(request: Request) -> Request:
    return request


def _path_parameter(name: str) -> Resolver:
    async def resolve(request: Request) -> str:
        return str(request.path_params[name])
    return resolve


def _user(dependency: Any) -> Resolver:
    async def resolve(request: Request) -> Any:
        return await dependency(request, await BEARER_SCHEME(request),
                                await API_KEY_SCHEME(request))
    return resolve
