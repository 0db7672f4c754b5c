"""Steps whose result is a directory of files: ``thumbnails`` and ``package``.

Each is one FFmpeg run that decodes its input once: ``select`` picks the thumbnail frames
(``tile`` lays them on sprite sheets); ``split`` feeds one ``scale`` per rendition of a
package, and the ``hls`` or ``dash`` muxer writes every playlist and segment. The output is
a directory (``{out}``, see :mod:`core.plan.model`) that the runner stores member by member
and publishes as one ``package`` File (docs/API.md, "Package files").

Everything that lands in an argument or the filtergraph is a number we computed or a name
we chose; user input only picks among them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.mediainfo import MediaInfo
from core.packages import HLS_ENTRY
from core.plan import filters
from core.plan.escape import filter_spec, format_number
from core.plan.graph import Streams
from core.plan.ops import DEFAULT_FPS, StepContext
from core.plan.target import Target
from core.spec import PackageParams, Rendition, ThumbnailsParams, bitrate_bps

MAX_THUMBNAILS = 100
#: Encoder options of each thumbnail format (and the extension of its files).
IMAGE_ENCODERS: dict[str, list[str]] = {
    "jpg": ["-c:v", "mjpeg", "-q:v", "3", "-pix_fmt", "yuvj420p"],
    "png": ["-c:v", "png"],
    "webp": ["-c:v", "libwebp", "-quality", "80"],
}
#: The default ladder: (height, video bitrate); every rung gets 128k audio.
DEFAULT_LADDER: tuple[tuple[int, str], ...] = (
    (1080, "5000k"), (720, "2800k"), (480, "1400k"), (360, "800k"))
DEFAULT_AUDIO_BITRATE = "128k"
#: A rendition's video bitrate when only its height is given: the first row at or below it.
BITRATE_BY_HEIGHT: tuple[tuple[int, str], ...] = (
    (2160, "12000k"), (1440, "8000k"), (1080, "5000k"), (720, "2800k"), (480, "1400k"),
    (360, "800k"), (240, "400k"), (0, "250k"))
ENTRY_DASH = "manifest.mpd"
SPRITE_INDEX = "sprite.vtt"
WEIGHT_DECODE = 0.3


@dataclass
class DirectoryOutput:
    """Output arguments of a directory run, and what the runner and the File need."""

    args: list[str]
    entry: str
    metadata: dict[str, Any]
    expected_seconds: float
    weight: float
    extras: dict[str, str] = field(default_factory=dict)


def _source_video(ctx: StepContext, ref: str) -> tuple[Streams, MediaInfo, float]:
    source = ctx.open(("input",), ref)
    info = source.info
    if source.video is None or not info.width or not info.height:
        raise ctx.error(("input",), "has no video stream", "no_video")
    if not info.duration:
        raise ctx.error(("input",), "the media duration is unknown", "unknown_duration")
    return source, info, info.duration


# --------------------------------------------------------------------------- thumbnails


def thumbnails(ctx: StepContext, params: ThumbnailsParams) -> DirectoryOutput:
    """Frames at the chosen times, scaled to ``width``; single images or sprite sheets."""
    source, info, seconds = _source_video(ctx, params.input)
    assert source.video is not None and info.width and info.height
    fps = info.fps or DEFAULT_FPS
    times, cues = _thumbnail_times(ctx, params, seconds, fps)
    width, height = params.width, filters.even(params.width * info.height / info.width)
    chain = [filter_spec("select", expr=_select_expression(times, fps)),
             filter_spec("scale", w=width, h=height), filter_spec("setsar", sar="1")]
    sprite = params.sprite
    if sprite is not None:
        chain.append(filter_spec("tile", layout=f"{sprite.columns}x{sprite.rows}"))
    picked = ctx.run.chain([source.video], chain, "v")
    ctx.run.consume(picked)
    stem = "sprite" if sprite else "thumb"
    pattern = f"{stem}-%03d.{params.format}"
    metadata: dict[str, Any] = {
        "format": "sprite" if sprite else "thumbnails", "image_format": params.format,
        "count": len(times), "width": width, "height": height, "duration": seconds,
        "times": [round(t, 3) for t in times],
    }
    extras: dict[str, str] = {}
    if sprite is not None:
        per_sheet = sprite.columns * sprite.rows
        metadata.update(columns=sprite.columns, rows=sprite.rows,
                        sheets=math.ceil(len(times) / per_sheet),
                        sheet_width=width * sprite.columns, sheet_height=height * sprite.rows)
        extras[SPRITE_INDEX] = sprite_vtt(cues, f"{stem}-{{:03d}}.{params.format}",
                                          sprite.columns, sprite.rows, width, height)
        entry = SPRITE_INDEX
    else:
        entry = f"{stem}-001.{params.format}"
    args = ["-map", picked.map_arg, "-fps_mode", "passthrough",
            *IMAGE_ENCODERS[params.format], "-f", "image2", f"{{out}}/{pattern}"]
    return DirectoryOutput(args, entry, metadata, expected_seconds=seconds,
                           weight=seconds * WEIGHT_DECODE, extras=extras)


def _thumbnail_times(ctx: StepContext, params: ThumbnailsParams, seconds: float,
                     fps: float) -> tuple[list[float], list[tuple[float, float]]]:
    """Frame times in order, and the stretch of the media each stands for (cues that cover
    it from 0 to the end). Two times within one frame of each other are refused (they
    could be one image)."""
    if params.count is not None:
        step = seconds / params.count
        spans = [(n * step, (n + 1) * step) for n in range(params.count)]
        times = [(start + end) / 2 for start, end in spans]
    elif params.every is not None:
        count = math.ceil(seconds / params.every - 1e-9)
        if count > MAX_THUMBNAILS:
            raise ctx.error(("every",), f"gives {count} frames of {format_number(seconds)} s; "
                                        f"at most {MAX_THUMBNAILS}", "too_many_frames")
        times = [n * params.every for n in range(count)]
        spans = [(t, min(t + params.every, seconds)) for t in times]
    else:
        assert params.at is not None
        order = sorted(range(len(params.at)), key=lambda n: params.at[n])  # type: ignore[index]
        for n in order:
            if params.at[n] >= seconds:
                raise ctx.error(("at", n), f"is not before the end of the media "
                                           f"({format_number(seconds)} s)", "out_of_range")
        times = [params.at[n] for n in order]
        bounds = [0.0, *times[1:], seconds]
        spans = list(zip(bounds[:-1], bounds[1:], strict=True))
    for earlier, later in zip(times, times[1:], strict=False):
        if later - earlier < 1 / fps - 1e-6:
            raise ctx.error(("at",) if params.at is not None else ("count",),
                            "two thumbnails would be the same frame; space them at least "
                            "one frame apart", "thumbnail_times")
    return times, [(start, min(end, seconds)) for start, end in spans]


def _select_expression(times: list[float], fps: float) -> str:
    """True on the frame shown at each time: the first frame at or after the time less
    (almost) one frame, so a time in the last frame's span still finds it (``prev_pts`` is
    NaN on the first frame, so ``not(gte(...))`` holds there). The terms are summed as a
    balanced tree: FFmpeg's expression parser refuses a flat chain of about a hundred."""
    thresholds = [format_number(max(0.0, t - 0.999 / fps)) for t in times]
    terms = [f"gte(t,{at})*not(gte(prev_pts*TB,{at}))" for at in thresholds]
    return _balanced_sum(terms)


