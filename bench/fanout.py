"""Progress fan-out: many event-stream watchers of the same running jobs.

Ten long jobs run (two at a time, the rest waiting for a slot: every one of them is live
and watched). First one watcher per job, then twenty per job (200 streams), each for
``--seconds``; for both the API process's CPU (user + system, from /proc) per wall
second, and the live views it fetched per job per second (``mediaflow_job_views_total``:
a row read plus one progress query to Temporal each). Target: with 200 watchers the API
makes at most a few queries per job per second and stays under one core.

    .venv/bin/python -m bench.fanout [--seconds 15] [--watchers 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import tempfile
import time
from pathlib import Path

import httpx

from bench.harness import Stack, make_clip, running_stack

EXTRA = {"MEDIAFLOW_RATE_LIMIT_REQUESTS": "10000000/minute",
         "MEDIAFLOW_MAX_ACTIVE_JOBS_PER_USER": "100000"}
JOBS = 10
VIEWS = re.compile(r"^mediaflow_job_views_total ([0-9.e+]+)$", re.M)
TICKS = os.sysconf("SC_CLK_TCK")


def api_pid(port: int) -> int:
    """The ``mediaflow api`` child of ``mediaflow dev`` serving on ``port``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"cli.main" in argv and b"api" in argv and str(port).encode() in argv:
            return int(entry.name)
    raise RuntimeError(f"no API process on port {port}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def views(stack: Stack) -> float:
    match = VIEWS.search(httpx.get(f"{stack.url}/metrics", timeout=30).text)
    return float(match.group(1)) if match else 0.0


async def watch(client: httpx.AsyncClient, job_id: str, stop: asyncio.Event) -> None:
    async with client.stream("GET", f"/jobs/{job_id}/events") as response:
        async for line in response.aiter_lines():
            if stop.is_set() or line.startswith(("event: completed", "event: failed",
                                                 "event: cancelled")):
                return


async def watched(stack: Stack, job_ids: list[str], per_job: int, seconds: float,
                  pid: int) -> dict[str, float]:
    stop = asyncio.Event()
    async with httpx.AsyncClient(base_url=f"{stack.url}/api/v1", timeout=None,
                                 headers=dict(stack.http.headers),
                                 limits=httpx.Limits(max_connections=None)) as client:
        tasks = [asyncio.create_task(watch(client, job_id, stop))
                 for job_id in job_ids for _ in range(per_job)]
        await asyncio.sleep(2)  # every stream connected and polling
        views_before, cpu_before, started = views(stack), cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(seconds)
        wall = time.monotonic() - started
        cpu, fetched = cpu_seconds(pid) - cpu_before, views(stack) - views_before
        open_streams = sum(not t.done() for t in tasks)
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {"watchers": per_job * len(job_ids), "open_streams": open_streams,
            "api_cores": cpu / wall, "views_per_job_per_second": fetched / len(job_ids) / wall}


def measure(seconds: float = 15, watchers: int = 200) -> list[dict[str, float]]:
    media = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    clip = make_clip(media / "long.mp4", 120, size="640x360")
    with running_stack(extra_env=EXTRA) as stack:
        video = stack.upload(clip)
        job_ids = [stack.http.post("/jobs", json={
            "type": "text_overlay", "params": {"video": video, "text": f"watched {n}"},
            "output": {"preset": "slow"}}).raise_for_status().json()["id"]
            for n in range(JOBS)]
        pid = api_pid(int(stack.url.rsplit(":", 1)[1]))
        try:
            return [asyncio.run(watched(stack, job_ids, per_job, seconds, pid))
                    for per_job in (1, max(1, watchers // JOBS))]
        finally:
            for job_id in job_ids:
                stack.http.post(f"/jobs/{job_id}/cancel")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--watchers", type=int, default=200)
    options = parser.parse_args()
    one, many = measure(options.seconds, options.watchers)
    for row in (one, many):
        print(f"{row['watchers']:4.0f} watchers on {JOBS} live jobs ({row['open_streams']:.0f} "
              f"streams open at the end): API {row['api_cores']:.3f} cores, "
              f"{row['views_per_job_per_second']:.2f} live views per job per second")
    print(f"{many['watchers'] / one['watchers']:.0f}× the watchers: "
          f"{many['views_per_job_per_second'] / max(one['views_per_job_per_second'], 1e-9):.2f}× "
          f"the views, {many['api_cores'] / max(one['api_cores'], 1e-9):.2f}× the API CPU "
          f"(target: a few views per job per second, under one core)")


if __name__ == "__main__":
    main()
