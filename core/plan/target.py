"""How one run writes its result: encoder and muxer options for a :class:`Target`.

What each container can hold (and copy) is in :mod:`core.containers`.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.containers import (
    COPYABLE_AUDIO,
    COPYABLE_VIDEO,
    FASTSTART_CONTAINERS,
    MUXERS,
    ROTATION_CONTAINERS,
)
from core.spec import OutputSpec

_VP9_CPU_USED = {
    "ultrafast": 8, "superfast": 7, "veryfast": 6, "faster": 5, "fast": 4, "medium": 3,
    "slow": 2, "slower": 1, "veryslow": 0,
}
_AUDIO_ENCODERS = {
    "aac": ["-c:a", "aac", "-b:a", "192k"],
    "mp3": ["-c:a", "libmp3lame", "-b:a", "192k"],
    "opus": ["-c:a", "libopus", "-b:a", "128k"],
    "pcm_s16le": ["-c:a", "pcm_s16le"],
}


@dataclass(frozen=True)
class Target:
    """How one run writes its result: the job's OutputSpec, or our intermediate format."""

    container: str
    video_codec: str  # h264 | hevc | vp9 | copy | none
    audio_codec: str  # aac | mp3 | opus | pcm_s16le | copy | none
    crf: int
    preset: str
    width: int | None = None
    height: int | None = None
    fps: float | None = None

    @classmethod
    def final(cls, output: OutputSpec) -> Target:
        return cls(output.container, output.video_codec, output.audio_codec, output.crf,
                   output.preset, output.width, output.height, output.fps)

    @classmethod
    def intermediate(cls, output: OutputSpec) -> Target:
        """Matroska holds whatever a later step needs (including any subtitle codec).

        Codecs follow the job's where they are real encoders, so an untouched stream can be
        copied again in the final run; crf/preset are the job's.
        """
        video = output.video_codec if output.video_codec in ("h264", "hevc", "vp9") else "h264"
        audio = output.audio_codec if output.audio_codec in ("aac", "mp3", "opus") else "aac"
        return cls("mkv", video, audio, output.crf, output.preset)

    @property
    def muxer(self) -> str:
        return MUXERS[self.container][0]

    @property
    def extension(self) -> str:
        return MUXERS[self.container][1]

    def can_copy_video(self, codec: str | None) -> bool:
        allowed = COPYABLE_VIDEO.get(self.container, frozenset())
        return codec is not None and (allowed is None or codec in allowed)

    def can_copy_audio(self, codec: str | None) -> bool:
        allowed = COPYABLE_AUDIO.get(self.container, frozenset())
        return codec is not None and (allowed is None or codec in allowed)

    def can_keep_rotation(self) -> bool:
        """Whether a stream-copied video keeps its display matrix in this container."""
        return self.container in ROTATION_CONTAINERS

    def video_encoder_args(self) -> list[str]:
        codec = self.video_codec
        if codec == "h264":
            return ["-c:v", "libx264", "-preset", self.preset, "-crf", str(self.crf),
                    "-pix_fmt", "yuv420p"]
        if codec == "hevc":
            tag = ["-tag:v", "hvc1"] if self.container in ("mp4", "mov") else []
            return ["-c:v", "libx265", "-preset", self.preset, "-crf", str(self.crf),
                    "-pix_fmt", "yuv420p", *tag]
        if codec == "vp9":
            return ["-c:v", "libvpx-vp9", "-crf", str(self.crf), "-b:v", "0",
                    "-deadline", "good", "-cpu-used", str(_VP9_CPU_USED[self.preset]),
                    "-row-mt", "1", "-pix_fmt", "yuv420p"]
        raise ValueError(f"no encoder for video codec {codec!r}")

    def audio_encoder_args(self) -> list[str]:
        return list(_AUDIO_ENCODERS[self.audio_codec])

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
