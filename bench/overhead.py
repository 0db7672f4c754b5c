"""Overhead of mediaflow over bare ffmpeg on one real job (target ≤ 1.05).

text_overlay on a 20 s 1280x720 clip: the job's wall time as its client sees it (sending
``POST /jobs`` → receiving the terminal event) versus the same compiled argv run by bare
ffmpeg, alternating, in one run. Prints each pair and the median ratio.

    .venv/bin/python -m bench.overhead [--rounds 3] [--seconds 20]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from pathlib import Path

from bench.harness import bench_main, compiled_argv, make_clip, run_quietly, running_stack


def measure(media: Path, rounds: int = 3, seconds: float = 20,
            verbose: bool = False) -> dict[str, float]:
    clip = make_clip(media / "clip720p.mp4", seconds)
    ratios = []
    with running_stack() as stack:
        file_id = stack.upload(clip)
        spec = {"type": "text_overlay",
                "params": {"video": file_id, "text": "mediaflow overhead", "box": True},
                "output": {"preset": "veryfast"}}
        stack.run_job_client(spec)  # warm-up: worker imports, caches
        for round_ in range(1, rounds + 1):
            job_seconds, _ = stack.run_job_client(spec)
            argv = compiled_argv(spec, {file_id: clip}, stack.work / f"bare-{uuid.uuid4().hex}")
            started = time.perf_counter()
            run_quietly(argv)
            bare = time.perf_counter() - started
            ratios.append(job_seconds / bare)
            if verbose:
                print(f"round {round_}: job {job_seconds:.2f} s, bare {bare:.2f} s, "
                      f"ratio {ratios[-1]:.3f}")
    return {"overhead_ratio": statistics.median(ratios)}


def report(args: argparse.Namespace, media: Path) -> None:
    result = measure(media, args.rounds, args.seconds, verbose=True)
    print(f"median client wall / bare ffmpeg: {result['overhead_ratio']:.3f} (target <= 1.05)")


if __name__ == "__main__":
    bench_main(__doc__, report, rounds=3, seconds=20.0)
