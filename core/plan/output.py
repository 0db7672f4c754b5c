"""The end of a run: map the final streams, copy or encode each one, pick the muxer.

A stream is stream-copied when no step changed it (its pad is still a raw input stream), no
frame size/rate change is asked for, and it already has the requested codec — or when the
spec asks for ``copy`` explicitly. crf/preset therefore apply to the streams that must be
re-encoded; ``join`` in ``auto`` mode is the documented example of the same rule.

A turned (phone) video is copied only into a container that keeps its display matrix
(``core.containers.ROTATION_CONTAINERS``); elsewhere it is decoded — FFmpeg turns the frames
upright as it decodes them for a filter or an encoder — and encoded, so every output shows
upright.

An embedded subtitle track never makes the output longer than its picture and sound: cues
past the end of the video are cut with ``-t`` (subtitle streams cannot be filtered, and
``-shortest`` would cut the video at the last cue instead).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.mediainfo import MediaInfo, SubtitleTrack
from core.plan import filters
from core.plan.escape import filter_spec, format_number
from core.plan.graph import Pad, RunBuilder, Streams
from core.plan.target import Target
from core.spec import SpecError

#: How ffprobe names what we write, so a later run can force the right demuxer.
FORMAT_NAMES = {
    "mp4": "mov,mp4,m4a,3gp,3g2,mj2", "mov": "mov,mp4,m4a,3gp,3g2,mj2",
    "m4a": "mov,mp4,m4a,3gp,3g2,mj2", "mkv": "matroska,webm", "webm": "matroska,webm",
    "mp3": "mp3", "wav": "wav", "flac": "flac", "ogg": "ogg",
}
#: Subtitle encoder → the codec name ffprobe reports for its output.
_PROBED_SUBTITLE_CODECS = {"srt": "subrip"}


@dataclass(frozen=True)
class WrittenOutput:
    """Output arguments, what the file will contain, and what had to be re-encoded."""

    args: list[str]
    info: MediaInfo
    video_encoded: bool
    audio_encoded: bool


def write_output(run: RunBuilder, streams: Streams, target: Target, *,
                 force_copy: bool = False, force_encode: bool = False) -> WrittenOutput:
    """``force_copy``: stream-copy or fail (join and transcode ``copy``); ``force_encode``:
    encode even streams that could be copied (``reencode``)."""
    video_args, video_info, video_encoded = _video(run, streams, target, force_copy,
                                                   force_encode)
    audio_args, audio_info, audio_encoded = _audio(run, streams, target, force_copy,
                                                   force_encode)
    subtitle_args, tracks = _subtitles(streams, target)
    info = streams.info.with_(
        format_name=FORMAT_NAMES[target.container],
        kind="video" if video_info.get("has_video") else "audio",
        subtitles=tracks, **video_info, **audio_info,
    )
    length = ["-t", format_number(info.duration)] if tracks and info.duration else []
    args = [*video_args, *audio_args, *subtitle_args, *length, *target.muxer_args(), "{out}"]
    return WrittenOutput(args, info, video_encoded, audio_encoded)


def _video(run: RunBuilder, streams: Streams, target: Target, force_copy: bool,
           force_encode: bool) -> tuple[list[str], dict, bool]:
    pad, info = streams.video, streams.info
    if pad is None or target.video_codec == "none":
        return [], {"has_video": False, "video_codec": None, "width": None, "height": None,
                    "fps": None, "pix_fmt": None, "rotation": 0}, False
    frame_filters, width, height, fps = _frame_changes(info, target)
    keeps_rotation = not info.rotation or target.can_keep_rotation()
    if force_copy or target.video_codec == "copy":
        _check_copy(pad, bool(frame_filters), target.can_copy_video(pad.raw_codec),
                    target.container, "video")
        if not keeps_rotation:
            raise SpecError(("output", "container"),
                            f"{target.container} cannot keep the video's {info.rotation}° "
                            "rotation without re-encoding", "codec_container")
    elif force_encode or not (pad.is_raw and not frame_filters
                              and pad.raw_codec == target.video_codec and keeps_rotation):
        if width and height and width > 1 and height > 1 and (width % 2 or height % 2):
            # yuv420p needs even sizes; odd ones are common in GIFs: drop the last row/column
            width, height = width - width % 2, height - height % 2
            frame_filters.append(filter_spec("crop", w=width, h=height, x=0, y=0))
        if frame_filters:
            pad = run.chain([pad], frame_filters, "v")
        run.consume(pad)
        # Frames keep their own timing: for mp4 FFmpeg would otherwise make the frame rate
        # constant at the input's rate guess, which for a variable frame rate recording with
        # 1 ms timestamps means duplicating frames up to 1000 per second.
        return ["-map", pad.map_arg, *target.video_encoder_args(), "-fps_mode:v", "vfr"], {
            "has_video": True, "video_codec": target.video_codec, "width": width,
            "height": height, "fps": fps, "pix_fmt": "yuv420p", "rotation": 0}, True
    run.consume(pad)
    return ["-map", pad.map_arg, "-c:v", "copy"], {
        "has_video": True, "video_codec": pad.raw_codec}, False


def _audio(run: RunBuilder, streams: Streams, target: Target, force_copy: bool,
           force_encode: bool) -> tuple[list[str], dict, bool]:
    pad = streams.audio
    if pad is None or target.audio_codec == "none":
        return [], {"has_audio": False, "audio_codec": None, "sample_rate": None,
                    "channels": None}, False
    run.consume(pad)
    if force_copy or target.audio_codec == "copy":
        _check_copy(pad, False, target.can_copy_audio(pad.raw_codec), target.container, "audio")
    elif force_encode or not (pad.is_raw and pad.raw_codec == target.probed_audio_codec):
        return ["-map", pad.map_arg, *target.audio_encoder_args()], {
            "has_audio": True, "audio_codec": target.probed_audio_codec}, True
    return ["-map", pad.map_arg, "-c:a", "copy"], {
        "has_audio": True, "audio_codec": pad.raw_codec}, False


def _check_copy(pad: Pad, changes_frames: bool, container_ok: bool, container: str,
                stream: str) -> None:
    if not pad.is_raw or changes_frames:
        raise SpecError(("output", f"{stream}_codec"),
                        f"this job changes the {stream}, so it cannot be stream-copied",
                        "copy_conflict")
    if not container_ok:
        raise SpecError(("output", "container"),
                        f"{container} cannot hold {pad.raw_codec} {stream} without re-encoding",
                        "codec_container")


def _frame_changes(info: MediaInfo,
                   target: Target) -> tuple[list[str], int | None, int | None, float | None]:
    """Filters for the requested frame size and rate, and the resulting width/height/fps."""
    chain: list[str] = []
    width, height, fps = info.width, info.height, info.fps
    if (target.width or target.height) and info.width and info.height:
        width, height = filters.frame_size(target.width, target.height, info.width, info.height)
        if (width, height) != (info.width, info.height):
            chain += filters.fit_to_frame(width, height)
    if target.fps and target.fps != info.fps:
        chain.append(filters.set_fps(target.fps))
        fps = target.fps
    return chain, width, height, fps


def _subtitles(streams: Streams, target: Target) -> tuple[list[str], tuple[SubtitleTrack, ...]]:
    args: list[str] = []
    tracks = []
    for n, subtitle in enumerate(streams.subtitles):
        codec = target.subtitle_codec(subtitle.track.codec)
        args += ["-map", subtitle.map_arg, f"-c:s:{n}", codec]
        if subtitle.track.language:
            args += [f"-metadata:s:s:{n}", f"language={subtitle.track.language}"]
        tracks.append(SubtitleTrack(_PROBED_SUBTITLE_CODECS.get(codec, codec),
                                    subtitle.track.language))
    return args, tuple(tracks)
