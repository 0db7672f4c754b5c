"""Overhead of mediaflow over bare ffmpeg (issue: target ≤ 1.10, goal ≤ 1.03).

text_overlay on a 20 s 1280x720 clip through the API (submit → completed, as a
client sees it) versus the same compiled argv run by bare ffmpeg, alternating,
in one run. Prints each pair and the median ratio.

    .venv/bin/python -m bench.overhead [--rounds 3] [--seconds 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from bench.harness import bare_ffmpeg_seconds, make_clip, running_stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    media = Path(tempfile.mkdtemp(prefix="bench-media-"))
    clip = make_clip(media / "clip720p.mp4", args.seconds)
    with running_stack() as stack:
        file_id = stack.upload(clip)
        spec = {"type": "text_overlay",
                "params": {"video": file_id, "text": "mediaflow overhead", "box": True},
                "output": {"preset": "veryfast"}}
        stack.run_job(spec)  # warm-up: worker imports, caches
        bare_ffmpeg_seconds(spec, {file_id: clip}, stack.work)
        ratios = []
        print(f"{'round':>5} {'api s':>8} {'bare s':>8} {'ratio':>7}")
        for round_ in range(1, args.rounds + 1):
            api_seconds, _ = stack.run_job(spec)
            bare = bare_ffmpeg_seconds(spec, {file_id: clip}, stack.work)
            ratios.append(api_seconds / bare)
            print(f"{round_:>5} {api_seconds:>8.2f} {bare:>8.2f} {ratios[-1]:>7.3f}")
    print(f"median job wall time / bare ffmpeg time: {statistics.median(ratios):.3f} "
          f"(target <= 1.10, goal <= 1.03)")


if __name__ == "__main__":
    main()
