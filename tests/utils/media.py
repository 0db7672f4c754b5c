"""Tiny media made with real ffmpeg for the tests (1–3 s, 320x240)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

FFMPEG = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]


def make_video(path: Path, *, seconds: float = 2.0, size: str = "320x240", rate: int = 25,
               audio: bool = True, frequency: int = 440) -> Path:
    argv = [*FFMPEG, "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}"]
    if audio:
        argv += ["-f", "lavfi", "-i", f"sine=frequency={frequency}:sample_rate=48000"]
    argv += ["-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    argv += ["-c:a", "aac", "-ac", "2"] if audio else []
    subprocess.run([*argv, str(path)], check=True)
    return path


def make_audio(path: Path, *, seconds: float = 2.0, frequency: int = 880) -> Path:
    subprocess.run([*FFMPEG, "-f", "lavfi", "-i", f"sine=frequency={frequency}:sample_rate=48000",
                    "-t", str(seconds), str(path)], check=True)
    return path


def make_png(path: Path, size: str = "64x64") -> Path:
    subprocess.run([*FFMPEG, "-f", "lavfi", "-i", f"color=c=red:s={size}", "-frames:v", "1",
                    str(path)], check=True)
    return path


SRT = "1\n00:00:00,000 --> 00:00:01,000\nHello\n\n2\n00:00:01,000 --> 00:00:02,000\nWorld\n"


def ffprobe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format",
                          "-show_streams", str(path)], check=True, capture_output=True)
    return json.loads(out.stdout)


def duration(probe: dict) -> float:
    return float(probe["format"]["duration"])


def stream_types(probe: dict) -> list[str]:
    return sorted(s["codec_type"] for s in probe["streams"])
