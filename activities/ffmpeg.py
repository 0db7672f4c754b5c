"""``run_ffmpeg_step``: one FFmpeg run of a job, on a CPU or GPU worker.

Inputs are materialised in a per-attempt scratch dir under server-chosen names
(linked when storage is a local disk, downloaded otherwise); the argv template's
placeholders are replaced by those paths; ffmpeg runs in its own process group
with ``-progress pipe:1``; progress is heartbeated and signalled to the workflow;
a cancel or timeout kills the whole group and removes the scratch dir. The output
goes to a deterministic key, so a retry overwrites instead of duplicating.

A directory output (a package or thumbnails, ``PlanStep.is_directory_output``) is stored
member by member under ``<key>/<member path>`` with its member list beside them
(``core.packages``, docs/API.md "Package files"); it is not probed, since ffprobe would
read a playlist as one (docs/SECURITY.md #1).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import datetime as dt
import functools
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import anyio
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import metrics
from activities.bookkeeping import (
    already_published,
    finish_despite_cancel,
    publish_outputs,
    save_operation,
)
from activities.prepare import live_inputs
from core.config import Settings
from core.enums import Pool
from core.ffmpeg import ffmpeg_path
from core.packages import (
    PACKAGE_CONTENT_TYPE,
    PACKAGE_KIND,
    content_type_for,
    dump_index,
    finish_package,
    index_key,
    member_key,
    valid_member_path,
)
from core.plan.model import PlanStep, gpu_argv_variant
from core.probe import MediaRejected, probe_file
from core.storage import Storage
from workflows.types import OperationRecord, StepInput, StepProgress, StepResult

HEARTBEAT_EVERY = 1.0
FFMPEG_NICENESS = 10
"""ffmpeg runs yield the CPU to the control plane: the worker's own event loop (heartbeats,
the next step's dispatch, the output probe), and where they share a host the API and
Temporal, which get about nine times an encode's share while they want it. A busy
machine still gets all of its cores encoding; nice only weights who runs."""
STDERR_LINES = 30
HWACCEL_MARKERS = (
    "Device creation failed",
    "No device available for decoder",
    "Device setup failed",
    "Cannot load libcuda",
    "CUDA_ERROR",
)
INVALID_INPUT_MARKERS = (
    "Invalid data found when processing input",
    "could not find codec parameters",
    "Invalid argument",
    "does not contain any stream",
    "Error initializing filter",
    "No such filter",
    "Output file #0 does not contain any stream",
    "Stream map",
    "matches no streams",
    "Unknown encoder",
    "Error while opening encoder",
    "Error opening output",
)


def output_key(job_id: str, step: PlanStep) -> str:
    run = f"jobs/{job_id}/steps/{step.index:02d}-{step.step_id}"
    return f"{run}/package" if step.is_directory_output else f"{run}/output.{step.output_ext}"


@dataclass
class ProgressParser:
    """Reads ``-progress`` blocks; percent from out_time against the expected duration."""

    expected_seconds: float
    out_seconds: float = 0.0
    speed: float | None = None
    ended: bool = False

    def feed(self, line: str) -> bool:
        """Consume one line; True at the end of a block (a new reading is ready)."""
        key, _, value = line.strip().partition("=")
        if key in ("out_time_us", "out_time_ms") and value.lstrip("-").isdigit():
            self.out_seconds = max(0.0, int(value) / 1_000_000)  # both are µs in ffmpeg 5
        elif key == "speed":
            number = value.strip().rstrip("x")
            with contextlib.suppress(ValueError):
                self.speed = float(number) if number not in ("N/A", "") else None
        elif key == "progress":
            self.ended = value == "end"
            return True
        return False

    @property
    def percent(self) -> float:
        if self.ended:
            return 100.0
        if self.expected_seconds <= 0:
            return 0.0
        return min(99.9, 100.0 * self.out_seconds / self.expected_seconds)


ADDRESS = re.compile(r"\s*@\s*0x[0-9a-fA-F]+")


def with_threads(argv: list[str], threads: int) -> list[str]:
    """``-threads N`` for the encoders: an output option, so before the output (the last
    argument, whatever kind of output the run writes)."""
    return [*argv[:-1], "-threads", str(threads), argv[-1]]


def scrub(text: str, scratch: Path, step: PlanStep) -> str:
    """ffmpeg's stderr as the user may see it (docs/SECURITY.md #25): no server paths, no
    memory addresses (``[h264 @ 0x5616…]`` becomes ``[h264]``), and the scratch names we
    chose spoken in the user's terms: an input is ``input <file id>`` (or ``input @<step>``
    for an earlier step's result), the result is ``the output``, and our own helper files
    (text, concat lists) are ``a scratch file``."""
    text = text.replace(str(scratch) + os.sep, "").replace(str(scratch), "<scratch>")
    text = ADDRESS.sub("", text)
    names = {item.filename: f"input {item.ref}" for item in step.sources}
    names[step.output_name] = "the output"
    names.update({name: "a scratch file" for name in step.scratch_files})
    for name in sorted(names, key=len, reverse=True):
        text = re.sub(rf"(?<![\w.-]){re.escape(name)}(?![\w.-])", names[name], text)
    return text


def classify_failure(returncode: int, stderr_tail: str) -> ApplicationError:
    if any(marker in stderr_tail for marker in HWACCEL_MARKERS):
        return ApplicationError(f"hardware decoding is unavailable: {stderr_tail[-500:]}",
                                type="HwaccelUnavailable")
    if any(marker in stderr_tail for marker in INVALID_INPUT_MARKERS):
        return ApplicationError(
            f"ffmpeg rejected the input or parameters (exit {returncode}): {stderr_tail[-1500:]}",
            type="InvalidMedia", non_retryable=True,
        )
    return ApplicationError(f"ffmpeg failed (exit {returncode}): {stderr_tail[-1500:]}",
                            type="FFmpegFailed")


class FFmpegActivities:
    #: below the workflow's 30 s heartbeat timeout, so we give up before Temporal does
    stall_seconds: float = 25.0
    #: heartbeat period while no ffmpeg progress flows (transfers, probing)
    keepalive_seconds: float = 5.0

    def __init__(self, settings: Settings, storage: Storage, pool: str) -> None:
        self.settings = settings
        self.storage = storage
        self.pool = pool
        self.running = 0  # ffmpeg runs of this worker in flight
        metrics.pool_series(pool)
        setpriv_path()  # asked once, before a step runs on the event loop
        nice_path()

    async def _materialise(self, request: StepInput, scratch: Path,
                           inputs: dict[str, dict]) -> dict[str, str]:
        """Place every input and scratch file under its planned name; returns the
        placeholder → path mapping."""
        step = request.step
        paths = step.paths_in(str(scratch))
        for source in step.sources:
            if source.step_id is not None:
                key = request.earlier_outputs[source.step_id]
            else:
                assert source.file_id is not None
                key = inputs[source.file_id]["storage_key"]
            target = Path(paths[source.placeholder])
            local = self.storage.local_path(key)
            if local is not None and local.exists():
                target.symlink_to(local)
            else:
                await self.storage.download_to(key, target)
        for name, content in step.scratch_files.items():
            Path(paths[f"scratch:{name}"]).write_text(content, encoding="utf-8")
        return paths

    def _variants(self, step: PlanStep) -> list[tuple[str, list[str]]]:
        """(decoder, placeholder argv) to try in order: NVDEC first on the GPU pool for steps
        that decode video, then the plain CPU argv as the fallback."""
        variants = [("cpu", list(step.argv))]
        if self.pool == Pool.gpu and step.gpu_capable:
            variants.insert(0, ("cuda", gpu_argv_variant(step)))
        return variants

    async def _signal_progress(self, step: PlanStep, parser: ProgressParser) -> None:
        info = activity.info()
        if info.workflow_id is None:  # run outside a workflow (ActivityEnvironment)
            return
        handle = activity.client().get_workflow_handle(info.workflow_id)
        with contextlib.suppress(Exception):  # progress is best effort; the step goes on
            await handle.signal("step_progress", StepProgress(
                index=step.index, percent=round(parser.percent, 1), speed=parser.speed,
            ))

    async def _run(self, argv: list[str], step: PlanStep, scratch: Path) -> ProgressParser:
        parser = ProgressParser(expected_seconds=step.expected_seconds)
        stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        argv, preexec = tied_to_worker(lowered(argv))
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=scratch, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True, preexec_fn=preexec,
        )

        async def drain_stderr() -> None:
            assert proc.stderr is not None
            async for raw in proc.stderr:
                stderr_tail.append(raw.decode(errors="replace").rstrip())

        stderr_task = asyncio.create_task(drain_stderr())
        started = last_signal = last_beat = time.monotonic()
        try:
            assert proc.stdout is not None
            while raw := await self._next_line(proc.stdout):
                if not parser.feed(raw.decode(errors="replace")):
                    continue
                now = time.monotonic()
                # not at the end (the step completes right after, or the keepalive beats
                # through the probe and the upload)
                if now - last_beat >= HEARTBEAT_EVERY and not parser.ended:
                    activity.heartbeat({"percent": parser.percent, "speed": parser.speed})
                    last_beat = now
                # the gap grows with the elapsed time: a few hundred signals even for an
                # hours-long encode, far below Temporal's history limits
                if now - last_signal >= max(1.0, (now - started) / 50):
                    await self._signal_progress(step, parser)
                    last_signal = now
            returncode = await proc.wait()
            await stderr_task
        except BaseException:
            _kill_group(proc.pid)
            await proc.wait()
            stderr_task.cancel()
            raise
        if returncode != 0:
            raise classify_failure(returncode, scrub("\n".join(stderr_tail), scratch, step))
        return parser

    async def _next_line(self, stream: asyncio.StreamReader) -> bytes:
        """The next ``-progress`` line; a silent ffmpeg (hung on an input, a runaway
        filter) is a failure here rather than an orphan that outlives its heartbeat."""
        try:
            return await asyncio.wait_for(stream.readline(), self.stall_seconds)
        except TimeoutError:
            raise ApplicationError(
                f"ffmpeg made no progress for {self.stall_seconds:.0f} s and was killed",
                type="FFmpegStalled",
            ) from None

    async def _run_variants(
        self, step: PlanStep, paths: dict[str, str], scratch: Path
    ) -> tuple[ProgressParser, str, list[str]]:
        """Run the first variant that the machine can decode with; a missing or broken GPU
        falls back to CPU decoding instead of failing the job."""
        variants = self._variants(step)
        self.running += 1
        try:
            for position, (decoder, template) in enumerate(variants):
                argv = with_threads(replace(step, argv=template).render(paths),
                                    self.threads_per_run())
                try:
                    with metrics.ffmpeg_running(self.pool):
                        parser = await self._run([ffmpeg_path(), *argv[1:]], step, scratch)
                except ApplicationError as exc:
                    if exc.type != "HwaccelUnavailable" or position == len(variants) - 1:
                        raise
                    activity.logger.warning("NVDEC unavailable, decoding on the CPU: %s", exc)
                    continue
                return parser, decoder, template
        finally:
            self.running -= 1
        raise AssertionError("unreachable: the CPU variant always exists")

    def threads_per_run(self) -> int:
        """Encoder threads for the run starting now (docs/OPERATIONS.md, "Worker slots"):
        ``MEDIAFLOW_FFMPEG_THREADS`` when set, else the cores shared among the runs of
        this worker in flight — one run alone gets every core, two side by side half each."""
        if self.settings.ffmpeg_threads:
            return self.settings.ffmpeg_threads
        return max(1, (os.cpu_count() or 1) // max(1, self.running))

    @activity.defn(name="run_ffmpeg_step")
    async def run_ffmpeg_step(self, request: StepInput) -> StepResult:
        began = dt.datetime.now(dt.UTC)
        if request.finalize is not None and activity.info().attempt > 1:
            published = await already_published(request.job_id)
            if published is not None:  # an earlier attempt published, then went unheard
                return self._published_before(request, published)
        result = await self._logged(request, await self._attempt(request), began)
        return await self._published(request, result)

    def _published_before(self, request: StepInput, published: list[str]) -> StepResult:
        """The result of a last step whose earlier attempt published the job's outputs (and
        logged its success) but was not heard of: running ffmpeg again would overwrite
        bytes that are already the user's files."""
        step = request.step
        return StepResult(index=step.index, step_id=step.step_id,
                          storage_key=output_key(request.job_id, step), size=0, sha256="",
                          metadata={}, attempt=activity.info().attempt, pool=self.pool,
                          logged=True, published=published)

    async def _logged(self, request: StepInput, result: StepResult,
                      began: dt.datetime) -> StepResult:
        """The result, once this step's success row is in the operation log: written here,
        it spares the workflow a round trip (``StepResult.logged``). A database that fails
        now is no reason to run ffmpeg again: the workflow writes the row instead."""
        step = request.step
        record = OperationRecord(
            job_id=request.job_id, step=step.index, step_id=step.step_id,
            operation_type=step.op, pool=result.pool, success=True, attempt=result.attempt,
            duration=result.wall_seconds, speed=result.speed,
            argv=list(result.argv or step.argv), started_at=began.isoformat(),
            decoder=result.decoder)
        try:
            await save_operation(record)
        except Exception:  # noqa: BLE001 - the workflow's own write retries for 30 minutes
            activity.logger.warning("step %s: no operation log row written; the workflow "
                                    "writes it", step.index, exc_info=True)
            return result
        return replace(result, logged=True)

    async def _published(self, request: StepInput, result: StepResult) -> StepResult:
        """For a job's last step (``StepInput.finalize``): the result once the job's outputs
        are the user's files and the job is completed, which spares the workflow a
        ``finalize_job`` round trip (``StepResult.published``). Publishing runs to its end
        even if the job's cancel reaches it meanwhile. A database that fails now is no reason
        to run ffmpeg again: the workflow's ``finalize_job`` publishes instead."""
        final = request.finalize
        if final is None:
            return result
        step = request.step
        final = replace(
            final, kept=[*final.kept, result] if step.keep_output else final.kept,
            intermediate_keys=final.intermediate_keys if step.keep_output
            else [*final.intermediate_keys, result.storage_key],
            retry_count=final.retry_count + result.attempt - 1,
            progress={**final.progress, "speed": result.speed})
        try:
            published = await finish_despite_cancel(publish_outputs(self.storage, final))
        except Exception:  # noqa: BLE001 - finalize_job retries for 30 minutes
            activity.logger.warning("step %s: the job's outputs not published; the workflow "
                                    "publishes them", step.index, exc_info=True)
            return result
        return replace(result, published=published)

    async def _attempt(self, request: StepInput) -> StepResult:
        info = activity.info()
        step = request.step
        job_scratch = self.settings.scratch_root / request.job_id
        for stale in job_scratch.glob(f"{step.index:02d}-a*"):  # a killed worker's attempt
            shutil.rmtree(stale, ignore_errors=True)
        scratch = job_scratch / f"{step.index:02d}-a{info.attempt}"
        scratch.mkdir(parents=True)
        started = time.monotonic()
        # no heartbeat at the start: the heartbeat timeout runs from the start anyway, and a
        # step shorter than a second would spend a round trip (and a write in Temporal) on
        # it. Downloads, the output probe and uploads print no progress: keep the heartbeat
        # (and with it cancellation) flowing through them; ffmpeg's silence is the watchdog's
        keepalive = asyncio.create_task(_keep_heartbeating(self.keepalive_seconds))
        observed = metrics.StepAttempt(step.op, self.pool)
        try:
            file_ids = [s.file_id for s in step.sources if s.file_id]
            inputs = await live_inputs(request.user_id, file_ids)
            paths = await self._materialise(request, scratch, inputs)
            if step.is_directory_output:
                (scratch / step.output_name).mkdir()
            parser, decoder, template = await self._run_variants(step, paths, scratch)
            out = scratch / step.output_name
            if step.is_directory_output:
                result = await self._store_directory(request, out)
                observed.succeeded(decoder, parser.speed)
                return replace(result, attempt=info.attempt, speed=parser.speed,
                               wall_seconds=round(time.monotonic() - started, 3),
                               pool=self.pool, argv=template, decoder=decoder)
            if not await anyio.Path(out).exists() or (await anyio.Path(out).stat()).st_size == 0:
                raise ApplicationError("ffmpeg produced no output", type="InvalidMedia",
                                       non_retryable=True)
            try:
                probe = await probe_file(out, settings=self.settings)
            except MediaRejected as exc:
                raise ApplicationError(f"ffmpeg's output is not valid media: {exc.reason}",
                                       type="InvalidMedia", non_retryable=True) from exc
            key = output_key(request.job_id, step)
            stored = await self.storage.adopt_file(key, out, content_type=probe.content_type)
            wall = time.monotonic() - started
            observed.succeeded(decoder, parser.speed)
            return StepResult(
                index=step.index, step_id=step.step_id, storage_key=key, size=stored.size,
                sha256=stored.sha256, metadata=probe.metadata, attempt=info.attempt,
                wall_seconds=round(wall, 3), speed=parser.speed, pool=self.pool,
                argv=template, decoder=decoder, kind=probe.kind,
                content_type=probe.content_type,
                probe=probe.raw or {},
            )
        except BaseException as exc:
            observed.failed(exc)
            raise
        finally:
            observed.ended()
            keepalive.cancel()
            shutil.rmtree(scratch, ignore_errors=True)
            with contextlib.suppress(OSError):
                scratch.parent.rmdir()  # the job's scratch root, once empty


    async def _store_directory(self, request: StepInput, out: Path) -> StepResult:
        """Store every member of a directory output, then its member list; the result's
        ``storage_key`` is the package's key, ``sha256`` hashes the list of member hashes."""
        step = request.step
        for name, content in step.output_extras.items():
            if not valid_member_path(name):
                raise ApplicationError(f"bad member name {name!r}", type="InvalidParams",
                                       non_retryable=True)
            (out / name).write_text(content, encoding="utf-8")
        finish_package(out, step.output_entry)
        files = sorted(path for path in out.rglob("*") if path.is_file())
        names = [path.relative_to(out).as_posix() for path in files]
        bad = [name for name in names if not valid_member_path(name)]
        if bad or not files or step.output_entry not in names:
            raise ApplicationError(
                f"ffmpeg's output is not the expected package (entry {step.output_entry!r}, "
                f"{len(files)} files{', unexpected ' + bad[0] if bad else ''})",
                type="InvalidMedia", non_retryable=True)
        key = output_key(request.job_id, step)
        await self.storage.delete_tree(key)  # a retried attempt leaves no stale member
        members: list[dict[str, str | int]] = []
        digest, total = hashlib.sha256(), 0
        try:
            for path, name in zip(files, names, strict=True):
                stored = await self.storage.adopt_file(member_key(key, name), path,
                                                       content_type=content_type_for(name))
                members.append({"path": name, "size": stored.size})
                total += stored.size
                digest.update(f"{name}\t{stored.size}\t{stored.sha256}\n".encode())
            await self.storage.put_stream(index_key(key), _one_chunk(dump_index(members)),
                                          content_type="application/json")
        except BaseException:
            # cancelled or failed half-way: the workflow never learns this key, so no
            # member may stay behind
            with anyio.CancelScope(shield=True):
                await self.storage.delete_tree(key)
            raise
        metadata = {**step.output_metadata, "entry": step.output_entry,
                    "member_count": len(members)}
        return StepResult(
            index=step.index, step_id=step.step_id, storage_key=key,
            size=total, sha256=digest.hexdigest(),
            metadata=metadata, kind=PACKAGE_KIND, content_type=PACKAGE_CONTENT_TYPE)


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _keep_heartbeating(every: float) -> None:
    while True:
        await asyncio.sleep(every)
        activity.heartbeat()


