"""bench/gpu_decode.py runs without our venv, so it carries its own copy of the worker's
argv; these tests keep that copy equal to what the compiler and the worker produce."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from activities.ffmpeg import HWACCEL_MARKERS, with_threads
from bench import gpu_decode, gpu_render
from core.plan import MediaInfo, compile_plan, gpu_argv_variant
from core.spec import JobSpec
from tests.plan.conftest import ffprobe, generate

REPO = Path(__file__).resolve().parents[2]


def reencode(file_id: str, media: dict[str, MediaInfo]):
    """The step of a re-encoding transcode with the default output (what a user gets)."""
    spec = JobSpec.model_validate({"type": "transcode",
                                   "params": {"input": file_id, "mode": "reencode"},
                                   "output": {}})
    plan = compile_plan(spec, media)
    assert len(plan.steps) == 1
    return plan.steps[0]


@pytest.fixture(scope="module")
def hevc_media(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, MediaInfo]]:
    path = generate(tmp_path_factory.mktemp("hevc") / "hevc.mp4", "-f", "lavfi", "-i",
                    "testsrc2=size=320x240:rate=30", "-t", "0.4", "-c:v", "libx265",
                    "-preset", "ultrafast", "-x265-params", "log-level=error",
                    "-pix_fmt", "yuv420p", "-tag:v", "hvc1")
    file_id = str(uuid.uuid4())
    return file_id, {file_id: MediaInfo.from_ffprobe(ffprobe(path))}


@pytest.mark.parametrize("codec", ["h264", "hevc"])
def test_bench_argv_is_the_workers(library, hevc_media, codec: str) -> None:
    if codec == "h264":  # the bench's clips are silent 1080p30 mp4, as this one (smaller)
        file_id, media = library["wide_silent"], library.media
    else:
        file_id, media = hevc_media
    step = reencode(file_id, media)
    assert step.gpu_capable
    assert step.argv == gpu_decode.WORKER_TRANSCODE
    assert step.video_inputs == gpu_decode.WORKER_VIDEO_INPUTS
    templates = gpu_decode.row_templates()
    assert templates["transcode_cpu"] == step.argv
    assert templates["transcode_nvdec"] == gpu_argv_variant(step)
    assert templates["decode_nvdec"][:-3] == gpu_argv_variant(step)[
        :gpu_argv_variant(step).index("-map") + 2]
    assert templates["decode_cpu"][-3:] == templates["decode_nvdec"][-3:] == ["-f", "null", "-"]


def test_nvdec_variant_matches_on_other_steps(library, job) -> None:
    """The bench's copy of gpu_argv_variant, on steps with several inputs."""
    specs = [
        job("video_overlay", {"video": library["clip2s"], "overlay": library["logo"]}),
        job("join", {"inputs": [library["clip2s"], library["wide_silent"]]}),
        job("text_overlay", {"video": library["clip2s"], "text": "x"}),
    ]
    for spec in specs:
        step = compile_plan(spec, library.media).steps[0]
        assert step.gpu_capable
        assert gpu_decode.nvdec_variant(step.argv, step.video_inputs) == gpu_argv_variant(step)


def test_threads_and_markers_follow_the_worker() -> None:
    argv = gpu_decode.render(gpu_decode.WORKER_TRANSCODE, {"in0": "/s/in0.mp4",
                                                           "out": "/s/out.mp4"})
    assert argv[argv.index("-i") + 1] == "/s/in0.mp4" and argv[-1] == "/s/out.mp4"
    assert gpu_decode.with_threads(argv, 16) == with_threads(argv, 16)
    assert gpu_decode.HWACCEL_MARKERS == HWACCEL_MARKERS


def test_markdown_renders_measured_and_unavailable_rows() -> None:
    row = {"walls": [1.0, 1.1, 0.9], "runs": 3, "median": 1.0, "fps": 300.0, "frames": 300}
    results = {
        "started": "2026-01-01T00:00:00+00:00",
        "host": {"cpus": 16, "cpu_model": "Xeon", "glibc": "glibc 2.39"},
        "gpu": {"gpus": ["GPU 0: NVIDIA H100 80GB HBM3"]},
        "ffmpeg": {"version": "ffmpeg version 5.1.9"},
        "clip": {"width": 1920, "height": 1080, "fps": 30, "seconds": 10.0, "source": "x",
                 "codecs": {"h264": {"mbps": 8.0}, "hevc": {"mbps": 5.0}}},
        "nvdec": {"verify": {
            "h264": {"ok": True, "filter_input_pixfmt": "nv12", "decoder_util_max": 40.0},
            "hevc": {"ok": False, "error_summary": "exit 1: Cannot load libnvcuvid.so.1"}}},
        "configs": [{"name": "all 16 cores", "codecs": {
            "h264": {"rows": {"transcode_cpu": row,
                              "transcode_nvdec": {**row, "median": 0.8, "decoder_util_max": 35},
                              "decode_cpu": {**row, "median": 0.5},
                              "decode_nvdec": {**row, "median": 0.25}},
                     "ratios": {"transcode_nvdec_over_cpu": 0.8, "decode_speedup_nvdec": 2.0,
                                "decode_share_of_cpu_transcode": 0.5}},
            "hevc": {"rows": {"transcode_cpu": row,
                              "transcode_nvdec": {"unavailable": "exit 1: no"}},
                     "ratios": {"transcode_nvdec_over_cpu": None,
                                "decode_speedup_nvdec": None,
                                "decode_share_of_cpu_transcode": None}}}}],
        "notes": ["4 of 16 cores hevc: skipped"],
    }
    text = gpu_render.markdown(results)
    assert text.startswith("## GPU decode (NVDEC) on real hardware\n")
    assert "NVIDIA H100" in text and "`nv12`" in text and "up to 40 %" in text
    assert "**0.80** (20 % faster with NVDEC)" in text and "**2.00×**" in text
    assert "**unavailable**: `exit 1: Cannot load libnvcuvid.so.1`" in text
    assert "| all 16 cores | hevc | transcode, NVDEC decode | n/a | | |" in text
    assert "note: 4 of 16 cores hevc: skipped" in text


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_bench_runs_without_the_venv(tmp_path: Path) -> None:
    """The script under a plain interpreter (-I: no site packages, no repo on sys.path),
    on a short clip: CPU rows measured; NVDEC rows measured or marked unavailable."""
    out = tmp_path / "gpu.json"
    env = {k: v for k, v in os.environ.items() if k != "FFMPEG"}
    done = subprocess.run(
        [sys.executable, "-I", str(REPO / "bench/gpu_decode.py"), "--seconds", "0.4",
         "--codecs", "h264", "--repeats", "1", "--threads", "all",
         "--out", str(out), "--markdown", str(tmp_path / "gpu.md")],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads(out.read_text())
    rows = results["configs"][0]["codecs"]["h264"]["rows"]
    assert rows["transcode_cpu"]["median"] > 0 and rows["decode_cpu"]["median"] > 0
    assert rows["transcode_cpu"]["frames"] == 12
    if not results["nvdec"]["available"]["h264"]:
        assert rows["decode_nvdec"]["unavailable"]
        assert results["nvdec"]["verify"]["h264"]["error_summary"]
    assert (tmp_path / "gpu.md").read_text().startswith("## GPU decode (NVDEC)")
