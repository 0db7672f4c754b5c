"""100 sprite tiles from a 60 s 1280x720 clip in one thumbnails job (one decode) versus
100 separate single-frame ffmpeg calls (each seeking and decoding up to its frame), in
one run (issue target: job ÷ separate calls ≤ 0.2).

    .venv/bin/python -m bench.sprites [--seconds 60]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

from bench.harness import (
    FFMPEG,
    bare_ffmpeg_seconds,
    bench_main,
    ffmpeg_seconds,
    make_clip,
    running_stack,
)

TILES = 100
WIDTH = 160


def separate_calls(clip: Path, seconds: float, work: Path) -> float:
    """One ffmpeg per tile: seek to the frame, decode it, scale it, write a JPEG."""
    started = time.perf_counter()
    for n in range(TILES):
        at = (n + 0.5) * seconds / TILES
        subprocess.run([*FFMPEG, "-ss", f"{at:.3f}", "-i", str(clip), "-frames:v", "1",
                        "-vf", f"scale={WIDTH}:-2", str(work / f"tile-{n:03d}.jpg")],
                       check=True)
    return time.perf_counter() - started


def run(args: argparse.Namespace, media: Path) -> None:
    clip = make_clip(media / "clip720p.mp4", args.seconds)
    calls_dir = media / "calls"
    calls_dir.mkdir()
    with running_stack() as stack:
        file_id = stack.upload(clip)
        spec = {"type": "thumbnails", "params": {
            "input": file_id, "count": TILES, "width": WIDTH,
            "sprite": {"columns": 10, "rows": 10}}}
        stack.run_job({"type": "thumbnails", "params": {"input": file_id, "count": 2}})
        job_wall, job = stack.run_job(spec)
        job_ffmpeg = ffmpeg_seconds(stack, job)
        bare = bare_ffmpeg_seconds(spec, {file_id: clip}, stack.work)
        calls = separate_calls(clip, args.seconds, calls_dir)
    print(f"{TILES} tiles of {WIDTH} px from {args.seconds:g} s of 1280x720, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"thumbnails job (sprite 10x10): wall {job_wall:.2f} s, ffmpeg step "
          f"{job_ffmpeg:.2f} s; the same argv bare: {bare:.2f} s")
    print(f"{TILES} separate single-frame ffmpeg calls: {calls:.2f} s")
    print(f"job wall / separate calls = {job_wall / calls:.3f} (target <= 0.2); "
          f"bare sprite run / separate calls = {bare / calls:.3f}")


def main() -> None:
    bench_main(__doc__, run, seconds=60.0)


if __name__ == "__main__":
    main()
