"""Tiny generated media, probed once per session, and a runner that executes a Plan.

The runner does what the real activity must do (the placeholder convention of
``core.plan.model``): one scratch directory per step, inputs placed under the names the plan
chose, scratch files written, argv rendered, ffmpeg run without a shell.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from core.packages import finish_package
from core.plan import MediaInfo, Plan
from core.spec import JobSpec

LAVFI_VIDEO = "testsrc2=size=320x240:rate=25"
TEST_OUTPUT = {"preset": "ultrafast"}


def ffprobe(path: Path | str) -> dict[str, Any]:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
         str(path)],
        capture_output=True, text=True, check=True, timeout=30,
    )
    return json.loads(result.stdout)


def generate(path: Path, *args: str) -> Path:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args, str(path)],
                   check=True, timeout=60)
    return path


@dataclass
class Probed:
    """An ffprobe result with the accessors tests need."""

    data: dict[str, Any]

    @property
    def duration(self) -> float:
        return float(self.data["format"]["duration"])

    def streams(self, codec_type: str) -> list[dict[str, Any]]:
        return [s for s in self.data["streams"] if s["codec_type"] == codec_type]

    @property
    def layout(self) -> list[str]:
        return [s["codec_type"] for s in self.data["streams"]]


@dataclass
class MediaLibrary:
    """Generated files by name, with file ids and probe data, and a Plan runner."""

    root: Path
    paths: dict[str, Path] = field(default_factory=dict)  # file id -> path
    ids: dict[str, str] = field(default_factory=dict)  # name -> file id
    media: dict[str, MediaInfo] = field(default_factory=dict)  # file id -> MediaInfo

    def add(self, name: str, path: Path) -> str:
        file_id = str(uuid.uuid4())
        self.ids[name], self.paths[file_id] = file_id, path
        self.media[file_id] = MediaInfo.from_ffprobe(ffprobe(path))
        return file_id

    def __getitem__(self, name: str) -> str:
        return self.ids[name]

    def run(self, plan: Plan, workdir: Path) -> dict[str, Path]:
        """Run every step in order; returns each step's output path by step id."""
        outputs: dict[str, Path] = {}
        for step in plan.steps:
            directory = workdir / f"step{step.index}"
            directory.mkdir(parents=True)
            paths = step.paths_in(str(directory))
            for item in step.sources:
                source = (outputs[item.step_id] if item.step_id is not None
                          else self.paths[item.ref])
                os.symlink(source, paths[item.placeholder])
            for name, content in step.scratch_files.items():
                Path(paths[f"scratch:{name}"]).write_text(content, encoding="utf-8")
            if step.is_directory_output:
                Path(paths["out"]).mkdir()
            result = subprocess.run(step.render(paths), capture_output=True, text=True,
                                    timeout=120)
            assert result.returncode == 0, result.stderr[-4000:]
            assert "progress=end" in result.stdout  # -progress pipe:1 reports to stdout
            for name, content in step.output_extras.items():
                (Path(paths["out"]) / name).write_text(content, encoding="utf-8")
            if step.is_directory_output:
                finish_package(Path(paths["out"]), step.output_entry)
            outputs[step.step_id] = Path(paths["out"])
        return outputs


@pytest.fixture(scope="session")
def library(tmp_path_factory: pytest.TempPathFactory) -> MediaLibrary:
    root = tmp_path_factory.mktemp("media")
    lib = MediaLibrary(root)
    sine = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]
    x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    lib.add("clip2s", generate(root / "clip2s.mp4", "-f", "lavfi", "-i", LAVFI_VIDEO, *sine,
                               "-t", "2", *x264, "-c:a", "aac"))
    lib.add("clip1s", generate(root / "clip1s.mp4", "-f", "lavfi", "-i", LAVFI_VIDEO, *sine,
                               "-t", "1", *x264, "-c:a", "aac"))
    lib.add("wide_silent", generate(root / "wide.mp4", "-f", "lavfi", "-i",
                                    "testsrc2=size=640x360:rate=30", "-t", "1", *x264))
    lib.add("black", generate(root / "black.mp4", "-f", "lavfi", "-i",
                              "color=black:size=320x240:rate=25", *sine, "-t", "2", *x264,
                              "-c:a", "aac"))
    lib.add("tone", generate(root / "tone.mp3", "-f", "lavfi", "-i",
                             "sine=frequency=880:sample_rate=44100", "-t", "0.8",
                             "-c:a", "libmp3lame"))
    lib.add("logo", generate(root / "logo.png", "-f", "lavfi", "-i",
                             "color=red:size=64x48,format=rgba", "-frames:v", "1"))
    lib.add("small_clip", generate(root / "small.mp4", "-f", "lavfi", "-i",
                                   "color=red:size=160x120:rate=25", "-t", "0.6", *x264))
    subs = root / "subs.srt"
    subs.write_text("1\n00:00:00,000 --> 00:00:01,000\nHELLO WORLD\n\n"
                    "2\n00:00:01,000 --> 00:00:01,400\nSecond cue\n", encoding="utf-8")
    lib.add("subs", subs)
    return lib


@pytest.fixture
def job() -> Callable[..., JobSpec]:
    """``job(type, params, **output)`` → a validated JobSpec with ultrafast test output."""

    def make(job_type: str, params: dict[str, Any], **output: Any) -> JobSpec:
        return JobSpec.model_validate(
            {"type": job_type, "params": params, "output": {**TEST_OUTPUT, **output}}
        )

    return make


def gray_frame(path: Path, at: float, width: int = 320, height: int = 240) -> bytes:
    """One decoded frame at ``at`` seconds as 8-bit gray, for checking where things were drawn."""
    result = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-ss", str(at), "-i", str(path), "-frames:v", "1",
         "-f", "rawvideo", "-pix_fmt", "gray", "-"],
        capture_output=True, check=True, timeout=30,
    )
    assert len(result.stdout) == width * height
    return result.stdout


def bright_box(frame: bytes, width: int = 320, threshold: int = 100
               ) -> tuple[int, int, int, int] | None:
    """Bounding box (x0, y0, x1, y1) of pixels brighter than ``threshold``, or None."""
    xs, ys = [], []
    for index, value in enumerate(frame):
        if value > threshold:
            ys.append(index // width)
            xs.append(index % width)
    return (min(xs), min(ys), max(xs), max(ys)) if xs else None


@pytest.fixture
def probe() -> Callable[[Path], Probed]:
    return lambda path: Probed(ffprobe(path))


@pytest.fixture
def frame_box() -> Callable[..., tuple[int, int, int, int] | None]:
    """``frame_box(path, at)`` → bounding box of bright pixels in the frame at ``at`` s."""
    return lambda path, at, threshold=100: bright_box(gray_frame(path, at), threshold=threshold)
