"""``make bench``: every benchmark in turn, each printing ratios it measured side by side
in one run, and their output written to docs/PERFORMANCE.md.

    .venv/bin/python -m bench.all [--only api_load,burst] [--output docs/PERFORMANCE.md]

With ``--only``, the chosen sections are measured and replace theirs in the existing file;
the others stay as they were (each section names the day it was measured).

Absolute times on a shared machine drift; the ratios are what the issue targets name.
The machine's load average is recorded beside each result, so a noisy run shows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
POSTGRES = (os.environ.get("MEDIAFLOW_BENCH_PG") or os.environ.get("MEDIAFLOW_TEST_PG")
            or "postgresql://postgres@127.0.0.1:5432")
"""The PostgreSQL server the API rows are measured on as well (a database is created for
the run and dropped after): the tests' server unless ``MEDIAFLOW_BENCH_PG`` names one."""
BENCHES: list[tuple[str, str, list[str]]] = [
    # (section in docs/PERFORMANCE.md and --only name, what it measures,
    #  the command after ``python -m bench.``)
    ("api_load", "API hot paths against a bare FastAPI route (wrk, 1 thread, 32 "
                 "connections) and POST /jobs accepted per second from 8 clients",
     ["api_load"]),
    ("api_load_postgresql", "the same on PostgreSQL instead of SQLite",
     ["api_load", "--postgres", POSTGRES]),
    ("list_scale", "a page of a user's jobs with 10 and with 10,000 of them, on SQLite "
                   "and PostgreSQL", ["list_scale", "--postgres", POSTGRES]),
    ("burst", "100 tiny jobs from 8 clients against the same ffmpeg commands under "
              "xargs -P2, and where their CPU goes; the fixed cost of one job", ["burst"]),
    ("fanout", "10 live jobs watched by 1 then 20 event streams each: the API's CPU and "
               "the live views (progress queries) it makes per job per second", ["fanout"]),
    ("overhead", "one text_overlay on 20 s of 720p: client wall time against bare ffmpeg",
     ["overhead"]),
    ("join_copy", "join of 4 × 15 s 720p by stream copy against bare ffmpeg concat, and "
                  "against a re-encoding join", ["join_copy"]),
    ("fusion", "a four-step pipeline fused against stepwise, and against one overlay",
     ["fusion"]),
    ("trim_copy", "trim on keyframes against a frame-exact trim", ["trim_copy"]),
    ("sprites", "100 sprite tiles in one job against 100 single-frame ffmpeg calls",
     ["sprites"]),
    ("package", "a 3-rendition HLS package against three transcodes + packaging, and "
                "against bare ffmpeg", ["package"]),
    ("upload_throughput", "a large upload through POST /files against a raw disk write",
     ["upload_throughput", "--http"]),
    ("cluster", "40 small jobs (one ffmpeg thread each) on one worker, then two, then one on "
                "S3 (moto): two workers' throughput against one's, S3 wall time against local",
     ["cluster"]),
]


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return f"{os.cpu_count()} × {model}, Python {platform.python_version()}"


def run(command: list[str]) -> tuple[str, float, str]:
    """Run ``python -m bench.<command>``: its output, seconds, and the load before it."""
    load = os.getloadavg()[0]
    started = time.perf_counter()
    module, *args = command
    done = subprocess.run([sys.executable, "-m", f"bench.{module}", *args], cwd=REPO,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    output = done.stdout.strip() or "(no output)"
    if done.returncode != 0:
        output += f"\n\nFAILED (exit {done.returncode}):\n{done.stderr.strip()[-2000:]}"
    return output, seconds, f"{load:.1f}"


RESULTS = REPO / "bench" / "results"
GPU_READING = """\
What this says, with the long-clip runs below: NVDEC decodes, but it does not pay for
a GPU pool that still encodes on the CPU. Opening CUDA costs about 0.6 s per ffmpeg run
(a one-frame decode: 0.79 s with `-hwaccel cuda` against 0.18 s on the CPU), which
short steps never win back; decoding 1080p into system memory (what a CPU encoder
needs) with the worker's `-hwaccel cuda` runs at about 480 fps for H.264 and 510 fps for
HEVC (910 fps with the `hevc_cuvid` decoder), slower than 16 CPU cores (1,000 and
1,160 fps) and faster than 4 (380 and 420 fps). With libx264 doing the
encode, 60 s of 1080p transcodes in the same time either way: on 4 cores NVDEC saves
0.6 % (H.264) and 1.3 % (HEVC), on 16 it costs 1 % and 9 %. A GPU pool is worth its
price only where decoding dominates a step on few cores (several high-resolution HEVC
inputs overlaid or joined), or with a GPU that has NVENC too, which this one lacks
(docs/DEPLOYMENT.md, "When to add a GPU pool").
"""


def gpu_section() -> str:
    """The NVDEC measurements, recorded on a lent GPU machine (CI and this bench's host
    have none): bench/gpu_decode.py's JSON and bench/gpu_long.sh's log, re-rendered."""
    from bench.gpu_render import markdown

    recorded = RESULTS / "gpu_decode.json"
    if not recorded.exists():
        return ""
    import json

    section = markdown(json.loads(recorded.read_text()))
    long_log = RESULTS / "gpu_long.log"
    if long_log.exists():
        section += ("\n\n" + GPU_READING + "\n`bash bench/gpu_long.sh` on the same machine "
                    "(seconds; 60 s clips, 1,800 frames):\n\n```\n"
                    + long_log.read_text().strip() + "\n```\n")
    return section


def earlier_sections(text: str) -> dict[str, str]:
    """The ``## <bench>`` sections of a file this script wrote, by bench name."""
    names = {name for name, _, _ in BENCHES}
    found: dict[str, str] = {}
    for chunk in text.split("\n## ")[1:]:
        name = chunk.split("\n", 1)[0].strip()
        if name in names:
            found[name] = "## " + chunk.rstrip("\n") + "\n"
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "PERFORMANCE.md")
    options = parser.parse_args()
    chosen = [b for b in BENCHES if not options.only or b[0] in options.only.split(",")]
    sections: dict[str, str] = {}
    today = dt.date.today().isoformat()
    for name, what, argv in chosen:
        print(f"bench.{name} …", flush=True)
        output, seconds, load = run(argv)
        print(output, flush=True)
        command = " ".join(["python -m", f"bench.{argv[0]}", *argv[1:]])
        sections[name] = (f"## {name}\n\n{what}.\n\n`{command}` — {seconds:.0f} s on "
                          f"{today}, load average {load} at the start\n\n```\n{output}\n"
                          "```\n")
    if options.only and options.output.exists():
        kept = earlier_sections(options.output.read_text())
        sections = {name: sections.get(name) or kept.get(name, "") for name, _, _ in BENCHES}
    options.output.write_text(
        "# Performance\n\n"
        f"Written by `make bench`: {machine()}. Each script starts the real "
        "stack (`mediaflow dev`: SQLite, the Temporal dev server, a worker, the API) and "
        "measures both sides of every ratio in the same run; how to profile is in "
        "bench/README.md.\n\n" + "\n".join(filter(None, sections.values())) + "\n"
        + gpu_section())
    print(f"wrote {options.output}")


if __name__ == "__main__":
    main()
