"""What people really upload, made by ffmpeg in the test: one tiny file (1 s, 320x240) of
every format the upload gate accepts (docs/API.md "Files", "Accepted formats").

Each :class:`Sample` says how to make the file and what ``POST /files`` must report for it.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.utils.media import FFMPEG

VIDEO = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"]
AUDIO = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
ONE_SECOND = ["-t", "1"]
X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
VP8 = ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8"]
#: Frames at 1 ms timestamps that wobble around 30 fps: ffprobe's r_frame_rate for the WebM
#: is its time base (1000/1) and there is no average rate.
WOBBLY = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30,settb=1/1000,"
          "setpts='N*33+7*mod(N*N,5)'"]
PREVIOUS = "{previous}"


@dataclass(frozen=True)
class Sample:
    name: str
    kind: str  # video | audio | image
    format: str  # File.metadata.format
    steps: tuple[tuple[str, ...], ...]
    """ffmpeg arguments; each run writes the next file, and ``{previous}`` names the one
    before (so a file can be remuxed)."""
    video_codec: str | None = None
    audio_codec: str | None = None
    duration: float | None = 1.0
    fps: float | None = 25.0
    size: tuple[int, int] | None = (320, 240)  # as displayed
    duration_source: str | None = "header"
    vfr: bool | None = False
    rotation: int | None = 0

    def make(self, folder: Path) -> Path:
        previous = None
        for n, args in enumerate(self.steps):
            path = folder / (self.name if n == len(self.steps) - 1 else f"{n}-{self.name}")
            argv = [str(previous) if arg == PREVIOUS else arg for arg in args]
            subprocess.run([*FFMPEG, *argv, str(path)], check=True, timeout=60)
            previous = path
        assert previous is not None
        return previous


def video(name: str, fmt: str, args: list[str], codecs: tuple[str, str | None],
          **expected: object) -> Sample:
    return Sample(name, "video", fmt, (tuple(args),), *codecs, **expected)  # type: ignore[arg-type]


def audio(name: str, fmt: str, args: list[str], codec: str, **expected: object) -> Sample:
    return Sample(name, "audio", fmt, (tuple([*AUDIO, *ONE_SECOND, *args]),), None, codec,
                  fps=None, size=None, vfr=None, rotation=None, **expected)  # type: ignore[arg-type]


def image(name: str, fmt: str, args: list[str], codec: str) -> Sample:
    return Sample(name, "image", fmt, (tuple([*VIDEO, "-frames:v", "1", *args]),), codec,
                  None, duration=None, fps=None, duration_source=None, vfr=None)


AV = [*VIDEO, *AUDIO, *ONE_SECOND]

#: The rows of the issue "accept what people actually upload", then what already passed.
CORPUS: list[Sample] = [
    # browsers' MediaRecorder and OBS write WebM without a duration in the header
    video("recorder.webm", "webm", [*AV, *VP8, "-c:a", "libopus", "-live", "1"],
          ("vp8", "opus"), duration_source="measured"),
    video("timebase.webm", "webm", [*WOBBLY, *ONE_SECOND, *VP8, "-fps_mode", "passthrough",
                                    "-live", "1"], ("vp8", None), fps=30.3,
          duration_source="measured", vfr=True),
    video("animated.gif", "gif", [*VIDEO, *ONE_SECOND], ("gif", None)),
    video("camcorder.mpg", "mpeg", [*AV, "-c:v", "mpeg2video", "-c:a", "mp2", "-f", "mpeg"],
          ("mpeg2video", "mp2")),
    video("windows.wmv", "asf", [*AV, "-c:v", "wmv2", "-c:a", "wmav2"], ("wmv2", "wmav2")),
    audio("windows.wma", "asf", ["-c:a", "wmav2"], "wmav2"),
    image("still.gif", "gif", [], "gif"),
    image("still.bmp", "bmp", [], "bmp"),
    image("still.tiff", "tiff", [], "tiff"),
    Sample("phone.mp4", "video", "mp4", (
        (*AV, *X264, "-c:a", "aac"),
        ("-i", PREVIOUS, "-c", "copy", "-metadata:s:v:0", "rotate=90"),
    ), "h264", "aac", size=(240, 320), rotation=90),
    # already accepted before: they must keep passing
    video("fragmented.mp4", "mp4", [*AV, *X264, "-c:a", "aac", "-movflags",
                                    "frag_keyframe+empty_moov+default_base_moof"],
          ("h264", "aac")),
    video("broadcast.ts", "mpegts", [*AV, *X264, "-c:a", "aac", "-f", "mpegts"],
          ("h264", "aac")),
    video("flash.flv", "flv", [*AV, *X264, "-c:a", "aac"], ("h264", "aac")),
    video("mobile.3gp", "mp4", [*AV, *X264, "-c:a", "aac", "-ar", "16000", "-f", "3gp"],
          ("h264", "aac")),
    video("mjpeg.avi", "avi", [*AV, "-c:v", "mjpeg", "-pix_fmt", "yuvj420p",
                               "-c:a", "pcm_s16le"], ("mjpeg", "pcm_s16le")),
    video("hevc10.mp4", "mp4", [*AV, "-c:v", "libx265", "-preset", "ultrafast",
                                "-pix_fmt", "yuv420p10le", "-x265-params", "log-level=error",
                                "-tag:v", "hvc1", "-c:a", "aac"], ("hevc", "aac")),
    audio("surround.m4a", "mp4", ["-ac", "6", "-c:a", "aac"], "aac"),
    audio("voice.opus", "ogg", ["-c:a", "libopus"], "opus"),
    audio("lossless.flac", "flac", [], "flac"),
    audio("studio.wav", "wav", ["-c:a", "pcm_s24le"], "pcm_s24le"),
    audio("vorbis.ogg", "ogg", ["-c:a", "libvorbis"], "vorbis"),
]
SAMPLES = {sample.name: sample for sample in CORPUS}


def make_corpus(folder: Path) -> dict[str, Path]:
    return {sample.name: sample.make(folder) for sample in CORPUS}