_LIBC = ctypes.CDLL("libc.so.6", use_errno=True) if sys.platform == "linux" else None
PR_SET_PDEATHSIG = 1


def _die_with_worker() -> None:
    """In the child before exec: a SIGKILLed worker takes its ffmpeg down too."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@functools.cache
def setpriv_path() -> str | None:
    """util-linux's ``setpriv`` if it can set the parent-death signal (2.33 and later)."""
    path = shutil.which("setpriv")
    if path is None:
        return None
    try:
        usage = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=5,
                               check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return path if "--pdeathsig" in usage else None


@functools.cache
def nice_path() -> str | None:
    return shutil.which("nice")


def lowered(argv: list[str]) -> list[str]:
    """``argv`` run :data:`FFMPEG_NICENESS` steps nicer than the worker, by coreutils'
    ``nice``, which execs it (same pid); as it is where ``nice`` is missing."""
    nice = nice_path()
    return [nice, "-n", str(FFMPEG_NICENESS), "--", *argv] if nice else argv


def tied_to_worker(argv: list[str]) -> tuple[list[str], Callable[[], None] | None]:
    """The argv and ``preexec_fn`` that make a SIGKILLed worker take its ffmpeg down too.

    ``setpriv --pdeathsig KILL`` sets the parent-death signal and then execs ffmpeg (same
    pid, same process group). Without a ``preexec_fn`` Python starts the child with vfork
    instead of copying the worker with fork and running Python code in the copy: 1 ms
    instead of 5–8 ms per run, measured in a worker serving one-step jobs. Where
    ``setpriv`` is missing, the prctl runs in a ``preexec_fn`` as before."""
    setpriv = setpriv_path()
    if setpriv is None:
        return argv, _die_with_worker
    return [setpriv, "--pdeathsig", "KILL", "--", *argv], None


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
