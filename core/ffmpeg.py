"""Where the ffmpeg binaries are, and whether they work."""

from __future__ import annotations

import asyncio
import functools
import re
import shutil
import subprocess


class FFmpegMissing(RuntimeError):
    pass


def ffmpeg_path() -> str:
    path = shutil.which("ffmpeg")
    if not path:
        raise FFmpegMissing("ffmpeg is not installed")
    return path


def ffprobe_path() -> str:
    path = shutil.which("ffprobe")
    if not path:
        raise FFmpegMissing("ffprobe is not installed")
    return path


async def ffmpeg_version(timeout: float = 5.0) -> str:
    """First line of ``ffmpeg -version``; raises FFmpegMissing when it cannot run."""
    ffprobe_path()
    proc = await asyncio.create_subprocess_exec(
        ffmpeg_path(), "-hide_banner", "-version",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError as exc:
        proc.kill()
        await proc.wait()
        raise FFmpegMissing("ffmpeg -version timed out") from exc
    if proc.returncode != 0:
        raise FFmpegMissing(f"ffmpeg -version exited {proc.returncode}")
    return out.decode(errors="replace").splitlines()[0]


_ENCODER_LINE = re.compile(r"^\s*[VAS][A-Z.]{5}\s+(\S+)")


def parse_encoders(listing: str) -> frozenset[str]:
    """Encoder names from ``ffmpeg -hide_banner -encoders`` (the lines after ``------``)."""
    _, _, table = listing.partition("------")
    return frozenset(match.group(1) for line in table.splitlines()
                     if (match := _ENCODER_LINE.match(line)))


@functools.cache
def available_encoders() -> frozenset[str]:
    """The encoders this machine's ffmpeg has, asked once per process (the plan compiler
    refuses a codec whose encoder is missing; an unusable ffmpeg leaves the set empty and
    the check to the health route)."""
    try:
        result = subprocess.run([ffmpeg_path(), "-hide_banner", "-encoders"],
                                capture_output=True, text=True, timeout=10, check=True)
    except (FFmpegMissing, OSError, subprocess.SubprocessError):
        return frozenset()
    return parse_encoders(result.stdout)


async def encoders() -> frozenset[str]:
    """:func:`available_encoders` from a coroutine: ffmpeg runs in a thread the first time,
    later calls answer from the cache without a hop to a thread and back (a tenth of
    ``POST /jobs``'s own time in the API went to thread pool hand-offs)."""
    if available_encoders.cache_info().currsize:
        return available_encoders()
    return await asyncio.to_thread(available_encoders)
