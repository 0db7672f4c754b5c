"""``/users``: fastapi-users' router for ``GET/PATCH /users/me`` (everyone) and
``GET/PATCH /users/{id}`` (superusers: 403 otherwise, 404 for unknown ids), with our
own ``DELETE /users/{id}``: closing an account is a workflow, not a row deletion."""

from __future__ import annotations

import datetime as dt
import uuid

from fastapi import APIRouter, HTTPException, status
from fastapi.routing import APIRoute
from pydantic import BaseModel
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from api.deps import SuperUser, TemporalDep
from api.users.auth import fastapi_users
from api.users.db import forget_user
from api.users.schemas import UserRead, UserUpdate
from core.tables import User
from core.temporal import JOBS_QUEUE
from workflows.accounts import DELETE_USER_WORKFLOW_TYPE, delete_user_workflow_id
from workflows.types import DeleteUserInput

router = APIRouter(prefix="/users", tags=["users"])


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
    try:
        target = uuid.UUID(id)
    except ValueError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="user not found") from None
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
