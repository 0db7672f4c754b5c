"""What fusing a pipeline buys: the four-step job fused vs stepwise, and vs one overlay.

Starts ``mediaflow dev`` as a subprocess (Temporal dev server, SQLite, a CPU worker and
the API on free ports, in a temporary data dir), generates a 1280x720 clip of
``--seconds`` (20) plus a second clip, a tone and an SRT, registers a user over HTTP,
uploads them and times, on the same inputs:

* the SPEC's chain join → text_overlay → audio_overlay → subtitles (burn), ``fused``
  (one FFmpeg run) and ``stepwise`` (four runs, Matroska intermediates);
* a single ``text_overlay`` over the very clip that join produces (made once, by a join
  job, so the overlay reads the same frames as the pipeline).

Each job is timed from ``POST /jobs`` to ``completed`` as a client sees it (polling every
50 ms), and its FFmpeg time is the sum of the operation log's step durations (each covers
placing the inputs, ffmpeg, probing and storing the output). The jobs run ``--repeat``
times in rounds and the best run of each is kept. Targets: fused ≥ 2.5× faster than
stepwise; fused ≤ 1.3× the single overlay.

Where the stepwise time goes: join and audio_overlay are stream copies of the video (cheap),
text_overlay and a burnt-in subtitles step each decode and encode the whole video. Stepwise
therefore pays two video encodes to fused's one, plus four runs' overhead.

    .venv/bin/python bench/fusion.py [--seconds 20] [--repeat 3] [--preset veryfast]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
API = "/api/v1"
FFMPEG = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
SRT = "".join(
    f"{n + 1}\n00:00:{n:02d},000 --> 00:00:{n:02d},900\nLine {n + 1}\n\n" for n in range(20)
)


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def make_clip(path: Path, seconds: float, frequency: int) -> Path:
    subprocess.run([*FFMPEG, "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25",
                    "-f", "lavfi", "-i", f"sine=frequency={frequency}:sample_rate=48000",
                    "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2", str(path)], check=True)
    return path


def make_media(directory: Path, seconds: float) -> dict[str, Path]:
    tone = directory / "tone.wav"
    subprocess.run([*FFMPEG, "-f", "lavfi", "-i", "sine=frequency=880:sample_rate=48000",
                    "-t", str(seconds), str(tone)], check=True)
    srt = directory / "subs.srt"
    srt.write_text(SRT)
    return {"a": make_clip(directory / "a.mp4", seconds, 440),
            "b": make_clip(directory / "b.mp4", max(1.0, seconds / 4), 660),
            "tone": tone, "subs": srt}


class DevStack:
    """``mediaflow dev`` on free ports; stopped with SIGTERM (it stops its children)."""

    def __init__(self, data_dir: Path) -> None:
        self.api_port, self.temporal_port, self.ui_port = free_ports(3)
        self.data_dir = data_dir
        self.url = f"http://127.0.0.1:{self.api_port}"
        self.process: subprocess.Popen[str] | None = None
        self.log = data_dir / "dev.log"

    def __enter__(self) -> DevStack:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAFLOW_")}
        env["MEDIAFLOW_RATE_LIMIT_REQUESTS"] = "100000/minute"  # we poll every 50 ms
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "dev", "--data-dir", str(self.data_dir),
             "--port", str(self.api_port), "--temporal-port", str(self.temporal_port),
             "--ui-port", str(self.ui_port)],
            cwd=REPO, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"mediaflow dev exited:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}{API}/health", timeout=3).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.__exit__()
        raise SystemExit("mediaflow dev never became healthy")

    def __exit__(self, *exc: object) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Timing:
    wall: float
    ffmpeg: float
    runs: int


class Client:
    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url + API, timeout=60)
        self.headers: dict[str, str] = {}

    def login(self) -> None:
        password = "Xk7-Passw0rd-Q"
        account = {"email": "bench@example.com", "username": "bench", "password": password}
        self.http.post("/auth/register", json=account).raise_for_status()
        tokens = self.http.post("/auth/login", json={"email_or_username": "bench",
                                                     "password": password})
        tokens.raise_for_status()
        self.headers = {"Authorization": f"Bearer {tokens.json()['access_token']}"}

    def upload(self, path: Path) -> str:
        with path.open("rb") as f:
            response = self.http.post("/files", headers=self.headers,
                                      files={"file": (path.name, f)})
        response.raise_for_status()
        return response.json()["id"]

    def run(self, spec: dict) -> tuple[dict, Timing]:
        started = time.perf_counter()
        response = self.http.post("/jobs", headers=self.headers, json=spec)
        response.raise_for_status()
        job_id = response.json()["id"]
        while True:
            reply = self.http.get(f"/jobs/{job_id}", headers=self.headers)
            if reply.status_code == 429:
                time.sleep(float(reply.headers.get("Retry-After", "1")))
                continue
            reply.raise_for_status()
            job = reply.json()
            if job["status"] in ("completed", "failed", "cancelled"):
                break
            time.sleep(0.05)
        wall = time.perf_counter() - started
        if job["status"] != "completed":
            raise SystemExit(f"job {job_id} {job['status']}: {job['error']}")
        logs = self.http.get(f"/jobs/{job_id}/logs", headers=self.headers).json()
        steps = [row for row in logs if row["step"] >= 0 and row["success"]]
        return job, Timing(wall, sum(row["duration"] or 0.0 for row in steps), len(steps))


def best_of(client: Client, specs: dict[str, dict], repeat: int) -> dict[str, Timing]:
    """Each job ``repeat`` times, in rounds (so a busy spell hits all of them alike); the
    fastest run of each is kept."""
    runs: dict[str, list[Timing]] = {name: [] for name in specs}
    for _ in range(repeat):
        for name, spec in specs.items():
            runs[name].append(client.run(spec)[1])
    return {name: min(timings, key=lambda t: t.wall) for name, timings in runs.items()}


def pipeline(ids: dict[str, str], execution: str, output: dict) -> dict:
    return {"type": "combined", "output": output, "params": {"execution": execution, "steps": [
        {"id": "joined", "type": "join", "params": {"inputs": [ids["a"], ids["b"]]}},
        {"id": "titled", "type": "text_overlay",
         "params": {"video": "@joined", "text": "mediaflow bench", "box": True}},
        {"id": "scored", "type": "audio_overlay",
         "params": {"video": "@titled", "audio": ids["tone"], "audio_volume": 0.5}},
        {"id": "final", "type": "subtitles", "params": {"video": "@scored",
                                                        "subtitles": ids["subs"]}},
    ]}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the main clip")
    parser.add_argument("--repeat", type=int, default=3, help="runs per job; the best is kept")
    parser.add_argument("--preset", default="veryfast", help="x264 preset of the jobs")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="mediaflow-fusion-") as tmp:
        root = Path(tmp)
        media = make_media(root, args.seconds)
        with DevStack(root / "data") as stack:
            client = Client(stack.url)
            client.login()
            ids = {name: client.upload(path) for name, path in media.items()}
            output = {"preset": args.preset}
            joined, _ = client.run({"type": "join", "output": output,
                                    "params": {"inputs": [ids["a"], ids["b"]]}})
            overlay = {"type": "text_overlay", "output": output,
                       "params": {"video": joined["output_files"][0],
                                  "text": "mediaflow bench", "box": True}}
            best = best_of(client, {"fused": pipeline(ids, "fused", output),
                                    "stepwise": pipeline(ids, "stepwise", output),
                                    "single": overlay}, args.repeat)
            fused, stepwise, single = best["fused"], best["stepwise"], best["single"]

    seconds = args.seconds + max(1.0, args.seconds / 4)
    print(f"input: {seconds:g} s of 1280x720 after the join, preset {args.preset}, "
          f"best of {args.repeat}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"{'job':<26}{'runs':>5}{'wall s':>9}{'ffmpeg s':>10}")
    for name, timing in (("four steps, fused", fused), ("four steps, stepwise", stepwise),
                         ("single text_overlay", single)):
        print(f"{name:<26}{timing.runs:>5}{timing.wall:>9.2f}{timing.ffmpeg:>10.2f}")
    speedup = stepwise.wall / fused.wall
    overhead = fused.wall / single.wall
    print(f"stepwise / fused   = {speedup:.2f}x  (target >= 2.5)   "
          f"ffmpeg only {stepwise.ffmpeg / fused.ffmpeg:.2f}x")
    print(f"fused / one overlay = {overhead:.2f}x  (target <= 1.3)   "
          f"ffmpeg only {fused.ffmpeg / single.ffmpeg:.2f}x")


if __name__ == "__main__":
    main()
