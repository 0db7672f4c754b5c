"""Where the ffmpeg binaries are, and whether they work."""

from __future__ import annotations

import asyncio
import shutil


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
