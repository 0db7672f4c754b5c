"""NVDEC against CPU decoding, for the argv our worker runs, on a real GPU box.

Runs under a bare ``python3`` (stdlib only: the GPU machine has neither our venv nor
network nor ffmpeg). It uses ffmpeg from the bundle that ``bench/gpu_decode.sh`` builds
(``.gpu/ffmpeg.tar.xz``, Debian 12's ffmpeg 5.1 with its libraries; NVDEC through the
driver's libcuda/libnvcuvid), or any ffmpeg given by ``--ffmpeg`` / ``$FFMPEG``.

For 1080p30 test clips in H.264 and HEVC (``--seconds`` long, generated here by that
ffmpeg), every row is timed ``--repeats`` times, interleaved, median wall:

* ``transcode_cpu``: the worker's argv for a re-encoding transcode (default output:
  libx264 veryfast crf 23), CPU decode; ``-threads N`` for the encoder as the worker adds it
* ``transcode_nvdec``: the same argv as ``gpu_argv_variant`` makes it (``-hwaccel cuda``
  before the video input; frames come back to system memory, libx264 encodes)
* ``decode_cpu`` / ``decode_nvdec``: the same input side with ``-map 0:v:0 -f null -``,
  to isolate the decoder

in two CPU budgets: every core (one run alone on a worker: ``-threads <cores>``), and
4 cores (the bench pins itself to 4 CPUs, so decoders see 4 too; ``-threads 4``): a
worker whose cores are shared among runs. NVDEC is checked per codec by one verbose decode
first (exit status, no fallback message, the pixel format handed to the filters), and
``nvidia-smi`` samples decoder utilisation during every timed run. Without a GPU, or when
NVDEC fails, the NVDEC rows are marked unavailable with ffmpeg's error text and the CPU rows
still run; the exit status is then still 0.

    python3 bench/gpu_decode.py --bundle .gpu/ffmpeg.tar.xz --out $OUT/gpu_decode.json
    .venv/bin/python -m bench.gpu_decode --seconds 2        # here, CPU rows only

``bench/gpu_render.py``'s ``markdown(results)`` turns the JSON into a PERFORMANCE.md
section.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

#: ``compile_plan`` for ``{"type": "transcode", "params": {"input": <silent mp4 video>,
#: "mode": "reencode"}, "output": {}}``: the argv the worker runs (placeholders kept).
#: tests/plan/test_gpu_bench_argv.py keeps it equal to the compiler's.
WORKER_TRANSCODE = [
    "ffmpeg", "-nostdin", "-hide_banner", "-y", "-progress", "pipe:1", "-nostats",
    "-protocol_whitelist", "file", "-f", "mov", "-i", "{in0}", "-map", "0:v:0",
    "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
    "-fps_mode:v", "vfr", "-movflags", "+faststart", "-f", "mp4", "{out}",
]
WORKER_VIDEO_INPUTS = ["{in0}"]
#: activities/ffmpeg.py's HWACCEL_MARKERS (a failed NVDEC run: the worker retries on CPU),
#: then ffmpeg's messages for a hwaccel that failed but let software decoding go on.
HWACCEL_MARKERS = (
    "Device creation failed",
    "No device available for decoder",
    "Device setup failed",
    "Cannot load libcuda",
    "CUDA_ERROR",
)
SILENT_FALLBACK_MARKERS = (
    "Failed setup for format cuda",
    "hwaccel initialisation returned error",
    "Cannot load libnvcuvid",
    "Failed loading nvcuvid",
)
WIDTH, HEIGHT, FPS = 1920, 1080, 30
#: testsrc2 with temporal grain, so the bitstream carries camera-like detail (a clean
#: synthetic pattern decodes unrealistically fast)
SOURCE = f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS},noise=alls=12:allf=t+u"
CLIP_ENCODERS = {
    "h264": ["-c:v", "libx264", "-preset", "veryfast", "-b:v", "8M", "-maxrate", "10M",
             "-bufsize", "16M", "-g", "60", "-pix_fmt", "yuv420p"],
    "hevc": ["-c:v", "libx265", "-preset", "veryfast", "-b:v", "5M", "-x265-params",
             "log-level=error:keyint=60", "-pix_fmt", "yuv420p", "-tag:v", "hvc1"],
}
#: ffmpeg's " @ 0x5616…" context addresses, dropped from recorded messages
ADDRESS = re.compile(r"\s*@\s*0x[0-9a-fA-F]+")
#: the lines of a failed NVDEC run worth recording
KEY_LINE = re.compile(r"cuda|cuvid|nvdec|device|hwaccel|fail|error|cannot", re.IGNORECASE)
ROWS = ("transcode_cpu", "transcode_nvdec", "decode_cpu", "decode_nvdec")
NVIDIA_LIB_DIRS = ("/usr/local/nvidia/lib64", "/usr/local/nvidia/lib", "/usr/lib/x86_64-linux-gnu",
                   "/usr/lib64", "/usr/lib", "/lib/x86_64-linux-gnu", "/usr/local/cuda/lib64",
                   "/usr/local/cuda/compat")


# --------------------------------------------------------------------------- argv


def nvdec_variant(argv: list[str], video_inputs: list[str]) -> list[str]:
    """``core.plan.model.gpu_argv_variant``: ``-hwaccel cuda`` before each video input."""
    out: list[str] = []
    for position, arg in enumerate(argv):
        next_arg = argv[position + 1] if position + 1 < len(argv) else None
        if arg == "-i" and next_arg in video_inputs:
            out += ["-hwaccel", "cuda"]
        out.append(arg)
    return out


def with_threads(argv: list[str], threads: int) -> list[str]:
    """``activities.ffmpeg.with_threads``: encoder threads, before the output."""
    return [*argv[:-1], "-threads", str(threads), argv[-1]]


def decode_only(argv: list[str]) -> list[str]:
    """The input side and the video map of a run, into the null muxer."""
    end = argv.index("-map") + 2
    return [*argv[:end], "-f", "null", "-"]


def row_templates() -> dict[str, list[str]]:
    """Placeholder argv of each row (the transcodes get ``-threads`` when run)."""
    gpu = nvdec_variant(WORKER_TRANSCODE, WORKER_VIDEO_INPUTS)
    return {"transcode_cpu": list(WORKER_TRANSCODE), "transcode_nvdec": gpu,
            "decode_cpu": decode_only(WORKER_TRANSCODE), "decode_nvdec": decode_only(gpu)}


def render(argv: list[str], paths: dict[str, str]) -> list[str]:
    return [paths.get(arg[1:-1], arg) if arg.startswith("{") else arg for arg in argv]


# --------------------------------------------------------------------------- environment


def sh(args: list[str], timeout: float = 30) -> tuple[int, str]:
    """(exit status, stdout + stderr); 127 when the program is missing."""
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError as exc:
        return 127, str(exc)
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {timeout} s"
    return done.returncode, (done.stdout + done.stderr).strip()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def host_info() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)),
            "cpu_model": cpu_model(), "python": platform.python_version(),
            "glibc": " ".join(platform.libc_ver()), "kernel": platform.release(),
            "loadavg": os.getloadavg()[0]}


def gpu_info() -> dict[str, Any]:
    rc, listing = sh(["nvidia-smi", "-L"])
    gpus = [line for line in listing.splitlines() if line.startswith("GPU ")] if rc == 0 else []
    _, query = sh(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                   "--format=csv,noheader"]) if gpus else (0, "")
    found: dict[str, list[str]] = {"libnvcuvid": [], "libcuda": []}
    rc_cache, cache = sh(["ldconfig", "-p"])
    if rc_cache != 0:
        rc_cache, cache = sh(["/sbin/ldconfig", "-p"])
    ldconfig = [line.strip() for line in cache.splitlines()
                if "libnvcuvid" in line or "libcuda.so" in line] if rc_cache == 0 else []
    dirs = [*NVIDIA_LIB_DIRS, *filter(None, os.environ.get("LD_LIBRARY_PATH", "").split(":"))]
    for directory in dict.fromkeys(dirs):
        for name in found:
            for path in sorted(Path(directory).glob(f"{name}.so*")):
                found[name].append(str(path))
    devices = sorted(str(path) for path in Path("/dev").glob("nvidia*"))
    return {"present": bool(gpus),
            "nvidia_smi_L": listing if rc != 127 else "nvidia-smi: not found",
            "gpus": gpus, "query": query, "devices": devices,
            "ldconfig": ldconfig, "libnvcuvid": found["libnvcuvid"], "libcuda": found["libcuda"],
            "driver_capabilities": os.environ.get("NVIDIA_DRIVER_CAPABILITIES")}


def ffmpeg_info(ffmpeg: str) -> dict[str, Any]:
    _, version = sh([ffmpeg, "-hide_banner", "-version"])
    _, hwaccels = sh([ffmpeg, "-hide_banner", "-hwaccels"])
    _, encoders = sh([ffmpeg, "-hide_banner", "-encoders"])
    _, decoders = sh([ffmpeg, "-hide_banner", "-decoders"])
    first = version.splitlines()[0] if version else ""
    return {"path": ffmpeg, "version": first.split(" Copyright")[0],
            "hwaccels": [line.strip() for line in hwaccels.splitlines()[1:] if line.strip()],
            "libx264": " libx264 " in encoders, "libx265": " libx265 " in encoders,
            "cuvid_decoders": re.findall(r"\s(\w+_cuvid)\s", decoders),
            "bundle_glibc": bundle_glibc_mode(ffmpeg)}


def bundle_glibc_mode(ffmpeg: str) -> str | None:
    """Which glibc the bundle's launcher picks (its own rule), None outside the bundle."""
    if not (Path(ffmpeg).parent / "glibc").is_dir():
        return None
    forced = os.environ.get("FF_GLIBC", "auto")
    if forced != "auto":
        return forced
    name, version = platform.libc_ver()
    parts = version.split(".")
    usable = name == "glibc" and len(parts) >= 2 and parts[0] == "2" and int(parts[1]) >= 36
    return "system" if usable else "bundled"


