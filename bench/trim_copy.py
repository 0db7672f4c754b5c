"""trim on keyframes (stream copy) versus frame-exact (re-encode): the middle 30 s of a
60 s 1280x720 clip, both through the API in one run (issue target: copy ÷ accurate
≤ 0.05 of the job wall time).

    .venv/bin/python -m bench.trim_copy [--rounds 2] [--seconds 60]
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

from bench.harness import bench_main, ffmpeg_seconds, make_clip, running_stack


def run(args: argparse.Namespace, media: Path) -> None:
    clip = make_clip(media / "clip720p.mp4", args.seconds)
    quarter = args.seconds / 4
    with running_stack() as stack:
        file_id = stack.upload(clip)
        window = {"input": file_id, "start": quarter, "end": args.seconds - quarter}
        copy = {"type": "trim", "params": {**window, "accurate": False}}
        accurate = {"type": "trim", "params": window, "output": {"preset": "veryfast"}}
        stack.run_job(copy)  # warm-up
        ratios, ffmpeg_ratios = [], []
        print(f"{'round':>5} {'copy s':>8} {'accurate s':>11} {'ratio':>7} "
              f"{'ffmpeg copy s':>14} {'ffmpeg accurate s':>18}")
        for round_ in range(1, args.rounds + 1):
            copy_wall, copy_job = stack.run_job(copy)
            accurate_wall, accurate_job = stack.run_job(accurate)
            copy_ff, accurate_ff = ffmpeg_seconds(stack, copy_job), ffmpeg_seconds(
                stack, accurate_job)
            ratios.append(copy_wall / accurate_wall)
            ffmpeg_ratios.append(copy_ff / accurate_ff)
            print(f"{round_:>5} {copy_wall:>8.2f} {accurate_wall:>11.2f} {ratios[-1]:>7.3f} "
                  f"{copy_ff:>14.2f} {accurate_ff:>18.2f}")
    print(f"{args.seconds / 2:g} s of 1280x720 cut from {args.seconds:g} s, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"median keyframe copy / accurate re-encode, job wall: "
          f"{statistics.median(ratios):.3f} (target <= 0.05); ffmpeg steps only: "
          f"{statistics.median(ffmpeg_ratios):.3f}")


def main() -> None:
    bench_main(__doc__, run, rounds=2, seconds=60.0)


if __name__ == "__main__":
    main()
