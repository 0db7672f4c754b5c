"""A burst of tiny jobs, and the fixed cost of one job, against bare ffmpeg.

* Burst: 100 text_overlay jobs on a 2 s 320x240 clip, submitted by 8 concurrent clients;
  the wall time from the first submit to the last terminal event, against the same 100
  ffmpeg commands (the argv the jobs run, compiled by the same compiler) under
  ``xargs -P2``. Target: ≤ 1.3.
* Where the CPU of the burst goes, per job: ffmpeg + ffprobe, the worker, the Temporal
  dev server, the API, this bench's clients, and the whole machine.
* Fixed cost: one such job at a time, its wall time as the client sees it (submit →
  terminal event) minus the bare ffmpeg run of the same argv, median of ``--single``
  rounds. Target: ≤ 0.15 s.

    .venv/bin/python -m bench.burst [--jobs 100] [--clients 8] [--single 20]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.harness import (
    Stack,
    bench_main,
    compiled_argv,
    cpu_per_job,
    machine_busy,
    make_clip,
    running_stack,
    stack_cpu,
)

EXTRA = {"MEDIAFLOW_RATE_LIMIT_REQUESTS": "10000000/minute",
         "MEDIAFLOW_MAX_ACTIVE_JOBS_PER_USER": "100000"}


def spec_for(video: str, n: int) -> dict:
    return {"type": "text_overlay", "params": {"video": video, "text": f"burst {n}"},
            "output": {"preset": "veryfast"}}


def xargs_run(spec_of: list[dict], files: dict[str, Path], work: Path) -> tuple[float, float]:
    """The jobs' ffmpeg commands, two at a time, as ``xargs -P2`` runs them: the wall
    seconds, and the CPU seconds the machine used meanwhile."""
    commands = [compiled_argv(spec, files, work / f"bare-{uuid.uuid4().hex[:8]}")
                for spec in spec_of]
    width = len(commands[0]) - 1  # xargs is given the program, then each run's arguments
    assert all(len(argv) == width + 1 and argv[0] == "ffmpeg" for argv in commands)
    listing = b"".join(arg.encode() + b"\0" for argv in commands for arg in argv[1:])
    started, busy = time.perf_counter(), machine_busy()
    subprocess.run(["xargs", "-0", "-P2", f"-n{width}", "ffmpeg"], input=listing, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started, machine_busy() - busy


def burst_seconds(stack: Stack, specs: list[dict], clients: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda spec: stack.clone().run_job_client(spec), specs))
    return time.perf_counter() - started


def fixed_costs(stack: Stack, video: str, files: dict[str, Path], rounds: int) -> list[float]:
    costs = []
    for n in range(rounds):
        spec = spec_for(video, n)
        job_seconds, _ = stack.run_job_client(spec)
        argv = compiled_argv(spec, files, stack.work / f"single-{n}")
        started = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        costs.append(job_seconds - (time.perf_counter() - started))
    return costs


def measure(media: Path, jobs: int = 100, clients: int = 8, single: int = 10) -> dict[str, Any]:
    clip = make_clip(media / "clip.mp4", 2, size="320x240")
    with running_stack(extra_env=EXTRA) as stack:
        video = stack.upload(clip)
        files = {video: clip}
        stack.run_job_client(spec_for(video, -1))  # warm-up
        costs = fixed_costs(stack, video, files, single)
        specs = [spec_for(video, n) for n in range(jobs)]
        before = stack_cpu(stack)
        burst = burst_seconds(stack, specs, clients)
        cpu = cpu_per_job(before, stack_cpu(stack), jobs)
        bare, bare_cpu = xargs_run(specs, files, stack.work)
    return {"burst_seconds": burst, "xargs_seconds": bare, "burst_ratio": burst / bare,
            "fixed_cost_median": statistics.median(costs), "cpu": cpu,
            "xargs_cpu": bare_cpu / jobs}


def report(args: argparse.Namespace, media: Path) -> None:
    result = measure(media, args.jobs, args.clients, args.single)
    print(f"{args.jobs} jobs from {args.clients} clients: {result['burst_seconds']:.1f} s; "
          f"xargs -P2: {result['xargs_seconds']:.1f} s; ratio {result['burst_ratio']:.2f} "
          "(target <= 1.3)")
    print(f"CPU s per job in the burst: {result['cpu']}; under xargs: machine "
          f"{result['xargs_cpu']:.3f}")
    print(f"fixed cost per job (client wall - bare ffmpeg), median: "
          f"{result['fixed_cost_median']:.3f} s (target <= 0.15)")


if __name__ == "__main__":
    bench_main(__doc__, report, jobs=100, clients=8, single=20)
