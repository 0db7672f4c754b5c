"""join of 4 compatible 15 s 720p clips by stream copy, against bare ffmpeg and against a
re-encoding join, in one run.

* job wall as the client sees it (``mode: auto`` → stream copy) ÷ bare
  ``ffmpeg -f concat -c copy`` of the same files: target ≤ 2.0;
* ``reencode`` ÷ ``auto``: target ≥ 20×.

    .venv/bin/python -m bench.join_copy [--rounds 3] [--seconds 15]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from pathlib import Path

from bench.harness import FFMPEG, bench_main, make_clip, run_quietly, running_stack


def bare_concat_seconds(clips: list[Path], work: Path) -> float:
    listing = work / f"list-{uuid.uuid4().hex}.txt"
    listing.write_text("".join(f"file '{clip}'\n" for clip in clips))
    started = time.perf_counter()
    run_quietly([*FFMPEG, "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy",
                 str(work / f"joined-{uuid.uuid4().hex}.mp4")])
    return time.perf_counter() - started


def measure(media: Path, rounds: int = 3, seconds: float = 15,
            verbose: bool = False) -> dict[str, float]:
    clips = [make_clip(media / f"clip{i}.mp4", seconds, frequency=300 + 100 * i)
             for i in range(4)]
    ratios, speedups = [], []
    with running_stack() as stack:
        ids = [stack.upload(clip) for clip in clips]
        auto = {"type": "join", "params": {"inputs": ids, "mode": "auto"}}
        reencode = {"type": "join", "params": {"inputs": ids, "mode": "reencode"},
                    "output": {"preset": "veryfast"}}
        stack.run_job_client(auto)  # warm-up
        for round_ in range(1, rounds + 1):
            copy_seconds, _ = stack.run_job_client(auto)
            bare = bare_concat_seconds(clips, media)
            ratios.append(copy_seconds / bare)
            if round_ == 1:
                reencode_seconds, _ = stack.run_job_client(reencode)
                speedups.append(reencode_seconds / copy_seconds)
            if verbose:
                print(f"round {round_}: job {copy_seconds:.2f} s, bare concat {bare:.2f} s")
    return {"join_copy_ratio": statistics.median(ratios),
            "join_reencode_speedup": statistics.median(speedups)}


def report(args: argparse.Namespace, media: Path) -> None:
    result = measure(media, args.rounds, args.seconds, verbose=True)
    print(f"join (copy) job ÷ bare concat: {result['join_copy_ratio']:.2f} (target <= 2.0); "
          f"reencode ÷ auto: {result['join_reencode_speedup']:.0f}x (target >= 20x)")


if __name__ == "__main__":
    bench_main(__doc__, report, rounds=3, seconds=15.0)
