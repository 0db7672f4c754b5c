"""What ``POST /jobs``, ``/jobs/validate`` and every ``/jobs/batch`` item may be: a JobSpec
spelled out, or ``{template, variables, webhook?, priority?}`` (docs/API.md, "Templates").

:func:`resolve` turns either into the JobSpec that runs. A template request is expanded
by ``core.templates``; its errors — and the later ones of ``check_spec`` (a file of the
wrong kind) — name the variable that caused them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import HTTPException, status
from pydantic import ValidatorFunctionWrapHandler, WrapValidator

from core.spec import JobSpec
from core.tables import Template
from core.templates import (
    Problem,
    TemplateRun,
    TemplateUseError,
    Use,
    Variable,
    expand,
    relocate,
)


def _by_shape(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """A body with ``template`` is a template request, anything else a JobSpec; each is
    validated alone, so errors keep plain paths (``["body", "params", "text"]``) rather
    than one per union member."""
    if isinstance(value, JobSpec | TemplateRun):
        return value
    if isinstance(value, dict) and "template" in value:
        return TemplateRun.model_validate(value)
    return JobSpec.model_validate(value)


JobRequest = Annotated[JobSpec | TemplateRun, WrapValidator(_by_shape)]


@dataclass
class Resolved:
    spec: JobSpec
    template_id: uuid.UUID | None = None
    uses: list[Use] = field(default_factory=list)

    def relocated(self, exc: HTTPException) -> HTTPException:
        """A 422 from checking the expanded spec, with each error moved to the variable
        that filled its place (a spelled-out spec's errors stay as they are)."""
        if self.template_id is None or exc.status_code != 422 or \
                not isinstance(exc.detail, list):
            return exc
        problems = [relocate(self.uses, tuple(item["loc"][1:]), item["type"], item["msg"])
                    for item in exc.detail]
        return unprocessable(problems)


def unprocessable(problems: list[Problem]) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=[
        {"type": type_, "loc": ["body", *loc], "msg": msg} for loc, type_, msg in problems])


async def find_template(ref: str, user_id: uuid.UUID) -> dict[str, Any]:
    """The template ``ref`` names for this user: by id (theirs or public) or by name
    (theirs first, then the oldest public one of that name); else 404."""
    query = Template.select().output(load_json=True)
    try:
        template_id = uuid.UUID(ref)
    except ValueError:
        rows = await query.where(Template.name == ref, (Template.owner == user_id) | (
            Template.public.eq(True))).order_by(Template.created_at)
        row = next((r for r in rows if r["owner"] == user_id), rows[0] if rows else None)
    else:
        row = await query.where(Template.id == template_id, (Template.owner == user_id) | (
            Template.public.eq(True))).first()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="template not found")
    return row


async def resolve(request: JobSpec | TemplateRun, user_id: uuid.UUID) -> Resolved:
    """The JobSpec to check and run; 404 for an unknown template, 422 naming the
    variable for values that do not fit."""
    if isinstance(request, JobSpec):
        return Resolved(request)
    row = await find_template(request.template, user_id)
    variables = {name: Variable.model_validate(v) for name, v in
                 (row["variables"] or {}).items()}
    try:
        expansion = expand(row["spec"] or {}, variables, request)
    except TemplateUseError as exc:
        raise unprocessable(exc.problems) from exc
    return Resolved(expansion.spec, row["id"], expansion.uses)
