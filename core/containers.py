"""Container and codec facts, in one place: what each output container can hold, what an
unspecified codec means for it, which muxer writes it, which demuxer reads each accepted
input, and which probed codecs a container takes by stream copy.

Pure tables. The job spec (``core.spec``) validates against them; the plan compiler
(``core.plan``) builds argv from them.
"""

from __future__ import annotations

#: Which codecs each container can carry, and what an unspecified codec means for it.
#: ``pcm`` is 16-bit little-endian PCM (``pcm_s16le``, still accepted as an alias).
CONTAINER_VIDEO_CODECS: dict[str, frozenset[str]] = {
    "mp4": frozenset({"h264", "hevc", "vp9", "av1", "copy", "none"}),
    "mov": frozenset({"h264", "hevc", "copy", "none"}),
    "mkv": frozenset({"h264", "hevc", "vp9", "av1", "copy", "none"}),
    "webm": frozenset({"vp9", "av1", "copy", "none"}),
    "m4a": frozenset({"none"}),
    "mp3": frozenset({"none"}),
    "wav": frozenset({"none"}),
    "flac": frozenset({"none"}),
    "ogg": frozenset({"none"}),
}
CONTAINER_AUDIO_CODECS: dict[str, frozenset[str]] = {
    "mp4": frozenset({"aac", "mp3", "opus", "copy", "none"}),
    "mov": frozenset({"aac", "mp3", "pcm", "copy", "none"}),
    "mkv": frozenset({"aac", "mp3", "opus", "vorbis", "flac", "pcm", "copy", "none"}),
    "webm": frozenset({"opus", "vorbis", "copy", "none"}),
    "m4a": frozenset({"aac", "copy"}),
    "mp3": frozenset({"mp3", "copy"}),
    "wav": frozenset({"pcm", "copy"}),
    "flac": frozenset({"flac", "copy"}),
    "ogg": frozenset({"vorbis", "opus", "flac", "copy"}),
}
CONTAINER_DEFAULT_CODECS: dict[str, tuple[str, str]] = {
    "webm": ("vp9", "opus"),
    "m4a": ("none", "aac"),
    "mp3": ("none", "mp3"),
    "wav": ("none", "pcm"),
    "flac": ("none", "flac"),
    "ogg": ("none", "vorbis"),
}
#: Containers that hold sound only: a video input is reduced to its audio.
AUDIO_ONLY_CONTAINERS = frozenset(
    name for name, codecs in CONTAINER_VIDEO_CODECS.items() if codecs == {"none"})

#: Our codec names → the FFmpeg encoder that makes them (``-c:v``/``-c:a``). A build without
#: one of these encoders refuses the codec at validation (``core.ffmpeg.available_encoders``).
VIDEO_ENCODERS: dict[str, str] = {
    "h264": "libx264", "hevc": "libx265", "vp9": "libvpx-vp9", "av1": "libsvtav1",
}
AUDIO_ENCODERS: dict[str, str] = {
    "aac": "aac", "mp3": "libmp3lame", "opus": "libopus", "vorbis": "libvorbis",
    "flac": "flac", "pcm": "pcm_s16le",
}
#: Our codec names → what ffprobe reports for a stream of that codec (stream copy decisions).
PROBED_CODEC_NAMES: dict[str, str] = {"pcm": "pcm_s16le"}
#: Containers that can hold an embedded subtitle track.
SUBTITLE_CONTAINERS = frozenset({"mp4", "mov", "mkv", "webm"})


#: Demuxers we force with ``-f`` (by ffprobe's first format name) and the extension the
#: runner gives the placed file. Anything else is refused: it should never have been
#: accepted at upload (docs/SECURITY.md #1, #2), and forcing the demuxer keeps FFmpeg from
#: re-guessing a hostile file as a playlist. Every demuxer the upload gate accepts
#: (``core.probe``) has an entry.
DEMUXER_EXTENSIONS: dict[str, str] = {
    "mov": "mp4",
    "matroska": "mkv",
    "avi": "avi",
    "mpegts": "ts",
    "mpeg": "mpg",  # MPEG program stream: DVD rips, camcorders
    "asf": "asf",  # WMV and WMA
    "flv": "flv",
    "mp3": "mp3",
    "wav": "wav",
    "ogg": "ogg",
    "flac": "flac",
    "aac": "aac",
    "gif": "gif",  # still or animated
    "png_pipe": "png",
    "jpeg_pipe": "jpg",
    "webp_pipe": "webp",
    "bmp_pipe": "bmp",
    "tiff_pipe": "tiff",
    "srt": "srt",
    "ass": "ass",
    "webvtt": "vtt",
}

#: Containers whose muxer writes a stream's display matrix, so a turned (phone) video can be
#: stream-copied into them and still show upright. Into any other container it is decoded,
#: which turns the frames upright, and encoded.
ROTATION_CONTAINERS = frozenset({"mp4", "mov"})

#: Container → (FFmpeg muxer, file extension).
MUXERS: dict[str, tuple[str, str]] = {
    "mp4": ("mp4", "mp4"),
    "mov": ("mov", "mov"),
    "mkv": ("matroska", "mkv"),
    "webm": ("webm", "webm"),
    "m4a": ("ipod", "m4a"),
    "mp3": ("mp3", "mp3"),
    "wav": ("wav", "wav"),
    "flac": ("flac", "flac"),
    "ogg": ("ogg", "ogg"),
}
FASTSTART_CONTAINERS = frozenset({"mp4", "mov", "m4a"})

#: Codec names as ffprobe reports them, for the codecs a container can take by stream copy.
COPYABLE_VIDEO: dict[str, frozenset[str] | None] = {
    "mp4": frozenset({"h264", "hevc", "vp9", "av1", "mpeg4"}),
    "mov": frozenset({"h264", "hevc", "mpeg4", "prores", "mjpeg"}),
    "mkv": None,  # anything
    "webm": frozenset({"vp8", "vp9", "av1"}),
}
COPYABLE_AUDIO: dict[str, frozenset[str] | None] = {
    "mp4": frozenset({"aac", "mp3", "opus", "ac3", "eac3", "alac", "flac"}),
    "mov": frozenset({"aac", "mp3", "alac", "pcm_s16le", "pcm_s24le", "ac3"}),
    "mkv": None,
    "webm": frozenset({"opus", "vorbis"}),
    "m4a": frozenset({"aac", "alac"}),
    "mp3": frozenset({"mp3"}),
    "wav": frozenset({"pcm_s16le", "pcm_s24le", "pcm_s32le", "pcm_f32le", "pcm_u8"}),
    "flac": frozenset({"flac"}),
    "ogg": frozenset({"vorbis", "opus", "flac"}),
}
