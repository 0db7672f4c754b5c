"""One function per step type: add its inputs and filters to a run, return the new Streams.

Each operation receives a :class:`StepContext`, which resolves media parameters either to a
new FFmpeg input or — when the compiler fused this step with the previous one — to the
previous step's streams, without writing them out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.mediainfo import MediaInfo, SubtitleTrack
from core.plan import filters
from core.plan.escape import PathPlaceholder, filter_spec, format_number
from core.plan.graph import EmbeddedSubtitle, Pad, RunBuilder, Streams, UnsupportedMedia
from core.spec import (
    REF_PREFIX,
    AudioOverlayParams,
    JoinParams,
    OutputSpec,
    SpecError,
    SubtitlesParams,
    TextOverlayParams,
    TranscodeParams,
    TrimParams,
    VideoOverlayParams,
)
from core.styles import FONTS

DEFAULT_FPS = 25.0
#: How far past the probed end a trim may reach (probe durations are rounded): beyond it, 422.
TRIM_SLACK_SECONDS = 0.01
#: Properties every input must share for the concat demuxer (and so for stream copy).
CONCAT_KEYS = ("demuxer", "video_codec", "width", "height", "rotation", "fps", "pix_fmt",
               "has_audio", "audio_codec", "sample_rate", "channels")


@dataclass
class StepContext:
    """Everything an operation may use; ``loc`` prefixes SpecError locations."""

    run: RunBuilder
    output: OutputSpec
    loc: tuple[str | int, ...]
    infos: dict[str, MediaInfo]  # file ids and "@<step id>" of materialised outputs
    carried_ref: str | None = None  # "@<previous step id>" when fused with it
    carried: Streams | None = None

    def error(self, field: tuple[str | int, ...], msg: str, kind: str = "spec_error") -> SpecError:
        return SpecError((*self.loc, *field), msg, kind)

    def info(self, field: tuple[str | int, ...], ref: str) -> MediaInfo:
        if ref == self.carried_ref and self.carried is not None:
            return self.carried.info
        if ref not in self.infos:
            raise self.error(field, f"no probe data for {ref}", "missing_media")
        return self.infos[ref]

    def open(self, field: tuple[str | int, ...], ref: str, *, loop: bool = False) -> Streams:
        """The streams of a media parameter: carried from the fused step, or a new input."""
        if ref == self.carried_ref and self.carried is not None:
            if loop:
                raise AssertionError("the compiler never fuses into a looped input")
            return self.carried
        info = self.info(field, ref)
        try:
            return self.run.open(ref, info, loop=loop, carry_subtitles=ref.startswith(REF_PREFIX))
        except UnsupportedMedia as exc:
            raise self.error(field, str(exc), "unsupported_media") from exc

    def duration_of(self, field: tuple[str | int, ...], streams: Streams) -> float:
        if streams.info.duration is None:
            raise self.error(field, "the media duration is unknown", "unknown_duration")
        return streams.info.duration


# --------------------------------------------------------------------------- join


def concat_mismatch(infos: list[MediaInfo]) -> str | None:
    """The first property on which the inputs differ, or None when the demuxer can join them."""
    first = infos[0]
    for key in CONCAT_KEYS:
        if any(getattr(info, key) != getattr(first, key) for info in infos[1:]):
            return key
    return None


def join(ctx: StepContext, params: JoinParams) -> Streams:
    """Concat demuxer when the inputs are files that match; the concat filter otherwise."""
    infos = [ctx.info(("inputs", n), ref) for n, ref in enumerate(params.inputs)]
    has_refs = any(ref.startswith(REF_PREFIX) for ref in params.inputs)
    mismatch = "step outputs" if has_refs else concat_mismatch(infos)
    if params.mode == "copy" and mismatch:
        raise ctx.error(("mode",), f"inputs differ in {mismatch}, so they cannot be joined by "
                                   f"stream copy; use mode auto or reencode", "join_copy")
    if params.mode == "reencode" or mismatch:
        return _join_by_filter(ctx, params, infos)
    joined = infos[0].with_(duration=_total(infos), subtitles=())
    try:
        return ctx.run.open_concat(list(zip(params.inputs, infos, strict=True)), joined)
    except UnsupportedMedia as exc:
        raise ctx.error(("inputs",), str(exc), "unsupported_media") from exc


def _join_by_filter(ctx: StepContext, params: JoinParams, infos: list[MediaInfo]) -> Streams:
    """Normalise every clip (size with black bars, fps, SAR, pixel format, audio) and concat."""
    first = infos[0]
    if first.width is None or first.height is None:
        raise ctx.error(("inputs", 0), "the first input has no frame size", "unknown_size")
    width, height = filters.frame_size(ctx.output.width, ctx.output.height,
                                       first.width, first.height)
    width, height = width - width % 2, height - height % 2  # yuv420p: even sizes only
    fps = ctx.output.fps or first.fps or DEFAULT_FPS
    with_audio = any(info.has_audio for info in infos)
    video_chain = [*filters.fit_to_frame(width, height), filters.set_fps(fps),
                   filter_spec("format", pix_fmts="yuv420p")]
    segments: list[Pad] = []
    for n, ref in enumerate(params.inputs):
        clip = ctx.open(("inputs", n), ref)
        if clip.video is None:
            raise ctx.error(("inputs", n), "has no video stream", "no_video")
        segments.append(ctx.run.chain([clip.video], video_chain, "v"))
        if with_audio:
            segments.append(_segment_audio(ctx, clip, ("inputs", n)))
    labels = ["v", "a"] if with_audio else ["v"]
    concat = filter_spec("concat", n=len(infos), v=1, a=int(with_audio))
    pads = ctx.run.chain_multi(segments, [concat], labels)
    info = first.with_(duration=_total(infos), width=width, height=height, fps=fps,
                       rotation=0, has_audio=with_audio, video_codec=None, pix_fmt="yuv420p",
                       audio_codec=None, sample_rate=filters.AUDIO_RATE if with_audio else None,
                       channels=2 if with_audio else None, subtitles=())
    return Streams(info, pads[0], pads[1] if with_audio else None)


def _segment_audio(ctx: StepContext, clip: Streams, field: tuple[str | int, ...]) -> Pad:
    if clip.audio is not None:
        return ctx.run.chain([clip.audio], [filters.audio_normalise()], "a")
    return ctx.run.chain([], filters.silence(ctx.duration_of(field, clip)), "a")


def _total(infos: list[MediaInfo]) -> float | None:
    durations = [info.duration for info in infos]
    return None if None in durations else sum(durations)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- overlays


def text_overlay(ctx: StepContext, params: TextOverlayParams) -> Streams:
    """drawtext reading the text from a scratch file, literally (``expansion=none``)."""
    base, video = _base_video(ctx, params.video)
    x, y = filters.position(params, "tw", "th")
    box: dict[str, str | int | float] = {
        "box": 1, "boxcolor": filters.ffmpeg_color(params.box_color),
        "boxborderw": max(4, params.font_size // 4),
    } if params.box else {}
    drawtext = filter_spec(
        "drawtext",
        fontfile=FONTS[params.font].file,
        textfile=ctx.run.scratch_file("text", "txt", params.text),
        expansion="none",
        fontsize=params.font_size,
        fontcolor=filters.ffmpeg_color(params.color),
        x=x, y=y, **box,
        **filters.enable_between(params.start, params.end),
    )
    return base.with_video(ctx.run.chain([video], [drawtext], "v"), video_codec=None)


def video_overlay(ctx: StepContext, params: VideoOverlayParams) -> Streams:
    """Scale the overlay relative to the base width, fade its alpha, place it in time."""
    base, video = _base_video(ctx, params.video)
    overlay_info = ctx.info(("overlay",), params.overlay)
    is_image = overlay_info.kind == "image"
    overlay = ctx.open(("overlay",), params.overlay, loop=params.loop and not is_image)
    if overlay.video is None:
        raise ctx.error(("overlay",), "has no picture", "no_video")
    if base.info.width is None:
        raise ctx.error(("video",), "the frame size is unknown", "unknown_size")
    chain = [filter_spec("scale", w=filters.even(base.info.width * params.scale), h=-2)]
    if params.opacity < 1:
        chain += [filter_spec("format", pix_fmts="rgba"),
                  filter_spec("colorchannelmixer", aa=float(params.opacity))]
    if params.start and not is_image:  # the overlay clip starts playing at ``start``
        chain.append(filter_spec("setpts", expr=f"PTS-STARTPTS+{format_number(params.start)}/TB"))
    placed = ctx.run.chain([overlay.video], chain, "o")
    x, y = filters.position(params, "w", "h")
    # Images are one frame repeated (eof_action=repeat); a clip vanishes when it ends unless
    # looped; the base video always sets the length (the base ending stops the overlay).
    timing = ({"eof_action": "repeat"} if is_image
              else {"shortest": 1} if params.loop else {"eof_action": "pass"})
    overlay_filter = filter_spec("overlay", x=x, y=y, **timing,
                                 **filters.enable_between(params.start, params.end))
    return base.with_video(ctx.run.chain([video, placed], [overlay_filter], "v"),
                           video_codec=None)


def audio_overlay(ctx: StepContext, params: AudioOverlayParams) -> Streams:
    """Mix or replace the soundtrack; the result lasts exactly as long as the video."""
    base, _ = _base_video(ctx, params.video)
    duration = ctx.duration_of(("video",), base)
    source = ctx.open(("audio",), params.audio, loop=params.loop)
    if source.audio is None:
        raise ctx.error(("audio",), "has no audio stream", "no_audio")
    added = ctx.run.chain([source.audio], _shaped_audio(params, source.info, duration), "a")
    if params.mode == "mix" and base.audio is not None:
        own = ctx.run.chain([base.audio], [filters.audio_normalise(),
                                           filter_spec("volume", volume=params.video_volume)], "a")
        mix = filter_spec("amix", inputs=2, duration="longest", normalize=0)
        added = ctx.run.chain([own, added], [mix], "a")
    audio = ctx.run.chain([added], filters.fit_audio_duration(duration), "a")
    return base.with_audio(audio, audio_codec=None, sample_rate=filters.AUDIO_RATE, channels=2)


def _shaped_audio(params: AudioOverlayParams, source: MediaInfo, duration: float) -> list[str]:
    """Volume, fades and offset for the added audio, in its own timeline."""
    chain = [filters.audio_normalise(), filter_spec("volume", volume=params.audio_volume)]
    audible = duration - params.offset  # how long the added audio can be heard
    if not params.loop and source.duration is not None:
        audible = min(audible, source.duration)
    if params.fade_in and audible > 0:
        chain.append(filter_spec("afade", t="in", st=0.0, d=min(params.fade_in, audible)))
    if params.fade_out and audible > 0:
        fade = min(params.fade_out, audible)
        chain.append(filter_spec("afade", t="out", st=audible - fade, d=fade))
    if params.offset:
        chain.append(filter_spec("adelay", delays=str(round(params.offset * 1000)), all=1))
    return chain


def subtitles(ctx: StepContext, params: SubtitlesParams) -> Streams:
    """Burn with libass (the file is read by path, never from a user string), or embed."""
    base, video = _base_video(ctx, params.video)
    info = ctx.info(("subtitles",), params.subtitles)
    try:
        if params.mode == "embed":
            index = ctx.run.open_subtitle_stream(params.subtitles, info)
        else:
            placed = ctx.run.place(params.subtitles, info)
    except UnsupportedMedia as exc:
        raise ctx.error(("subtitles",), str(exc), "unsupported_media") from exc
    source_codec = info.subtitles[0].codec if info.subtitles else info.demuxer
    if params.mode == "embed":
        track = EmbeddedSubtitle(f"{index}:s:0", SubtitleTrack(source_codec, params.language))
        return Streams(base.info.with_(subtitles=(*base.info.subtitles, track.track)),
                       base.video, base.audio, (*base.subtitles, track))
    style = filters.libass_style(params.font, _script_font_size(params, source_codec, base))
    burn = filter_spec("subtitles", filename=PathPlaceholder(f"{{{placed.placeholder}}}"),
                       **({"force_style": style} if style else {}))
    return base.with_video(ctx.run.chain([video], [burn], "v"), video_codec=None)


def _script_font_size(params: SubtitlesParams, source_codec: str,
                      base: Streams) -> float | None:
    """Pixels → libass script units (srt/vtt are converted with a 288-line script)."""
    if params.font_size is None or source_codec in ("ass", "ssa") or not base.info.height:
        return params.font_size
    return params.font_size * filters.LIBASS_DEFAULT_PLAY_RES_Y / base.info.height


def _base_video(ctx: StepContext, ref: str) -> tuple[Streams, Pad]:
    """The streams a step draws on, and their video pad (which must exist)."""
    base = ctx.open(("video",), ref)
    if base.video is None:
        raise ctx.error(("video",), "has no video stream", "no_video")
    return base, base.video


# --------------------------------------------------------------------------- transcode, trim


def transcode(ctx: StepContext, params: TranscodeParams) -> Streams:
    """The input as it is: ``core.plan.output`` decides, per stream, copy or encode (the
    compiler passes ``mode`` on as ``force_copy``/``force_encode``)."""
    return ctx.open(("input",), params.input)


def trim(ctx: StepContext, params: TrimParams) -> Streams:
    """Cut one range or several and join them in order.

    * From a file, frame-exact (``accurate``): the file is opened once per range with
      ``-ss``/``-t`` input options — FFmpeg seeks near the range, then decodes and drops
      frames up to its exact start — and the ranges meet in the concat filter, which pads
      a segment's shorter stream, so sound stays in sync across the joins.
    * From a file, on keyframes: one concat-demuxer list naming the file once per range with
      ``inpoint``/``outpoint``; packets are copied, each range starting at the keyframe
      before its in point.
    * Fused after another step (streams, not a file): ``trim``/``atrim`` filters on the
      streams, split when there are several ranges.
    """
    info = ctx.info(("input",), params.input)
    if info.duration is None:
        raise ctx.error(("input",), "the media duration is unknown", "unknown_duration")
    media_seconds = info.duration
    ranges = _checked_ranges(ctx, params, media_seconds)
    total = sum(end - start for start, end in ranges)
    carried = params.input == ctx.carried_ref and ctx.carried is not None
    if carried:
        return _trim_by_filter(ctx, ctx.open(("input",), params.input), ranges, total)
    if not params.accurate:
        points: list[tuple[float | None, float | None]] = [
            (start, None if end >= media_seconds else end) for start, end in ranges]
        joined = info.with_(duration=total, subtitles=())
        try:
            return ctx.run.open_concat([(params.input, info)] * len(ranges), joined, points)
        except UnsupportedMedia as exc:
            raise ctx.error(("input",), str(exc), "unsupported_media") from exc
    pieces = []
    for start, end in ranges:
        window = ["-ss", format_number(start), "-t", format_number(end - start)]
        try:
            clip = ctx.run.open(params.input, info, window=window)
        except UnsupportedMedia as exc:
            raise ctx.error(("input",), str(exc), "unsupported_media") from exc
        pieces.append(_restamped(ctx, clip))
    return _concat_pieces(ctx, pieces, info, total)


def _checked_ranges(ctx: StepContext, params: TrimParams,
                    media_seconds: float) -> list[tuple[float, float]]:
    """The ranges, each inside the media (an end within the slack is clamped to it)."""
    checked = []
    for position, (start, end) in enumerate(params.ranges(media_seconds)):
        assert end is not None  # ranges() fills the media end in
        start_loc: tuple[str | int, ...]
        end_loc: tuple[str | int, ...]
        if params.segments is not None:
            start_loc, end_loc = ("segments", position, "start"), ("segments", position, "end")
        else:
            start_loc = ("start",)
            end_loc = ("duration",) if params.duration is not None else ("end",)
        if start >= media_seconds:
            raise ctx.error(start_loc, f"starts at or after the end of the media "
                                       f"({format_number(media_seconds)} s)", "out_of_range")
        if end > media_seconds + TRIM_SLACK_SECONDS:
            raise ctx.error(end_loc, f"ends after the end of the media "
                                     f"({format_number(media_seconds)} s)", "out_of_range")
        checked.append((start, min(end, media_seconds)))
    return checked


def _restamped(ctx: StepContext, clip: Streams) -> Streams:
    """Timestamps from zero; going through a filter also marks the streams as re-encoded."""
    video = ctx.run.chain([clip.video], [filter_spec("setpts", expr="PTS-STARTPTS")], "v") \
        if clip.video is not None else None
    audio = ctx.run.chain([clip.audio], [filter_spec("asetpts", expr="PTS-STARTPTS")], "a") \
        if clip.audio is not None else None
    return Streams(clip.info, video, audio)


def _concat_pieces(ctx: StepContext, pieces: list[Streams], info: MediaInfo,
                   total: float) -> Streams:
    """One piece as is; several through the concat filter (video and audio together)."""
    first = pieces[0]
    predicted = info.with_(duration=total, video_codec=None, audio_codec=None, subtitles=())
    if len(pieces) == 1:
        return Streams(predicted, first.video, first.audio)
    with_video, with_audio = first.video is not None, first.audio is not None
    inputs: list[Pad] = []
    for piece in pieces:
        inputs += [pad for pad in (piece.video, piece.audio) if pad is not None]
    labels = ["v"] * with_video + ["a"] * with_audio
    concat = filter_spec("concat", n=len(pieces), v=int(with_video), a=int(with_audio))
    pads = ctx.run.chain_multi(inputs, [concat], labels)
    video = pads[0] if with_video else None
    audio = pads[-1] if with_audio else None
    return Streams(predicted, video, audio)


def _trim_by_filter(ctx: StepContext, base: Streams, ranges: list[tuple[float, float]],
                    total: float) -> Streams:
    count = len(ranges)
    videos: list[Pad | None] = [None] * count
    audios: list[Pad | None] = [None] * count
    if base.video is not None:
        videos = list(ctx.run.chain_multi([base.video], [filter_spec("split", outputs=count)],
                                          ["v"] * count)) if count > 1 else [base.video]
    if base.audio is not None:
        audios = list(ctx.run.chain_multi([base.audio], [filter_spec("asplit", outputs=count)],
                                          ["a"] * count)) if count > 1 else [base.audio]
    pieces = []
    for (start, end), video, audio in zip(ranges, videos, audios, strict=True):
        cut_video = ctx.run.chain([video], [
            filter_spec("trim", start=start, end=end),
            filter_spec("setpts", expr="PTS-STARTPTS")], "v") if video is not None else None
        cut_audio = ctx.run.chain([audio], [
            filter_spec("atrim", start=start, end=end),
            filter_spec("asetpts", expr="PTS-STARTPTS")], "a") if audio is not None else None
        pieces.append(Streams(base.info, cut_video, cut_audio))
    return _concat_pieces(ctx, pieces, base.info, total)


OPERATIONS: dict[str, Callable[[StepContext, object], Streams]] = {
    "join": join,  # type: ignore[dict-item]
    "text_overlay": text_overlay,  # type: ignore[dict-item]
    "video_overlay": video_overlay,  # type: ignore[dict-item]
    "audio_overlay": audio_overlay,  # type: ignore[dict-item]
    "subtitles": subtitles,  # type: ignore[dict-item]
    "transcode": transcode,  # type: ignore[dict-item]
    "trim": trim,  # type: ignore[dict-item]
}
