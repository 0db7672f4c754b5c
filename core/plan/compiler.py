"""Compile a validated :class:`~core.spec.JobSpec` and probe data into FFmpeg runs.

Pure: no I/O. Scratch file contents (concat lists, drawtext text) are returned as data;
argv holds placeholders (see :mod:`core.plan.model`), never server paths or user strings.

Which steps share one FFmpeg run
--------------------------------
``stepwise`` gives every step its own run; a ``@ref`` input is the earlier run's output.

``fused`` (the default) walks the live steps in order and lets step *B* continue the run of
the step *A* before it — so A's streams flow into B inside one filtergraph, decoded once
and encoded once — when all of these hold:

1. A's output is not kept in ``outputs`` (a kept result must be written as a file);
2. A's output is used exactly once, and by B (else it is written and read as a file);
3. the parameter of B that uses it can take streams: not a looped input
   (``audio_overlay.audio`` / ``video_overlay.overlay`` with ``loop``), which needs
   ``-stream_loop`` on a real input.

Nothing else splits a run. In particular a ``join`` of matching files (``auto`` or
``copy``) opens the concat demuxer as the run's input, so a following step decodes the
joined packets directly; and ``subtitles`` ``embed`` is a mapped input, so it fuses too.
The documented join → text_overlay → audio_overlay → subtitles chain is therefore one run.

Steps whose output nothing uses (directly or through later steps) and that are not kept are
dropped with a warning. Intermediate files (not kept) are Matroska; see
:meth:`core.plan.target.Target.intermediate`.

Progress: ``expected_seconds`` is the run's output duration; ``weight`` scales it by the
work: 1.0 when video is re-encoded, 0.1 when only audio is, 0.05 for pure stream copy.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from core.mediainfo import MediaInfo
from core.plan.graph import RunBuilder, Streams
from core.plan.model import DIRECTORY_OUTPUT, Plan, PlanStep
from core.plan.multifile import MULTI_FILE_OPERATIONS
from core.plan.ops import OPERATIONS, StepContext
from core.plan.output import WrittenOutput, write_output
from core.plan.target import Target
from core.spec import (
    MULTI_FILE_TYPES,
    AudioOverlayParams,
    JobSpec,
    JoinParams,
    MediaUse,
    SpecError,
    Step,
    TranscodeParams,
    VideoOverlayParams,
    media_uses,
)

#: ``PlanStep.op`` is recorded as the operation log's ``operation_type`` (32 characters).
OP_MAX_LENGTH = 32
#: Short step names for fused ops: "fused:join+text+audio+subtitles".
_FUSED_NAMES = {"join": "join", "text_overlay": "text", "audio_overlay": "audio",
                "video_overlay": "overlay", "subtitles": "subtitles", "trim": "trim",
                "transcode": "transcode", "thumbnails": "thumbnails", "package": "package"}
FFMPEG_PREFIX = ("ffmpeg", "-nostdin", "-hide_banner", "-y", "-progress", "pipe:1", "-nostats")
WEIGHT_VIDEO_ENCODE = 1.0
WEIGHT_AUDIO_ENCODE = 0.1
WEIGHT_COPY = 0.05


@dataclass(frozen=True)
class _JobStep:
    """A job step with what the partitioning needs to know about it."""

    index: int
    step: Step
    loc: tuple[str | int, ...]  # where its params live in the JobSpec body

    @property
    def ref(self) -> str:
        return f"@{self.step.id}"

    def uses(self) -> list[MediaUse]:
        return list(media_uses(self.step.params, self.loc))


def compile_plan(spec: JobSpec, media: dict[str, MediaInfo],
                 max_media_seconds: float | None = None,
                 encoders: frozenset[str] | None = None) -> Plan:
    """The FFmpeg runs for ``spec``; ``media`` maps every referenced file id to its probe.

    Raises :class:`SpecError` (→ 422) when the inputs make the spec impossible, e.g. a
    ``join`` in ``copy`` mode over clips that differ, or when the runs would together
    produce more than ``max_media_seconds`` of media (fifty hour-long clips joined, say:
    refused like an over-long upload). ``encoders`` — the encoder names of the ffmpeg that
    will run the plan (``core.ffmpeg.available_encoders``) — makes a codec that build
    cannot write a 422 too; None or empty skips that check.
    """
    job_steps = _job_steps(spec)
    kept = spec.output_step_ids()
    live, warnings = _live_steps(job_steps, kept)
    fused = getattr(spec.params, "execution", "fused") == "fused"
    infos: dict[str, MediaInfo] = dict(media)
    plan_steps: list[PlanStep] = []
    for group in _partition(live, kept, fused):
        plan_step = _compile_run(spec, group, infos, kept, index=len(plan_steps))
        if encoders:
            _check_encoders(plan_step, group[-1], encoders)
        plan_steps.append(plan_step)
    plan = Plan(plan_steps, warnings)
    if max_media_seconds is not None and plan.media_seconds > max_media_seconds:
        raise SpecError(("params",), f"the job would produce {plan.media_seconds:.0f} s of "
                        f"media; the limit is {max_media_seconds:.0f} s "
                        "(MEDIAFLOW_MAX_MEDIA_SECONDS)", "too_long")
    return plan


def _job_steps(spec: JobSpec) -> list[_JobStep]:
    combined = spec.type == "combined"
    return [
        _JobStep(index, step, ("params", "steps", index, "params") if combined else ("params",))
        for index, step in enumerate(spec.steps())
    ]


def _live_steps(job_steps: list[_JobStep], kept: list[str]) -> tuple[list[_JobStep], list[str]]:
    """Steps that contribute to a kept output, and warnings for the others."""
    needed = set(kept)
    for job_step in reversed(job_steps):
        if job_step.step.id in needed:
            needed |= {use.step_id for use in job_step.uses() if use.is_step_ref}
    live = [job_step for job_step in job_steps if job_step.step.id in needed]
    warnings = [f"step {job_step.step.id!r} is not used by any output and is skipped"
                for job_step in job_steps if job_step.step.id not in needed]
    return live, warnings


def _partition(live: list[_JobStep], kept: list[str], fused: bool) -> list[list[_JobStep]]:
    """Group steps into runs (rules in the module docstring)."""
    consumers: dict[str, list[tuple[_JobStep, MediaUse]]] = defaultdict(list)
    for job_step in live:
        for use in job_step.uses():
            if use.is_step_ref:
                consumers[use.step_id].append((job_step, use))
    groups: list[list[_JobStep]] = []
    for job_step in live:
        previous = groups[-1][-1] if groups else None
        if fused and previous and _flows_into(previous, job_step, consumers, kept):
            groups[-1].append(job_step)
        else:
            groups.append([job_step])
    return groups


def _flows_into(previous: _JobStep, current: _JobStep,
                consumers: dict[str, list[tuple[_JobStep, MediaUse]]], kept: list[str]) -> bool:
    uses = consumers.get(previous.step.id, [])
    if previous.step.id in kept or len(uses) != 1:
        return False
    consumer, use = uses[0]
    return consumer is current and current.step.type not in MULTI_FILE_TYPES \
        and not _needs_real_input(current.step, use)


def _needs_real_input(step: Step, use: MediaUse) -> bool:
    """Looped inputs are looped by the demuxer (``-stream_loop``), so they must be files."""
    field = use.loc[len(use.loc) - 1]
    params = step.params
    if isinstance(params, AudioOverlayParams):
        return field == "audio" and params.loop
    if isinstance(params, VideoOverlayParams):
        return field == "overlay" and params.loop
    return False


def _compile_run(spec: JobSpec, group: list[_JobStep], infos: dict[str, MediaInfo],
                 kept: list[str], index: int) -> PlanStep:
    """Build one run from a group of fused steps; record its output for later ``@refs``."""
    if group[-1].step.type in MULTI_FILE_TYPES:
        return _directory_run(spec, group[-1], infos, index)
    run = RunBuilder()
    streams: Streams | None = None
    carried_ref: str | None = None
    for job_step in group:
        ctx = StepContext(run, spec.output, job_step.loc, infos, carried_ref, streams)
        streams = OPERATIONS[job_step.step.type](ctx, job_step.step.params)
        carried_ref = job_step.ref
    assert streams is not None  # groups are never empty
    last = group[-1]
    keep = last.step.id in kept
    target = Target.final(spec.output) if keep else Target.intermediate(spec.output)
    mode = last.step.params.mode if isinstance(last.step.params, TranscodeParams) else None
    written = write_output(run, streams, target,
                           force_copy=_is_join_copy(group) or mode == "copy",
                           force_encode=mode == "reencode")
    infos[last.ref] = written.info
    return _plan_step(index, group, run, written, target, keep)


_ENCODER_OPTION = re.compile(r"^-c:([va])(?::\d+)?$")


def _check_encoders(step: PlanStep, last: _JobStep, encoders: frozenset[str]) -> None:
    """A SpecError for the first encoder in ``step`` that this ffmpeg build lacks."""
    for position, arg in enumerate(step.argv[:-1]):
        match = _ENCODER_OPTION.match(arg)
        encoder = step.argv[position + 1]
        if not match or encoder == "copy" or encoder in encoders:
            continue
        if last.step.type in MULTI_FILE_TYPES:
            loc: tuple[str | int, ...] = (*last.loc, "format")
        else:
            loc = ("output", "video_codec" if match.group(1) == "v" else "audio_codec")
        raise SpecError(loc, f"this server's ffmpeg has no {encoder} encoder; choose another "
                             "codec or format", "encoder_missing")


def _directory_run(spec: JobSpec, job_step: _JobStep, infos: dict[str, MediaInfo],
                   index: int) -> PlanStep:
    """A thumbnails or package run: always alone (the compiler never fuses into one), its
    result a directory published as one ``package`` File."""
    run = RunBuilder()
    ctx = StepContext(run, spec.output, job_step.loc, infos)
    produced = MULTI_FILE_OPERATIONS[job_step.step.type](ctx, job_step.step.params)
    infos[job_step.ref] = MediaInfo(format_name="package", kind=DIRECTORY_OUTPUT,
                                    duration=produced.expected_seconds)
    return PlanStep(
        index=index,
        step_id=job_step.step.id,
        op=job_step.step.type,
        covers=[job_step.step.id],
        gpu_capable=bool(run.video_inputs),
        sources=list(run.placed.values()),
        scratch_files=dict(run.scratch_files),
        argv=[*FFMPEG_PREFIX, *run.input_args, *run.filter_args(), *produced.args],
        output_name="out",
        output_kind=DIRECTORY_OUTPUT,
        keep_output=True,
        expected_seconds=produced.expected_seconds,
        weight=produced.weight,
        video_inputs=list(run.video_inputs),
        output_entry=produced.entry,
        output_metadata=produced.metadata,
        output_extras=produced.extras,
    )


def op_name(types: Sequence[str]) -> str:
    """The step type for one step; ``fused:`` and the short names of the fused ones, or
    ``fused:<n> steps`` when that would not fit :data:`OP_MAX_LENGTH`."""
    if len(types) == 1:
        return types[0]
    name = "fused:" + "+".join(_FUSED_NAMES[t] for t in types)
    return name if len(name) <= OP_MAX_LENGTH else f"fused:{len(types)} steps"


def _is_join_copy(group: list[_JobStep]) -> bool:
    params = group[0].step.params
    return len(group) == 1 and isinstance(params, JoinParams) and params.mode == "copy"


def _plan_step(index: int, group: list[_JobStep], run: RunBuilder, written: WrittenOutput,
               target: Target, keep: bool) -> PlanStep:
    argv = [*FFMPEG_PREFIX, *run.input_args, *run.filter_args(), *written.args]
    types = [job_step.step.type for job_step in group]
    duration = written.info.duration
    factor = (WEIGHT_VIDEO_ENCODE if written.video_encoded
              else WEIGHT_AUDIO_ENCODE if written.audio_encoded else WEIGHT_COPY)
    return PlanStep(
        index=index,
        step_id=group[-1].step.id,
        op=op_name(types),
        covers=[job_step.step.id for job_step in group],
        gpu_capable=bool(written.video_encoded and run.video_inputs),
        sources=list(run.placed.values()),
        scratch_files=dict(run.scratch_files),
        argv=argv,
        output_name=f"out.{target.extension}",
        output_kind=written.info.kind,
        keep_output=keep,
        expected_seconds=duration or 0.0,
        weight=(duration or 1.0) * factor,
        video_inputs=list(run.video_inputs),
    )

