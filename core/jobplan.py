"""Glue between stored files and the pure compiler in ``core.plan``.

The API uses it to validate and show a plan; the worker's ``prepare_job`` uses
the very same function to produce the steps it runs, so what ``POST
/jobs/validate`` shows is what runs.
"""

from __future__ import annotations

import uuid
from typing import Any

from core.jobspec import JobSpec, SpecError
from core.plan import compile_plan
from core.plan.media import MediaInfo
from core.plan.model import Plan, PlanInput, PlanStep
from core.tables import MediaFile
from workflows.types import StepSource, StepSpec

SUBTITLE_FORMAT_NAMES = {"srt": "srt", "vtt": "webvtt", "webvtt": "webvtt", "ass": "ass"}


class PlanError(Exception):
    def __init__(self, error: SpecError) -> None:
        super().__init__(str(error))
        self.error = error


async def load_inputs(user_id: uuid.UUID | str, file_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Live files of ``user_id`` among ``file_ids``: id → row (kind, probe, metadata, key)."""
    wanted = []
    for file_id in file_ids:
        try:
            wanted.append(uuid.UUID(file_id))
        except ValueError:
            continue
    if not wanted:
        return {}
    rows = await MediaFile.select(
        MediaFile.id, MediaFile.kind, MediaFile.probe, MediaFile.metadata,
        MediaFile.storage_key, MediaFile.filename,
    ).where(
        MediaFile.id.is_in(wanted), MediaFile.user == uuid.UUID(str(user_id)),
        MediaFile.is_deleted.eq(False),
    ).output(load_json=True)
    return {str(row["id"]): row for row in rows}


def media_info(row: dict[str, Any]) -> MediaInfo:
    if row["kind"] == "subtitle":
        fmt = (row.get("metadata") or {}).get("format") or "srt"
        return MediaInfo(format_name=SUBTITLE_FORMAT_NAMES.get(fmt, fmt), kind="subtitle")
    return MediaInfo.from_ffprobe(row.get("probe") or {})


def compile_for(spec: JobSpec, inputs: dict[str, dict[str, Any]]) -> Plan:
    try:
        return compile_plan(spec, {fid: media_info(row) for fid, row in inputs.items()})
    except SpecError as exc:
        raise PlanError(exc) from exc


def plan_for(spec: JobSpec, inputs: dict[str, dict[str, Any]],
             max_media_seconds: float | None = None) -> dict[str, Any]:
    """The public view for ``POST /jobs/validate``: runs with placeholder argv, warnings.

    A job whose runs would together produce more than ``max_media_seconds`` of media
    (fifty hour-long clips joined, say) is refused like an over-long upload."""
    plan = compile_for(spec, inputs)
    total = sum(step.expected_duration or 0.0 for step in plan.steps)
    if max_media_seconds is not None and total > max_media_seconds:
        raise PlanError(SpecError(
            ("params",), f"the job would produce {total:.0f} s of media; the limit is "
                         f"{max_media_seconds:.0f} s (MEDIAFLOW_MAX_MEDIA_SECONDS)", "too_long"))
    return {"plan": plan.public(), "warnings": list(plan.warnings)}


def step_spec(step: PlanStep, output_filename: str = "") -> StepSpec:
    return StepSpec(
        index=step.index, step_id=step.id, op=step.op, argv=list(step.argv),
        sources=[StepSource(placeholder=i.name, filename=i.filename,
                            file_id=None if i.is_step_output else i.source,
                            step_id=i.source[1:] if i.is_step_output else None)
                 for i in step.inputs],
        output_ext=step.output_ext, output_name=step.output_name,
        output_kind=step.output_kind, scratch_files=dict(step.scratch_files),
        gpu_capable=step.pool_hint == "gpu-capable",
        expected_seconds=float(step.expected_duration or 0.0), weight=float(step.weight),
        keep_output=step.keep, covers=list(step.covers), video_inputs=list(step.video_inputs),
        output_filename=output_filename,
    )


def plan_step(spec: StepSpec) -> PlanStep:
    """Back from the workflow's dataclass to the compiler's, to render argv."""
    return PlanStep(
        index=spec.index, id=spec.step_id, op=spec.op, covers=list(spec.covers),
        pool_hint="gpu-capable" if spec.gpu_capable else "cpu",
        inputs=[PlanInput(name=s.placeholder, filename=s.filename,
                          source=f"@{s.step_id}" if s.step_id else str(s.file_id))
                for s in spec.sources],
        scratch_files=dict(spec.scratch_files), argv=list(spec.argv),
        output_name=spec.output_name, output_kind=spec.output_kind, keep=spec.keep_output,
        expected_duration=spec.expected_seconds, weight=spec.weight,
        video_inputs=list(spec.video_inputs),
    )