def _balanced_sum(terms: list[str]) -> str:
    if len(terms) <= 4:
        return "+".join(terms)
    middle = len(terms) // 2
    return f"({_balanced_sum(terms[:middle])})+({_balanced_sum(terms[middle:])})"


def sprite_vtt(cues: list[tuple[float, float]], sheet_name: str, columns: int, rows: int,
               width: int, height: int) -> str:
    """A WebVTT thumbnail track: cue ``n`` points at tile ``n`` (row-major, sheet by sheet)
    as ``<sheet>#xywh=x,y,w,h``; ``sheet_name`` formats the 1-based sheet number."""
    per_sheet = columns * rows
    lines = ["WEBVTT", ""]
    for n, (start, end) in enumerate(cues):
        sheet, tile = divmod(n, per_sheet)
        row, column = divmod(tile, columns)
        lines += [f"{_vtt_time(start)} --> {_vtt_time(end)}",
                  f"{sheet_name.format(sheet + 1)}#xywh={column * width},{row * height},"
                  f"{width},{height}", ""]
    return "\n".join(lines)


def _vtt_time(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


# --------------------------------------------------------------------------- package


@dataclass(frozen=True)
class Rung:
    height: int
    width: int
    video_bitrate: str
    audio_bitrate: str

    def public(self) -> dict[str, Any]:
        return {"height": self.height, "width": self.width, "video_bitrate": self.video_bitrate,
                "audio_bitrate": self.audio_bitrate}


def ladder(renditions: list[Rendition] | None, source_width: int,
           source_height: int) -> list[Rung]:
    """The renditions to make, tallest first.

    Rungs above the source height are dropped; when any was, and none is at the source
    height, one at the source height (with the bitrates of the lowest dropped rung) takes
    their place. Equal heights collapse into the first of them.
    """
    wanted = [(r.height, r.video_bitrate or _bitrate_for(r.height),
               r.audio_bitrate or DEFAULT_AUDIO_BITRATE) for r in renditions] \
        if renditions else [(h, rate, DEFAULT_AUDIO_BITRATE) for h, rate in DEFAULT_LADDER]
    source = source_height - source_height % 2
    kept = [rung for rung in wanted if rung[0] <= source]
    dropped = [rung for rung in wanted if rung[0] > source]
    if dropped and all(height != source for height, _, _ in kept):
        lowest = min(dropped, key=lambda rung: rung[0])
        kept.append((source, lowest[1], lowest[2]))
    rungs: dict[int, Rung] = {}
    for height, video, audio in sorted(kept, key=lambda rung: -rung[0]):
        width = filters.even(height * source_width / source_height)
        rungs.setdefault(height, Rung(height, width, video, audio))
    return list(rungs.values())


def _bitrate_for(height: int) -> str:
    return next(rate for floor, rate in BITRATE_BY_HEIGHT if height >= floor)


def package(ctx: StepContext, params: PackageParams) -> DirectoryOutput:
    """Every rendition from one decode: ``split`` into one ``scale`` per rung, H.264/AAC
    with keyframes forced on segment boundaries, then the hls or dash muxer."""
    source, info, seconds = _source_video(ctx, params.input)
    assert source.video is not None and info.width and info.height
    rungs = ladder(params.renditions, info.width, info.height)
    count = len(rungs)
    branches = ctx.run.chain_multi([source.video], [filter_spec("split", outputs=count)],
                                   ["v"] * count) if count > 1 else [source.video]
    target = Target.rendition(ctx.output.preset)
    args: list[str] = []
    for branch, rung in zip(branches, rungs, strict=True):
        scaled = ctx.run.chain([branch], [
            filter_spec("scale", w=rung.width, h=rung.height), filter_spec("setsar", sar="1")],
            "v")
        ctx.run.consume(scaled)
        args += ["-map", scaled.map_arg]
    audio_rates: list[str] = []
    if source.audio is not None:
        audio_rates = _audio_bitrates(params, rungs)
        args += ["-map", source.audio.map_arg] * len(audio_rates)
    args += _rendition_encoders(target, rungs, audio_rates, params.segment_seconds)
    if params.format == "hls":
        args += _hls_muxer(params, rungs, audio_rates)
        entry = HLS_ENTRY
    else:
        args += _dash_muxer(params, bool(audio_rates))
        entry = ENTRY_DASH
    pixels = sum(rung.width * rung.height for rung in rungs) / (info.width * info.height)
    metadata: dict[str, Any] = {"format": params.format, "duration": seconds,
                "segment_seconds": params.segment_seconds,
                "renditions": [rung.public() for rung in rungs]}
    if params.format == "hls":
        metadata["segment_type"] = params.hls_segment_type
    return DirectoryOutput(args, entry, metadata, expected_seconds=seconds,
                           weight=seconds * max(1.0, pixels))


def _audio_bitrates(params: PackageParams, rungs: list[Rung]) -> list[str]:
    """One AAC encode per distinct audio bitrate (HLS: an audio group each, shared by the
    renditions asking for it), or the first rendition's for DASH's one audio set."""
    if params.format == "dash":
        return [rungs[0].audio_bitrate]
    return list(dict.fromkeys(rung.audio_bitrate for rung in rungs))


def _rendition_encoders(target: Target, rungs: list[Rung], audio_rates: list[str],
                        segment_seconds: float) -> list[str]:
    args = ["-c:v", "libx264", "-preset", target.preset, "-pix_fmt", "yuv420p",
            "-force_key_frames", f"expr:gte(t,n_forced*{format_number(segment_seconds)})"]
    for n, rung in enumerate(rungs):
        rate = bitrate_bps(rung.video_bitrate)
        args += [f"-b:v:{n}", rung.video_bitrate, f"-maxrate:v:{n}", str(rate * 107 // 100),
                 f"-bufsize:v:{n}", str(rate * 3 // 2)]
    if audio_rates:
        args += ["-c:a", "aac", "-ac", "2"]
        for n, audio_rate in enumerate(audio_rates):
            args += [f"-b:a:{n}", audio_rate]
    return args


def _hls_muxer(params: PackageParams, rungs: list[Rung], audio_rates: list[str]) -> list[str]:
    """Flat layout: ``master.m3u8``, video renditions ``v<n>.m3u8``, ``v<n>-init.mp4``,
    ``v<n>-00000.m4s`` (or ``.ts``), and one audio rendition ``a<k>`` per distinct audio
    bitrate, the audio group of the video renditions that asked for it: the audio is
    encoded once per bitrate, not once per rendition."""
    fmp4 = params.hls_segment_type == "fmp4"
    streams = [f"v:{n},agroup:aud{audio_rates.index(rung.audio_bitrate)},name:v{n}"
               if audio_rates else f"v:{n},name:v{n}" for n, rung in enumerate(rungs)]
    streams += [f"a:{k},agroup:aud{k},name:a{k}" for k in range(len(audio_rates))]
    # the muxer expands %v in the init segment's name only when there are several streams
    init = "%v-init.mp4" if len(streams) > 1 else "v0-init.mp4"
    return ["-f", "hls", "-hls_time", format_number(params.segment_seconds),
            "-hls_playlist_type", "vod", "-hls_flags", "independent_segments",
            "-hls_segment_type", "fmp4" if fmp4 else "mpegts",
            *(["-hls_fmp4_init_filename", init] if fmp4 else []),
            "-hls_segment_filename", f"{{out}}/%v-%05d.{'m4s' if fmp4 else 'ts'}",
            "-master_pl_name", HLS_ENTRY, "-var_stream_map", " ".join(streams),
            "{out}/%v.m3u8"]


def _dash_muxer(params: PackageParams, with_audio: bool) -> list[str]:
    """One AdaptationSet for the video renditions and one for the audio."""
    sets = "id=0,streams=v" + (" id=1,streams=a" if with_audio else "")
    return ["-f", "dash", "-seg_duration", format_number(params.segment_seconds),
            "-use_template", "1", "-use_timeline", "1",
            "-init_seg_name", "init-$RepresentationID$.m4s",
            "-media_seg_name", "chunk-$RepresentationID$-$Number%05d$.m4s",
            "-adaptation_sets", sets, f"{{out}}/{ENTRY_DASH}"]


MULTI_FILE_OPERATIONS: dict[str, Callable[[StepContext, Any], DirectoryOutput]] = {
    "thumbnails": thumbnails,
    "package": package,
}
