"""Tiny real media made with ffmpeg once per session, and a spy on the tools probe runs."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from core import probe
from core.config import Settings
from tests.utils.media import FFMPEG, make_audio, make_png, make_video

TESTSRC = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"]

# Media the shared helpers do not make: name -> ffmpeg arguments before the output path.
RECIPES: dict[str, list[str]] = {
    "image.jpg": [*TESTSRC, "-frames:v", "1"],
    "image.gif": [*TESTSRC, "-frames:v", "1"],
    "video.nut": [*TESTSRC, "-t", "0.2", "-c:v", "mpeg4"],  # a demuxer outside the allowlist
    "noise.png": ["-f", "lavfi", "-i", "nullsrc=s=128x128,geq=random(1)*255:128:128",
                  "-frames:v", "1"],
    "streams20.mkv": [*TESTSRC, "-t", "0.2", *["-map", "0:v"] * 20, "-c:v", "mpeg4"],
    "fps1000.mkv": ["-f", "lavfi", "-i", "testsrc2=size=64x48:rate=1000", "-t", "0.02",
                    "-c:v", "mpeg4"],
}  # fmt: skip


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("media")
    paths = {
        "video.mp4": make_video(folder / "video.mp4", seconds=1),
        "image.png": make_png(folder / "image.png", size="320x240"),
        **{
            name: make_audio(folder / name, seconds=1)
            for name in ("audio.wav", "audio.mp3", "audio.m4a")
        },
    }
    for name, args in RECIPES.items():
        paths[name] = folder / name
        subprocess.run([*FFMPEG, *args, str(paths[name])], check=True)
    paths["cover.mp3"] = folder / "cover.mp3"  # mp3 with a JPEG cover (an attached picture)
    subprocess.run(
        [*FFMPEG, "-i", str(paths["audio.mp3"]), "-i", str(paths["image.jpg"]),
         "-map", "0", "-map", "1", "-c", "copy", "-disposition:v", "attached_pic",
         str(paths["cover.mp3"])],
        check=True,
    )  # fmt: skip
    return paths


@pytest.fixture
def probe_settings() -> Settings:
    """Default limits (the suite's ``settings`` fixture needs PostgreSQL and Temporal)."""
    return Settings(_env_file=None, env="test")


@pytest.fixture
def tool_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The argv of every ffprobe/ffmpeg run that probe starts (the tools still run)."""
    calls: list[list[str]] = []
    real_run = probe._run_tool

    async def spy(argv: list[str], timeout: float, **options: Any) -> Any:
        calls.append(argv)
        return await real_run(argv, timeout, **options)

    monkeypatch.setattr(probe, "_run_tool", spy)
    return calls
