"""A 3-rendition HLS package (720p/480p/360p) of a 60 s 1280x720 clip, in one run:

* the package job (one decode, split + three scales, one AAC encode shared by the three
  renditions as their audio group, one ffmpeg) versus three separate
  transcode jobs (one per rendition, same bitrates) plus packaging their results by
  stream copy (issue target: ≤ 0.6);
* the package job's wall time versus the same compiled argv run by bare ffmpeg
  (issue target: ≤ 1.05).

    .venv/bin/python -m bench.package [--seconds 60] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.harness import (
    FFMPEG,
    Stack,
    bare_ffmpeg_seconds,
    bench_main,
    compiled_argv,
    ffmpeg_seconds,
    make_clip,
    running_stack,
)

RUNGS = [(720, 1280, "2800k"), (480, 854, "1400k"), (360, 640, "800k")]
SEGMENT = 6


def package_by_copy(renditions: list[Path], work: Path) -> float:
    """The three transcoded files made into one HLS package without re-encoding."""
    out = work / f"copy-{time.monotonic_ns()}"
    out.mkdir()
    argv = [*FFMPEG]
    for path in renditions:
        argv += ["-i", str(path)]
    for n in range(len(renditions)):
        argv += ["-map", f"{n}:v:0", "-map", f"{n}:a:0"]
    variants = " ".join(f"v:{n},a:{n}" for n in range(len(renditions)))
    argv += ["-c", "copy", "-f", "hls", "-hls_time", str(SEGMENT), "-hls_playlist_type", "vod",
             "-hls_segment_type", "fmp4", "-hls_segment_filename", f"{out}/v%v-%05d.m4s",
             "-hls_fmp4_init_filename", "v%v-init.mp4", "-master_pl_name", "master.m3u8",
             "-var_stream_map", variants, f"{out}/v%v.m3u8"]
    started = time.perf_counter()
    subprocess.run(argv, check=True)
    return time.perf_counter() - started


def cpu_seconds(argv: list[str]) -> float:
    """CPU seconds (user + system) of one run of ``argv``, all its threads."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def encodes_bound(clip: Path, file_id: str, work: Path) -> float:
    """A lower bound of the package ÷ separate ratio, in CPU seconds: what the three bare
    transcodes spend encoding (their CPU less a decode each and their scales, all counted
    as free though one run still pays a decode and its scales) over all they spend. The
    encodes, with the same settings on both sides, are what no single run can share; the
    wall-time ratio can be lower only by the package run keeping the cores busier than
    the transcodes do."""
    decode = cpu_seconds([*FFMPEG, "-i", str(clip), "-map", "0:v:0", "-f", "null", "-"])
    transcodes = scales = 0.0
    for height, width, rate in RUNGS:
        argv = compiled_argv(transcode_spec(file_id, height, width, rate), {file_id: clip},
                             work / f"bound-{height}-{time.monotonic_ns()}")
        transcodes += cpu_seconds(argv)
        scales += cpu_seconds([*FFMPEG, "-i", str(clip), "-map", "0:v:0", "-vf",
                               f"scale=w={width}:h={height}", "-f", "null", "-"]) - decode
    encodes = transcodes - len(RUNGS) * decode - scales
    return encodes / transcodes


def transcode_spec(file_id: str, height: int, width: int, rate: str) -> dict:
    return {"type": "transcode", "params": {"input": file_id, "mode": "reencode"},
            "output": {"width": width, "height": height, "video_bitrate": rate,
                       "audio_bitrate": "128k", "preset": "veryfast"}}


def separate(stack: Stack, file_id: str, work: Path) -> tuple[float, float]:
    """(three transcode jobs' wall time + packaging by copy, packaging alone)."""
    total, outputs = 0.0, []
    for height, width, rate in RUNGS:
        wall, job = stack.run_job(transcode_spec(file_id, height, width, rate))
        total += wall
        target = work / f"{height}-{job['id']}.mp4"
        response = stack.http.get(f"/files/{job['output_files'][0]}/download")
        response.raise_for_status()
        target.write_bytes(response.content)
        outputs.append(target)
    packaging = package_by_copy(outputs, work)
    return total + packaging, packaging


def run(args: argparse.Namespace, media: Path) -> None:
    clip = make_clip(media / "clip720p.mp4", args.seconds)
    with running_stack() as stack:
        file_id = stack.upload(clip)
        spec: dict[str, Any] = {"type": "package", "output": {"preset": "veryfast"}, "params": {
            "input": file_id, "segment_seconds": SEGMENT,
            "renditions": [{"height": h, "video_bitrate": rate} for h, _, rate in RUNGS]}}
        stack.run_job({**spec, "params": {**spec["params"], "renditions": [{"height": 360}]}})
        ladder, overhead, floor = [], [], []
        print(f"{'round':>5} {'package job s':>14} {'ffmpeg s':>9} {'bare s':>8} "
              f"{'3 transcodes + copy s':>22} {'copy s':>7} {'3 bare + copy s':>16}")
        for round_ in range(1, args.rounds + 1):
            wall, job = stack.run_job(spec)
            bare = bare_ffmpeg_seconds(spec, {file_id: clip}, stack.work)
            baseline, packaging = separate(stack, file_id, media)
            bare_three = sum(bare_ffmpeg_seconds(transcode_spec(file_id, h, w, rate),
                                                 {file_id: clip}, stack.work)
                             for h, w, rate in RUNGS) + packaging
            ladder.append(wall / baseline)
            overhead.append(wall / bare)
            floor.append(bare / bare_three)
            print(f"{round_:>5} {wall:>14.2f} {ffmpeg_seconds(stack, job):>9.2f} {bare:>8.2f} "
                  f"{baseline:>22.2f} {packaging:>7.2f} {bare_three:>16.2f}")
    print(f"{args.seconds:g} s of 1280x720 into 720p/480p/360p HLS (fMP4, {SEGMENT} s "
          f"segments), {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"median package job / (3 transcode jobs + packaging) = "
          f"{statistics.median(ladder):.3f} (target <= 0.6)")
    print(f"median package job / bare ffmpeg = {statistics.median(overhead):.3f} "
          f"(target <= 1.05)")
    print(f"ffmpeg's own floor, bare one-run ladder / (3 bare transcodes + packaging) = "
          f"{statistics.median(floor):.3f} (the encodes both sides pay)")
    print(f"the encodes' bound: were every decode and scale free, the package would still "
          f"cost {encodes_bound(clip, file_id, media):.3f} of the three transcodes' CPU "
          f"seconds (bare runs)")


def main() -> None:
    bench_main(__doc__, run, seconds=60.0, rounds=2)


if __name__ == "__main__":
    main()
