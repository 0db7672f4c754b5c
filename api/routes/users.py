"""``/users``: fastapi-users' router for ``GET/PATCH /users/me`` (everyone) and
``GET/PATCH /users/{id}`` (superusers: 403 otherwise, 404 for unknown ids), with our
own ``GET /users`` (superusers: the accounts, searchable, with what each holds) and
``DELETE /users/{id}``: closing an account is a workflow, not a row deletion."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import HTTPException, Query, status
from fastapi.routing import APIRoute
from piccolo.columns.combination import WhereRaw
from piccolo.query.functions.aggregate import Count, Sum
from pydantic import BaseModel
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from api.deps import Limit, Offset, SuperUser, TemporalDep, uuid_or_404
from api.routing import ApiRouter
from api.users.auth import fastapi_users
from api.users.db import forget_user
from api.users.schemas import UserRead, UserUpdate
from core.tables import Job, MediaFile, User
from core.temporal import JOBS_QUEUE
from workflows.accounts import DELETE_USER_WORKFLOW_TYPE, delete_user_workflow_id
from workflows.types import DeleteUserInput

router = ApiRouter(prefix="/users", tags=["users"])


class UserSummary(UserRead):
    """A ``User`` as an operator lists it: with what the account holds."""

    job_count: int
    file_count: int
    storage_bytes: int


class UserList(BaseModel):
    items: list[UserSummary]
    total: int


def _like(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, its own ``%``, ``_`` and ``\\`` literal."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@router.get("", name="list", response_model=UserList,
            responses={403: {"description": "Not allowed: operators only"}})
async def list_users(
    _: SuperUser,
    q: Annotated[str | None, Query(
        max_length=320, pattern=r"^[^\x00-\x1f\x7f]*$",
        description="part of the email or username, any case")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Every open account, oldest first, with its job count, live file count and stored
    bytes (what counts against its quota). Accounts being deleted are not listed."""
    where: list[Any] = [User.deleted_at.is_null()]
    if q:
        pattern = _like(q)
        where.append(WhereRaw(
            "(LOWER(email) LIKE {} ESCAPE '\\' OR LOWER(username) LIKE {} ESCAPE '\\')",
            pattern, pattern))
    rows = await User.select(
        User.id, User.email, User.username, User.is_active, User.is_superuser,
        User.is_verified, User.settings, User.created_at,
    ).where(*where).order_by(User.created_at).order_by(User.id).limit(limit).offset(
        offset).output(load_json=True)
    ids = [row["id"] for row in rows]
    jobs: dict[Any, int] = {}
    files: dict[Any, tuple[int, int]] = {}
    if ids:
        for row in await Job.select(Job.user.as_alias("owner"), Count(alias="n")).where(
                Job.user.is_in(ids)).group_by(Job.user):
            jobs[row["owner"]] = int(row["n"])
        for row in await MediaFile.select(
                MediaFile.user.as_alias("owner"), Count(alias="n"),
                Sum(MediaFile.size, alias="used")).where(
                MediaFile.user.is_in(ids), MediaFile.is_deleted.eq(False)).group_by(
                MediaFile.user):
            files[row["owner"]] = (int(row["n"]), int(row["used"] or 0))
    items = [{**row, "job_count": jobs.get(row["id"], 0),
              "file_count": files.get(row["id"], (0, 0))[0],
              "storage_bytes": files.get(row["id"], (0, 0))[1]} for row in rows]
    return {"items": items, "total": await User.count().where(*where)}


class UserDeletion(BaseModel):
    id: uuid.UUID
    status: str = "deleting"
    workflow_id: str


@router.delete(
    "/{id}", name="delete_user", status_code=status.HTTP_202_ACCEPTED, response_model=UserDeletion,
    responses={404: {"description": "no such user"},
               409: {"description": "an operator cannot delete themselves"},
               503: {"description": "Temporal is unavailable; nothing was changed"}})
async def delete_user(id: str, admin: SuperUser, temporal: TemporalDep) -> UserDeletion:
    """Close the account at once (it can no longer log in, and reads of it are 404), then
    ``DeleteUserWorkflow`` cancels its jobs, waits for them, and removes its stored
    objects and rows. Asking again while that runs is harmless."""
    target = uuid_or_404(id, "user")
    if target == admin.id:
        raise HTTPException(status.HTTP_409_CONFLICT, detail="you cannot delete yourself")
    row = await User.select(User.is_active, User.deleted_at).where(User.id == target).first()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="user not found")
    now = dt.datetime.now(dt.UTC)
    marked = await User.update({User.deleted_at: now, User.is_active: False,
                                User.updated_at: now}).where(
        User.id == target, User.deleted_at.is_null()).returning(User.id)
    forget_user(target, User)
    workflow_id = delete_user_workflow_id(str(target))
    try:
        await temporal.start_workflow(
            DELETE_USER_WORKFLOW_TYPE, DeleteUserInput(user_id=str(target)), id=workflow_id,
            task_queue=JOBS_QUEUE, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
    except RPCError as exc:
        if marked:  # nothing will clean up: reopen the account as it was
            await User.update({User.deleted_at: None, User.is_active: row["is_active"]}).where(
                User.id == target)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            detail="Temporal is unavailable; the account was not deleted") \
            from exc
    return UserDeletion(id=target, workflow_id=workflow_id)


users = fastapi_users.get_users_router(UserRead, UserUpdate)
users.routes = [route for route in users.routes  # fastapi-users' DELETE drops rows only
                if not (isinstance(route, APIRoute) and "DELETE" in (route.methods or ()))]
router.include_router(users)
