"""Assembling one FFmpeg run: placed inputs, ``-i`` options, filter chains, labels.

Operations (``core.plan.ops``) work on :class:`Streams` — the current video/audio pads and
carried subtitle tracks — and return new Streams. A :class:`Pad` is either an untouched input
stream (``0:v:0``, which can still be stream-copied) or a filter output label (``v3``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

from core.containers import DEMUXER_EXTENSIONS
from core.mediainfo import MediaInfo, SubtitleTrack
from core.plan.escape import PathPlaceholder, concat_list
from core.plan.model import PlanInput


class UnsupportedMedia(ValueError):
    """A probed format the planner will not hand to FFmpeg."""


@dataclass(frozen=True)
class Pad:
    """A stream inside the run: an input stream specifier or a filter output label."""

    label: str
    raw_codec: str | None = None  # set while the pad is an untouched input stream

    @property
    def is_raw(self) -> bool:
        return self.raw_codec is not None

    @property
    def link(self) -> str:
        return f"[{self.label}]"

    @property
    def map_arg(self) -> str:
        return self.label if self.is_raw else f"[{self.label}]"


@dataclass(frozen=True)
class EmbeddedSubtitle:
    """A subtitle stream to map into the output (``-map 2:s:0``)."""

    map_arg: str
    track: SubtitleTrack


@dataclass(frozen=True)
class Streams:
    """What a step hands to the next: pads plus the predicted facts about them."""

    info: MediaInfo
    video: Pad | None
    audio: Pad | None
    subtitles: tuple[EmbeddedSubtitle, ...] = ()

    def with_video(self, pad: Pad, **info_changes: object) -> Streams:
        return replace(self, video=pad, info=self.info.with_(**info_changes))

    def with_audio(self, pad: Pad, **info_changes: object) -> Streams:
        return replace(self, audio=pad, info=self.info.with_(has_audio=True, **info_changes))


class RunBuilder:
    """Collects the pieces of one FFmpeg command line."""

    def __init__(self) -> None:
        self.placed: dict[str, PlanInput] = {}  # by source, so a file is placed once
        self.input_args: list[str] = []
        self.video_inputs: list[str] = []
        self.chains: list[str] = []
        self.scratch_files: dict[str, str] = {}
        self._input_count = 0
        self._labels = itertools.count()
        self._unconsumed: list[Pad] = []  # filter outputs nothing reads yet

    # -- inputs ---------------------------------------------------------------------------

    def place(self, source: str, info: MediaInfo) -> PlanInput:
        """Ask the runner to put ``source`` in the step directory under a name we choose."""
        if source not in self.placed:
            extension = DEMUXER_EXTENSIONS.get(info.demuxer)
            if extension is None:
                raise UnsupportedMedia(f"unsupported container {info.format_name!r}")
            name = f"in{len(self.placed)}"
            is_step = source.startswith("@")
            self.placed[source] = PlanInput(
                placeholder=name, filename=f"{name}.{extension}",
                file_id=None if is_step else source, step_id=source[1:] if is_step else None)
        return self.placed[source]

    def open(self, source: str, info: MediaInfo, *, loop: bool = False,
             carry_subtitles: bool = False, window: list[str] | None = None) -> Streams:
        """Add ``source`` as an FFmpeg input and return its first video/audio streams.

        ``window`` is input options such as ``["-ss", "1.5", "-t", "2"]``: FFmpeg then reads
        (and, when decoding, delivers frame-exactly) only that stretch of the file.
        """
        placed = self.place(source, info)
        options = [*(["-stream_loop", "-1"] if loop else []), *(window or [])]
        index = self._add_input(f"{{{placed.placeholder}}}", info.demuxer, options,
                                decodes_video=info.kind == "video")
        return self._streams(index, info, carry_subtitles)

    def open_subtitle_stream(self, source: str, info: MediaInfo) -> int:
        placed = self.place(source, info)
        return self._add_input(f"{{{placed.placeholder}}}", info.demuxer, [], decodes_video=False)

    def open_concat(self, sources: list[tuple[str, MediaInfo]], joined: MediaInfo,
                    points: list[tuple[float | None, float | None]] | None = None) -> Streams:
        """The concat demuxer over placed inputs: packets joined without decoding. ``points``
        gives each entry an in and out point (a source may then appear several times).

        ``-safe 1`` (the default, spelled out) only accepts plain relative names, and
        ``-format_whitelist`` — inherited by the files the list opens — limits those files to
        the demuxers their probe reported.
        """
        names = [self.place(source, info).filename for source, info in sources]
        list_name = self.scratch_name("concat", "txt")
        self.scratch_files[list_name] = concat_list(names, points)
        demuxers = ",".join(sorted({"concat", *(info.demuxer for _, info in sources)}))
        index = self._add_input(f"{{scratch:{list_name}}}", "concat",
                                ["-format_whitelist", demuxers], after_format=["-safe", "1"],
                                decodes_video=joined.has_video)
        return self._streams(index, joined, carry_subtitles=False)

    def _add_input(self, target: str, demuxer: str, options: list[str], *,
                   decodes_video: bool, after_format: list[str] | None = None) -> int:
        # -protocol_whitelist binds to the next -i only, so every input repeats it.
        self.input_args += ["-protocol_whitelist", "file", *options, "-f", demuxer,
                            *(after_format or []), "-i", target]
        if decodes_video:
            self.video_inputs.append(target)
        index = self._input_count
        self._input_count += 1
        return index

    @staticmethod
    def _streams(index: int, info: MediaInfo, carry_subtitles: bool) -> Streams:
        video = Pad(f"{index}:v:0", info.video_codec or "unknown") if info.has_video else None
        audio = Pad(f"{index}:a:0", info.audio_codec or "unknown") if info.has_audio else None
        subtitles = tuple(
            EmbeddedSubtitle(f"{index}:s:{n}", track) for n, track in enumerate(info.subtitles)
        ) if carry_subtitles else ()
        return Streams(info.with_(subtitles=tuple(s.track for s in subtitles)), video, audio,
                       subtitles)

    # -- scratch files --------------------------------------------------------------------

    def scratch_name(self, stem: str, extension: str) -> str:
        """``text.txt``, then ``text-2.txt``...: unique within the run."""
        name, counter = f"{stem}.{extension}", 2
        while name in self.scratch_files:
            name, counter = f"{stem}-{counter}.{extension}", counter + 1
        return name

    def scratch_file(self, stem: str, extension: str, content: str) -> PathPlaceholder:
        name = self.scratch_name(stem, extension)
        self.scratch_files[name] = content
        return PathPlaceholder(f"{{scratch:{name}}}")

    # -- filters --------------------------------------------------------------------------

    def chain(self, inputs: list[Pad], filters: list[str], prefix: str) -> Pad:
        """``[in]f1,f2[prefixN]``: one filter chain with one output."""
        return self.chain_multi(inputs, filters, [prefix])[0]

    def chain_multi(self, inputs: list[Pad], filters: list[str], prefixes: list[str]) -> list[Pad]:
        """Like :meth:`chain` with several outputs; prefix ``a`` marks an audio output."""
        outputs = [Pad(f"{prefix}{next(self._labels)}") for prefix in prefixes]
        for pad in inputs:
            self.consume(pad)
        self._unconsumed += outputs
        self.chains.append(
            "".join(pad.link for pad in inputs) + ",".join(filters)
            + "".join(pad.link for pad in outputs)
        )
        return outputs

    def consume(self, pad: Pad) -> None:
        """Mark a pad as read (by a filter or a ``-map``)."""
        if pad in self._unconsumed:
            self._unconsumed.remove(pad)

    def filter_args(self) -> list[str]:
        """``-filter_complex``; outputs nobody reads (e.g. the audio a ``replace`` dropped)
        go to null sinks, since FFmpeg refuses a graph with unconnected outputs."""
        for pad in self._unconsumed:
            sink = "anullsink" if pad.label.startswith("a") else "nullsink"
            self.chains.append(f"{pad.link}{sink}")
        self._unconsumed.clear()
        return ["-filter_complex", ";".join(self.chains)] if self.chains else []
