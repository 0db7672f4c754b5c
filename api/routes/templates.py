"""Job templates (docs/API.md, "Templates"): a user's own, and superusers' public ones
(house presets) that everyone may read and run but only superusers may change.

A template that is private and someone else's is a 404, like a missing one
(docs/SECURITY.md #13); a public one that is not yours is readable, and changing it is
a 403. Checks of the spec itself live in ``core.templates``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import uuid
from typing import Annotated, Any

import asyncpg
from fastapi import HTTPException, Query, Response, status
from pydantic import BaseModel

from api.deps import CurrentUser, Limit, Offset
from api.job_requests import find_template, unprocessable
from api.routing import ApiRouter
from api.users.models import UserModel
from core.files import load_inputs
from core.tables import Template
from core.templates import TemplateIn, Variable, check_template

router = ApiRouter(prefix="/templates", tags=["templates"])

Responses = dict[int | str, dict[str, Any]]
FORBIDDEN: Responses = {403: {"description": "a public template that is not yours (superusers "
                                             "only), or public: true from a non-superuser"}}
CONFLICT: Responses = {409: {"description": "you already have a template of this name"}}


class TemplatePublic(BaseModel):
    id: uuid.UUID
    name: str
    description: str
    spec: dict[str, Any]
    variables: dict[str, Variable]
    public: bool
    owner_id: uuid.UUID
    created_at: dt.datetime
    updated_at: dt.datetime


class TemplateList(BaseModel):
    items: list[TemplatePublic]
    total: int


def template_public(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(row["id"]), "name": row["name"], "description": row["description"] or "",
            "spec": row["spec"] or {}, "variables": row["variables"] or {},
            "public": bool(row["public"]), "owner_id": str(row["owner"]),
            "created_at": row["created_at"], "updated_at": row["updated_at"]}


async def checked(body: TemplateIn, user: UserModel) -> None:
    """403 for ``public`` without being a superuser; 422 for a spec no values could make
    valid, or that names files the author does not have."""
    if body.public and not user.is_superuser:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            detail="only superusers publish templates (public: true)")
    check = await asyncio.to_thread(check_template, body)  # a few model validations
    problems = list(check.problems)
    if body.public and isinstance(body.spec, dict) and body.spec.get("webhook") is not None:
        # every user reads a public template: a webhook secret in it would let anyone
        # sign deliveries to that endpoint, and every user's jobs would report there
        problems.append((("spec", "webhook"), "public_webhook",
                         "a public template cannot carry a webhook; give one with each "
                         "use instead (POST /jobs: template, variables, webhook)"))
    if not problems and check.literal_files:
        owned = await load_inputs(user.id, [file_id for _, file_id in check.literal_files])
        problems = [(loc, "file_not_found",
                     f"file {file_id} is not one of yours; use a file variable instead")
                    for loc, file_id in check.literal_files if file_id not in owned]
    if problems:
        raise unprocessable(problems)


async def load_own(ref: str, user: UserModel) -> dict[str, Any]:
    """A template the caller may change: theirs, or (superusers) any public one. 403 for a
    public one they may only read; 404 for the rest."""
    row = await find_template(ref, user.id)
    if row["owner"] != user.id and not (row["public"] and user.is_superuser):
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            detail="this public template is read-only to you")
    return row


async def saved(write: Any) -> None:
    try:
        await write
    except (asyncpg.UniqueViolationError, sqlite3.IntegrityError) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            detail="you already have a template of this name") from exc


@router.post("", name="create", status_code=status.HTTP_201_CREATED,
             response_model=TemplatePublic, responses={**FORBIDDEN, **CONFLICT})
async def create_template(body: TemplateIn, user: CurrentUser) -> dict[str, Any]:
    """Save a JobSpec with ``{{variables}}``; refused (422, with the path) when it names an
    undeclared variable, declares one it never uses, or could never be valid."""
    await checked(body, user)
    template_id = uuid.uuid4()
    await saved(Template(
        id=template_id, owner=user.id, name=body.name, description=body.description,
        spec=body.spec, variables={k: v.model_dump(exclude_none=True)
                                   for k, v in body.variables.items()},
        public=body.public).save())
    return template_public(await find_template(str(template_id), user.id))


@router.get("", name="list", response_model=TemplateList)
async def list_templates(
    user: CurrentUser, limit: Limit = 50, offset: Offset = 0,
    public: Annotated[bool | None, Query(description="only public (true) or only your "
                                                     "own private ones (false)")] = None,
) -> dict[str, Any]:
    """Your templates and every public one, by name."""
    visible = (Template.owner == user.id) | Template.public.eq(True)
    where = [visible] if public is None else [visible, Template.public.eq(public)]
    rows = await Template.select().where(*where).order_by(Template.name).order_by(
        Template.id).limit(limit).offset(offset).output(load_json=True)
    return {"items": [template_public(r) for r in rows],
            "total": await Template.count().where(*where)}


@router.get("/{template_id}", name="get", response_model=TemplatePublic)
async def get_template(template_id: str, user: CurrentUser) -> dict[str, Any]:
    """By id, or by name (yours first, then a public one)."""
    return template_public(await find_template(template_id, user.id))


@router.put("/{template_id}", name="replace", response_model=TemplatePublic,
            responses={**FORBIDDEN, **CONFLICT})
async def replace_template(template_id: str, body: TemplateIn,
                           user: CurrentUser) -> dict[str, Any]:
    row = await load_own(template_id, user)
    await checked(body, user)
    await saved(Template.update({
        Template.name: body.name, Template.description: body.description,
        Template.spec: body.spec, Template.public: body.public,
        Template.variables: {k: v.model_dump(exclude_none=True)
                             for k, v in body.variables.items()},
        Template.updated_at: dt.datetime.now(dt.UTC),
    }).where(Template.id == row["id"]))
    return template_public(await find_template(str(row["id"]), user.id))


@router.delete("/{template_id}", name="delete", status_code=status.HTTP_204_NO_CONTENT,
               responses=FORBIDDEN)
async def delete_template(template_id: str, user: CurrentUser) -> Response:
    """Jobs made from it keep their expanded spec (and its id)."""
    row = await load_own(template_id, user)
    await Template.delete().where(Template.id == row["id"])
    return Response(status_code=status.HTTP_204_NO_CONTENT)