def locate_ffmpeg(args: argparse.Namespace) -> str:
    if args.ffmpeg:
        return args.ffmpeg
    if os.environ.get("FFMPEG"):
        return os.environ["FFMPEG"]
    if args.bundle:
        target = Path(args.unpack_to)
        if not (target / "ffmpeg").exists():
            started = time.perf_counter()
            target.mkdir(parents=True, exist_ok=True)
            try:
                with tarfile.open(args.bundle, "r:*") as archive:
                    if hasattr(tarfile, "data_filter"):
                        archive.extractall(target, filter="data")
                    else:  # Python < 3.11.4
                        archive.extractall(target)  # our own archive
            except (tarfile.CompressionError, ImportError):  # a Python without lzma
                subprocess.run(["tar", "-C", str(target), "-xJf", args.bundle], check=True)
            print(f"unpacked {args.bundle} to {target} in "
                  f"{time.perf_counter() - started:.1f} s", flush=True)
        return str(target / "ffmpeg")
    found = shutil.which("ffmpeg")
    if not found:
        sys.exit("no ffmpeg: give --ffmpeg, $FFMPEG or --bundle")
    return found


# --------------------------------------------------------------------------- GPU sampler


class DecoderSampler:
    """GPU decoder utilisation, timestamped, in a thread: ``nvidia-smi --query-gpu`` every
    200 ms, or ``nvidia-smi dmon`` (1 s) where that query is refused."""

    QUERY = ["nvidia-smi", "--query-gpu=utilization.decoder,utilization.gpu",
             "--format=csv,noheader,nounits", "-lms", "200"]
    DMON = ["nvidia-smi", "dmon", "-s", "u", "-d", "1"]

    def __init__(self) -> None:
        self.samples: list[tuple[float, float, float]] = []  # (monotonic, dec %, gpu %)
        self.error: str | None = None
        self.source: str | None = None
        self.lag = 0.25  # how long after a run its last sample may come
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        for command in (self.QUERY, self.DMON):
            try:
                self._proc = subprocess.Popen(command, stdout=subprocess.PIPE,
                                              stderr=subprocess.STDOUT, text=True,
                                              stdin=subprocess.DEVNULL)
            except OSError as exc:
                self.error = str(exc)
                return
            self.source = " ".join(command)
            self.lag = 0.25 if command is self.QUERY else 1.1
            reader = self._read_query if command is self.QUERY else self._read_dmon
            threading.Thread(target=reader, args=(self._proc,), daemon=True).start()
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and not self.samples and self._proc.poll() is None:
                time.sleep(0.05)
            if self.samples or self._proc.poll() is None:
                return
        self.source = None

    def _read_query(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            parts = [part.strip() for part in line.split(",")]
            try:
                self.samples.append((time.monotonic(), float(parts[0]), float(parts[1])))
            except (ValueError, IndexError):
                if not self.samples:
                    self.error = line.strip()

    def _read_dmon(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        columns: list[str] = []
        for line in proc.stdout:
            parts = line.split()
            if line.startswith("#") and "dec" in parts:
                columns = parts[1:]  # "# gpu sm mem enc dec ..."
                continue
            if not columns or line.startswith("#") or len(parts) < len(columns):
                continue
            try:
                self.samples.append((time.monotonic(), float(parts[columns.index("dec")]),
                                     float(parts[columns.index("sm")])))
            except ValueError:  # "-" where a value is not supported
                continue

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()

    def during(self, start: float, end: float) -> tuple[float, float] | None:
        """(max decoder %, max GPU %) of the samples taken during [start, end]."""
        inside = [s for s in self.samples if start <= s[0] <= end + self.lag]
        if not inside:
            return None
        return max(s[1] for s in inside), max(s[2] for s in inside)


# --------------------------------------------------------------------------- runs


def run_ffmpeg(ffmpeg: str, argv: list[str], timeout: float) -> dict[str, Any]:
    """One run of a rendered argv (``argv[0]`` is replaced by ``ffmpeg``, as the worker
    does); wall seconds, exit status, frames from ``-progress`` and stderr's tail."""
    started = time.monotonic()
    try:
        done = subprocess.run([ffmpeg, *argv[1:]], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        rc, stdout, stderr = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        rc, stdout, stderr = 124, "", f"timed out after {timeout} s: {exc.stderr!r}"[-2000:]
    ended = time.monotonic()
    frames = re.findall(r"^frame=(\d+)", stdout, re.MULTILINE)
    return {"wall": ended - started, "start": started, "end": ended, "rc": rc,
            "frames": int(frames[-1]) if frames else None, "stderr": stderr}


def make_clip(ffmpeg: str, codec: str, seconds: float, path: Path) -> dict[str, Any]:
    argv = ["ffmpeg", "-nostdin", "-hide_banner", "-y", "-v", "error", "-f", "lavfi",
            "-i", SOURCE, "-t", f"{seconds:g}", *CLIP_ENCODERS[codec], "-an", "-f", "mp4",
            str(path)]
    result = run_ffmpeg(ffmpeg, argv, timeout=600)
    if result["rc"] != 0:
        raise RuntimeError(f"generating the {codec} clip failed: {result['stderr'][-1500:]}")
    size = path.stat().st_size
    return {"path": str(path), "bytes": size, "seconds": seconds,
            "mbps": round(size * 8 / seconds / 1e6, 2), "generate_s": round(result["wall"], 2)}


def verify_nvdec(ffmpeg: str, templates: dict[str, list[str]], paths: dict[str, str],
                 sampler: DecoderSampler | None) -> dict[str, Any]:
    """One verbose NVDEC decode: did it run, or fail, or fall back to software?"""
    argv = render(templates["decode_nvdec"], paths)
    argv = [*argv[:argv.index("-nostats") + 1], "-v", "verbose", *argv[argv.index("-nostats") + 1:]]
    result = run_ffmpeg(ffmpeg, argv, timeout=300)
    stderr = result["stderr"]
    failed = [m for m in HWACCEL_MARKERS if m in stderr]
    fallback = [m for m in SILENT_FALLBACK_MARKERS if m in stderr]
    pixfmt = re.search(r"graph \S+ input from stream \S+ @ \S+\] .*?pixfmt:(\w+)", stderr)
    hw_lines = [ADDRESS.sub("", line).strip() for line in stderr.splitlines()
                if re.search(r"cuda|cuvid|hwaccel|hwdevice|nvdec", line, re.IGNORECASE)]
    ok = result["rc"] == 0 and not failed and not fallback
    lines = [ADDRESS.sub("", line).strip() for line in stderr.splitlines() if line.strip()]
    key = [line for line in lines if KEY_LINE.search(line)]
    error = summary = None
    if not ok:
        prefix = f"exit {result['rc']}: " if result["rc"] else "exit 0 but "
        if fallback and not failed:
            prefix += "software fallback: "
        error = prefix + "\n".join(key[-8:] or lines[-5:])
        summary = prefix + (key[0] if key else (lines[-1] if lines else "no output"))
    verify: dict[str, Any] = {
        "ok": ok, "rc": result["rc"], "error": error, "error_summary": summary,
        "wall": round(result["wall"], 3), "frames": result["frames"],
        "markers": failed + fallback,
        "filter_input_pixfmt": pixfmt.group(1) if pixfmt else None,
        "hw_log_lines": hw_lines[:20], "stderr_tail": lines[-40:],
    }
    if sampler is not None:
        seen = sampler.during(result["start"], result["end"])
        verify["decoder_util_max"] = seen[0] if seen else None
    return verify


def summarize(runs: list[dict[str, Any]], sampler: DecoderSampler | None) -> dict[str, Any]:
    walls = [run["wall"] for run in runs if run["rc"] == 0]
    frames = next((run["frames"] for run in runs if run["frames"]), None)
    row: dict[str, Any] = {"walls": [round(w, 3) for w in walls], "runs": len(runs),
                           "failed": [run["stderr"][-800:] for run in runs if run["rc"] != 0],
                           "frames": frames}
    if walls:
        median = statistics.median(walls)
        row["median"] = round(median, 3)
        row["fps"] = round(frames / median, 1) if frames else None
    if sampler is not None and sampler.samples:
        seen = [s for run in runs if (s := sampler.during(run["start"], run["end"]))]
        row["decoder_util_max"] = max((s[0] for s in seen), default=None)
        row["gpu_util_max"] = max((s[1] for s in seen), default=None)
    return row


def ratios(rows: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    def median(name: str) -> float | None:
        return rows.get(name, {}).get("median")

    def divide(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a and b else None

    return {
        # < 1: the NVDEC transcode is faster
        "transcode_nvdec_over_cpu": divide(median("transcode_nvdec"), median("transcode_cpu")),
        # > 1: NVDEC decodes faster
        "decode_speedup_nvdec": divide(median("decode_cpu"), median("decode_nvdec")),
        # how much of the CPU transcode is decoding
        "decode_share_of_cpu_transcode": divide(median("decode_cpu"), median("transcode_cpu")),
    }


def thread_configs(spec: str) -> list[dict[str, Any]]:
    """``all`` (every usable core, ``-threads <cores>``) and/or core counts such as ``4``."""
    usable = sorted(os.sched_getaffinity(0))
    configs: list[dict[str, Any]] = []
    for item in spec.split(","):
        item = item.strip()
        count = len(usable) if item == "all" else int(item)
        if count > len(usable):
            print(f"skipping {count} cores: only {len(usable)} usable", flush=True)
            continue
        if any(config["cores"] == count for config in configs):
            continue
        name = (f"all {count} cores" if count == len(usable) else f"{count} of {len(usable)} cores")
        configs.append({"name": name, "cores": count, "threads": count,
                        "cpus": usable[:count]})
    return configs


def print_table(results: dict[str, Any]) -> None:
    print()
    print(f"{'config':<18} {'codec':<5} {'row':<16} {'median s':>9} {'fps':>7} "
          f"{'dec% max':>8}  walls")
    for config in results["configs"]:
        for codec, block in config["codecs"].items():
            for name in ROWS:
                row = block["rows"].get(name)
                if row is None:
                    continue
                if row.get("unavailable"):
                    print(f"{config['name']:<18} {codec:<5} {name:<16} {'n/a':>9}  "
                          f"({row['unavailable'][:70]})")
                    continue
                util = row.get("decoder_util_max")
                print(f"{config['name']:<18} {codec:<5} {name:<16} "
                      f"{row.get('median', float('nan')):>9.3f} {row.get('fps') or 0:>7.1f} "
                      f"{'' if util is None else f'{util:.0f}':>8}  {row['walls']}")
            r = block["ratios"]
            print(f"{'':<18} {codec:<5} transcode NVDEC ÷ CPU = {r['transcode_nvdec_over_cpu']}; "
                  f"decode-only speed-up = {r['decode_speedup_nvdec']}; "
                  f"decode share of CPU transcode = {r['decode_share_of_cpu_transcode']}")
    print()


def write(results: dict[str, Any], out: Path | None) -> None:
    if out is None:
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    tmp.replace(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ffmpeg", help="ffmpeg to run (else $FFMPEG, --bundle, PATH)")
    parser.add_argument("--bundle", help="bench/gpu_decode.sh's archive, unpacked first")
    parser.add_argument("--unpack-to", default="/tmp/ff")
    parser.add_argument("--out", type=Path, help="JSON results (rewritten after each block)")
    parser.add_argument("--markdown", type=Path, help="also write gpu_render's Markdown here")
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--codecs", default="h264,hevc")
    parser.add_argument("--threads", default="all,4",
                        help="CPU budgets: 'all' and/or core counts, comma-separated")
    parser.add_argument("--budget", type=float, default=210.0,
                        help="seconds; later blocks are skipped once past it")
    parser.add_argument("--workdir", help="scratch directory (default: a temporary one)")
    args = parser.parse_args(argv)

    began = time.monotonic()
    results: dict[str, Any] = {
        "schema": 1, "bench": "gpu_decode",
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": host_info(), "gpu": gpu_info(), "notes": [],
        "clip": {"width": WIDTH, "height": HEIGHT, "fps": FPS, "seconds": args.seconds,
                 "source": SOURCE, "encoders": CLIP_ENCODERS, "codecs": {}},
        "argv": {name: argv for name, argv in row_templates().items()},
        "nvdec": {"available": {}, "verify": {}}, "configs": [],
    }
    ffmpeg = locate_ffmpeg(args)
    rc, text = sh([ffmpeg, "-hide_banner", "-version"])
    if rc != 0 and bundle_glibc_mode(ffmpeg) == "system":
        results["notes"].append(f"the bundle on this glibc failed ({text[-300:]}); "
                                "using the bundled glibc")
        os.environ["FF_GLIBC"] = "bundled"
    results["ffmpeg"] = ffmpeg_info(ffmpeg)
    gpu = results["gpu"]
    print(f"host: {results['host']['cpus']} × {results['host']['cpu_model']}, "
          f"{results['host']['glibc']}, Python {results['host']['python']}")
    print(f"nvidia-smi -L: {gpu['nvidia_smi_L'] or '(nothing)'}")
    print(f"libnvcuvid: {gpu['libnvcuvid'] or 'not found'}; ldconfig: {gpu['ldconfig'] or '-'}")
    print(f"ffmpeg: {results['ffmpeg']['version']} ({ffmpeg}); hwaccels "
          f"{results['ffmpeg']['hwaccels']}; libx264 {results['ffmpeg']['libx264']}, "
          f"libx265 {results['ffmpeg']['libx265']}; bundle glibc: "
          f"{results['ffmpeg']['bundle_glibc']}", flush=True)
    write(results, args.out)

    sampler = DecoderSampler() if gpu["present"] else None
    if sampler is not None:
        sampler.start()
    templates = row_templates()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="gpu-decode-"))
    workdir.mkdir(parents=True, exist_ok=True)
    measured = 0
    try:
        codecs = [c.strip() for c in args.codecs.split(",") if c.strip()]
        paths_of: dict[str, dict[str, str]] = {}
        for codec in codecs:
            if not results["ffmpeg"]["libx264" if codec == "h264" else "libx265"]:
                results["notes"].append(f"{codec}: this ffmpeg cannot make the test clip")
                continue
            scratch = workdir / codec
            scratch.mkdir(exist_ok=True)
            clip = make_clip(ffmpeg, codec, args.seconds, workdir / f"clip-{codec}.mp4")
            results["clip"]["codecs"][codec] = clip
            (scratch / "in0.mp4").unlink(missing_ok=True)
            (scratch / "in0.mp4").symlink_to(clip["path"])
            paths_of[codec] = {"in0": str(scratch / "in0.mp4"), "out": str(scratch / "out.mp4")}
            verify = verify_nvdec(ffmpeg, templates, paths_of[codec], sampler)
            results["nvdec"]["verify"][codec] = verify
            results["nvdec"]["available"][codec] = verify["ok"]
            state = "ok" if verify["ok"] else f"UNAVAILABLE ({verify['error_summary']})"
            print(f"{codec}: clip {clip['mbps']} Mb/s ({clip['generate_s']} s to make); "
                  f"NVDEC {state}; filters get {verify['filter_input_pixfmt']}; "
                  f"decoder util max {verify.get('decoder_util_max')}", flush=True)
        write(results, args.out)

        original_affinity = os.sched_getaffinity(0)
        for config in thread_configs(args.threads):
            block_config = {k: v for k, v in config.items() if k != "cpus"}
            block_config["codecs"] = {}
            results["configs"].append(block_config)
            os.sched_setaffinity(0, config["cpus"])
            try:
                for codec, paths in paths_of.items():
                    if time.monotonic() - began > args.budget:
                        note = (f"{config['name']} {codec}: skipped, past the "
                                f"{args.budget:g} s budget")
                        results["notes"].append(note)
                        print(note, flush=True)
                        continue
                    names = [name for name in ROWS
                             if "nvdec" not in name or results["nvdec"]["available"].get(codec)]
                    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
                    for repeat in range(args.repeats):
                        shift = repeat % len(names)
                        for name in names[shift:] + names[:shift]:  # interleaved, rotated
                            argv = render(templates[name], paths)
                            if name.startswith("transcode"):
                                argv = with_threads(argv, config["threads"])
                            runs[name].append(run_ffmpeg(ffmpeg, argv, timeout=300))
                    rows = {name: summarize(runs[name], sampler) for name in names}
                    for name in ROWS:
                        if name not in rows:
                            check = results["nvdec"]["verify"].get(codec, {})
                            rows[name] = {"unavailable": check.get("error_summary")
                                          or "NVDEC unavailable"}
                    measured += sum(1 for row in rows.values() if row.get("median"))
                    block_config["codecs"][codec] = {"rows": rows, "ratios": ratios(rows)}
                    write(results, args.out)
                    print(f"{config['name']} {codec}: done at "
                          f"{time.monotonic() - began:.0f} s", flush=True)
            finally:
                os.sched_setaffinity(0, original_affinity)
    except Exception as exc:  # record, so the run is not wasted
        results["notes"].append(f"bench error: {type(exc).__name__}: {exc}")
        print(f"bench error: {exc}", file=sys.stderr, flush=True)
    finally:
        if sampler is not None:
            sampler.stop()
            results["gpu"]["sampler"] = {"source": sampler.source,
                                         "samples": len(sampler.samples),
                                         "error": sampler.error}
        results["elapsed_s"] = round(time.monotonic() - began, 1)
        write(results, args.out)
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    print_table(results)
    if args.markdown:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from gpu_render import markdown

        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown(results))
    print(f"elapsed {results['elapsed_s']} s; results in {args.out or '(no --out)'}")
    return 0 if measured else 1


if __name__ == "__main__":
    sys.exit(main())
