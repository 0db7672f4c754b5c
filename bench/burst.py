"""A burst of tiny jobs, and the fixed cost of one job, against bare ffmpeg.

* Burst: 100 text_overlay jobs on a 2 s 320x240 clip, submitted by 8 concurrent clients;
  the wall time from the first submit to the last terminal event, against the same 100
  ffmpeg commands (the argv the jobs run, compiled by the same compiler) under
  ``xargs -P2``. Target: ≤ 1.3.
* Where the CPU of the burst goes, per job: ffmpeg + ffprobe, the worker, the Temporal
  dev server, the API, this bench's clients, and the whole machine.
* Fixed cost: one such job at a time, its wall time as the client sees it (submit →
  terminal event) minus the bare ffmpeg run of the same argv, median of ``--single``
  rounds. Target: ≤ 0.15 s. And where it goes, from each job's workflow history: the
  submit, the first workflow task, the step's dispatch, the step beyond bare ffmpeg (of
  which the output's probe, timed alone), what follows the step, and the client's
  notice.

    .venv/bin/python -m bench.burst [--jobs 100] [--clients 8] [--single 20]
"""

from __future__ import annotations

import argparse
import asyncio
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
    workflow_events,
)
from core.config import Settings
from core.probe import probe_file
from core.temporal import workflow_id_for

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


SEGMENTS = {
    "submit": "submit → workflow started",
    "prepare": "first workflow task (compile the plan, mark processing)",
    "dispatch": "step dispatch",
    "step": "the step beyond bare ffmpeg (probe, store, op log, publish)",
    "after": "after the step (completion)",
    "client": "completion → terminal event",
}


def fixed_costs(stack: Stack, video: str, files: dict[str, Path],
                rounds: int) -> list[dict[str, float]]:
    """Per single job: ``fixed`` (client wall − bare ffmpeg), where it went by
    :data:`SEGMENTS` (from the workflow's history: the server's clock is this machine's)
    and ``probe``, the worker's probe of the bare run's output, run alone."""
    rows = []
    for n in range(rounds):
        spec = spec_for(video, n)
        submitted = time.time()
        job_seconds, view = stack.run_job_client(spec)
        received = time.time()
        argv = compiled_argv(spec, files, stack.work / f"single-{n}")
        started = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        bare = time.perf_counter() - started
        started = time.perf_counter()
        asyncio.run(probe_file(Path(argv[-1]), settings=Settings()))
        probe = time.perf_counter() - started
        events = workflow_events(stack, workflow_id_for(view["id"]))
        step = next(i for i, (_, _, activity) in enumerate(events)
                    if activity == "run_ffmpeg_step")
        started_at = first_time(events, "WORKFLOW_EXECUTION_STARTED")
        scheduled = events[step][1]
        step_started = first_time(events[step:], "ACTIVITY_TASK_STARTED")
        step_done = first_time(events[step:], "ACTIVITY_TASK_COMPLETED")
        completed = first_time(events, "WORKFLOW_EXECUTION_COMPLETED")
        rows.append({
            "fixed": job_seconds - bare, "probe": probe,
            "submit": started_at - submitted, "prepare": scheduled - started_at,
            "dispatch": step_started - scheduled, "step": step_done - step_started - bare,
            "after": completed - step_done, "client": received - completed,
        })
    return rows


def first_time(events: list[tuple[str, float, str]], name: str) -> float:
    """When the first event of type ``name`` among ``events`` happened."""
    return next(when for event, when, _ in events if event == name)


def measure(media: Path, jobs: int = 100, clients: int = 8, single: int = 20) -> dict[str, Any]:
    clip = make_clip(media / "clip.mp4", 2, size="320x240")
    with running_stack(extra_env=EXTRA) as stack:
        video = stack.upload(clip)
        files = {video: clip}
        stack.run_job_client(spec_for(video, -1))  # warm-up
        singles = fixed_costs(stack, video, files, single)
        specs = [spec_for(video, n) for n in range(jobs)]
        before = stack_cpu(stack)
        burst = burst_seconds(stack, specs, clients)
        cpu = cpu_per_job(before, stack_cpu(stack), jobs)
        bare, bare_cpu = xargs_run(specs, files, stack.work)
    return {"burst_seconds": burst, "xargs_seconds": bare, "burst_ratio": burst / bare,
            "fixed_cost_median": statistics.median(r["fixed"] for r in singles),
            "segments": {key: statistics.median(r[key] for r in singles)
                         for key in [*SEGMENTS, "probe"]}, "cpu": cpu,
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
    median = result["segments"]
    print("where it goes, medians in ms: " + "; ".join(
        f"{what} {median[key] * 1000:.1f}" for key, what in SEGMENTS.items()))
    print(f"of the step's part: probing the output (the worker's probe of the bare run's "
          f"output, run alone) {median['probe'] * 1000:.1f}")


if __name__ == "__main__":
    bench_main(__doc__, report, jobs=100, clients=8, single=20)
