"""join of 4 compatible 15 s 720p clips: mode auto (stream copy) versus reencode
(issue target: auto ≥ 20× faster), both through the API in one run.

    .venv/bin/python -m bench.join_copy [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from bench.harness import make_clip, running_stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()
    media = Path(tempfile.mkdtemp(prefix="bench-media-"))
    clips = [make_clip(media / f"clip{i}.mp4", args.seconds, frequency=300 + 100 * i)
             for i in range(4)]
    with running_stack() as stack:
        ids = [stack.upload(clip) for clip in clips]
        auto = {"type": "join", "params": {"inputs": ids, "mode": "auto"}}
        reencode = {"type": "join", "params": {"inputs": ids, "mode": "reencode"},
                    "output": {"preset": "veryfast"}}
        stack.run_job(auto)  # warm-up
        speedups = []
        print(f"{'round':>5} {'auto s':>8} {'reencode s':>11} {'speed-up':>9}")
        for round_ in range(1, args.rounds + 1):
            copy_seconds, job = stack.run_job(auto)
            reencode_seconds, _ = stack.run_job(reencode)
            speedups.append(reencode_seconds / copy_seconds)
            print(f"{round_:>5} {copy_seconds:>8.2f} {reencode_seconds:>11.2f} "
                  f"{speedups[-1]:>9.1f}")
    print(f"median speed-up of auto (stream copy) over reencode: "
          f"{statistics.median(speedups):.1f}x (target >= 20x)")


if __name__ == "__main__":
    main()
