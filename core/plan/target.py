"""How one run writes its result: encoder and muxer options for a :class:`Target`.

What each container can hold (and copy), and which encoder makes each codec, is in
:mod:`core.containers`.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.containers import (
    AUDIO_ENCODERS,
    COPYABLE_AUDIO,
    COPYABLE_VIDEO,
    FASTSTART_CONTAINERS,
    MUXERS,
    PROBED_CODEC_NAMES,
    ROTATION_CONTAINERS,
    VIDEO_ENCODERS,
)
from core.spec import DEFAULT_CRF, OutputSpec

_VP9_CPU_USED = {
    "ultrafast": 8, "superfast": 7, "veryfast": 6, "faster": 5, "fast": 4, "medium": 3,
    "slow": 2, "slower": 1, "veryslow": 0,
}
#: SVT-AV1 presets run from 13 (fastest) to 0.
_SVT_AV1_PRESET = {
    "ultrafast": 12, "superfast": 11, "veryfast": 10, "faster": 9, "fast": 8, "medium": 7,
    "slow": 5, "slower": 3, "veryslow": 1,
}
_AUDIO_DEFAULT_BITRATES = {"aac": "192k", "mp3": "192k", "opus": "128k", "vorbis": "160k"}


@dataclass(frozen=True)
class Target:
    """How one run writes its result: the job's OutputSpec, or our intermediate format."""

    container: str
    video_codec: str  # h264 | hevc | vp9 | av1 | copy | none
    audio_codec: str  # aac | mp3 | opus | vorbis | flac | pcm | copy | none
    crf: int
    preset: str
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    video_bitrate: str | None = None
    audio_bitrate: str | None = None

    @classmethod
    def final(cls, output: OutputSpec) -> Target:
        return cls(output.container, output.video_codec, output.audio_codec,
                   output.effective_crf, output.preset, output.width, output.height, output.fps,
                   output.video_bitrate, output.audio_bitrate)

    @classmethod
    def intermediate(cls, output: OutputSpec) -> Target:
        """Matroska holds whatever a later step needs (including any subtitle codec).

        Codecs follow the job's where they are real lossy encoders, so an untouched stream
        can be copied again in the final run; crf/preset are the job's (an intermediate is
        never sized by bitrate: it is re-read, not delivered).
        """
        video = output.video_codec if output.video_codec in VIDEO_ENCODERS else "h264"
        audio = output.audio_codec if output.audio_codec in ("aac", "mp3", "opus") else "aac"
        return cls("mkv", video, audio, output.effective_crf, output.preset)

    @classmethod
    def rendition(cls, preset: str) -> Target:
        """What adaptive-streaming packages carry: H.264 and AAC (bitrates set per rung)."""
        return cls("mp4", "h264", "aac", DEFAULT_CRF, preset)

    @property
    def muxer(self) -> str:
        return MUXERS[self.container][0]

    @property
    def extension(self) -> str:
        return MUXERS[self.container][1]

    @property
    def probed_audio_codec(self) -> str:
        """The requested audio codec as ffprobe names it (``pcm`` → ``pcm_s16le``)."""
        return PROBED_CODEC_NAMES.get(self.audio_codec, self.audio_codec)

    def can_copy_video(self, codec: str | None) -> bool:
        allowed = COPYABLE_VIDEO.get(self.container, frozenset())
        return codec is not None and (allowed is None or codec in allowed)

    def can_copy_audio(self, codec: str | None) -> bool:
        allowed = COPYABLE_AUDIO.get(self.container, frozenset())
        return codec is not None and (allowed is None or codec in allowed)

    def can_keep_rotation(self) -> bool:
        """Whether a stream-copied video keeps its display matrix in this container."""
        return self.container in ROTATION_CONTAINERS

    def video_encoder_args(self, stream: str = "v") -> list[str]:
        """``-c:v`` and its options; ``stream`` such as ``v:1`` addresses one output stream
        (per-stream options then carry it too)."""
        def opt(name: str) -> str:
            return name if stream == "v" else f"{name}:{stream}"

        codec = self.video_codec
        rate = [f"-b:{stream}", self.video_bitrate] if self.video_bitrate else None
        if codec == "h264":
            return [f"-c:{stream}", "libx264", opt("-preset"), self.preset,
                    *(rate or [opt("-crf"), str(self.crf)]), opt("-pix_fmt"), "yuv420p"]
        if codec == "hevc":
            tag = [f"-tag:{stream}", "hvc1"] if self.container in ("mp4", "mov") else []
            return [f"-c:{stream}", "libx265", opt("-preset"), self.preset,
                    *(rate or [opt("-crf"), str(self.crf)]), opt("-pix_fmt"), "yuv420p", *tag]
        if codec == "vp9":
            return [f"-c:{stream}", "libvpx-vp9",
                    *(rate or [opt("-crf"), str(self.crf), f"-b:{stream}", "0"]),
                    opt("-deadline"), "good", opt("-cpu-used"), str(_VP9_CPU_USED[self.preset]),
                    opt("-row-mt"), "1", opt("-pix_fmt"), "yuv420p"]
        if codec == "av1":
            return [f"-c:{stream}", "libsvtav1", opt("-preset"),
                    str(_SVT_AV1_PRESET[self.preset]),
                    *(rate or [opt("-crf"), str(self.crf)]), opt("-pix_fmt"), "yuv420p"]
        raise ValueError(f"no encoder for video codec {codec!r}")

    def audio_encoder_args(self, stream: str = "a") -> list[str]:
        codec = self.audio_codec
        if codec not in AUDIO_ENCODERS:
            raise ValueError(f"no encoder for audio codec {codec!r}")
        args = [f"-c:{stream}", AUDIO_ENCODERS[codec]]
        bitrate = self.audio_bitrate or _AUDIO_DEFAULT_BITRATES.get(codec)
        return [*args, f"-b:{stream}", bitrate] if bitrate else args

    def subtitle_codec(self, source_codec: str) -> str:
        """Text subtitles are converted to what the container carries."""
        if self.container in ("mp4", "mov"):
            return "mov_text"
        if self.container == "webm":
            return "webvtt"
        return "ass" if source_codec in ("ass", "ssa") else "srt"

    def muxer_args(self) -> list[str]:
        faststart = ["-movflags", "+faststart"] if self.container in FASTSTART_CONTAINERS else []
        return [*faststart, "-f", self.muxer]
