"""The compiled plan: FFmpeg runs with placeholders, and how a runner turns them into argv.

Placeholder convention (the runner's contract)
----------------------------------------------
Each :class:`PlanStep` runs in its own scratch directory ``D``:

* ``{inN}`` — input ``N``; the runner places the file (copy, hard link or download) at
  ``D/<PlanInput.filename>``, e.g. ``D/in0.mp4``. ``PlanInput.file_id`` or
  ``PlanInput.step_id`` (the output of an earlier PlanStep) says what to place.
  Inputs are placed even when argv does not name them: a concat list refers to them by
  their bare file name, and the subtitles filter by path.
* ``{scratch:NAME}`` — the runner writes ``scratch_files[NAME]`` (UTF-8) to ``D/NAME``.
* ``{out}`` — where FFmpeg writes the result, ``D/<output_name>``. For a directory output
  (``output_kind`` ``package``: HLS/DASH packages, thumbnails) ``{out}`` is a directory the
  runner creates first; FFmpeg writes its members there, and the runner adds
  ``output_extras`` (text members such as a sprite's WebVTT index) after it succeeds.

:meth:`PlanStep.paths_in` builds exactly that mapping, and :meth:`PlanStep.render`
substitutes it. A placeholder that is a whole argument becomes the path as is; one followed
by a plain relative name (``{out}/v%v.m3u8``: letters, digits, ``_ . - % $``) becomes the path
joined with that name; one embedded anywhere else (only filtergraphs embed them) becomes the
path escaped for a filtergraph value. Paths must be absolute, so none can start with ``-``
or read as a URL.

One type from compiler to runner
--------------------------------
A :class:`PlanStep` is what ``POST /jobs/validate`` shows, what ``prepare_job`` returns to
the workflow and what the step activity runs: the workflow carries it unchanged across
the activity boundary. Its field names are therefore part of recorded workflow histories;
a new field needs a default, and a renamed one breaks replay. Its annotations are types,
not strings (no ``from __future__ import annotations``), for the data converter's sake
(``workflows/types.py`` says why).
"""

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from core.plan.escape import escape_filter_value

PLACEHOLDER = re.compile(r"\{(in\d+|out|scratch:[A-Za-z0-9_.-]+)\}")
#: A placeholder followed by one plain relative name: a path inside a directory output.
PATH_IN_PLACEHOLDER = re.compile(r"\{(in\d+|out|scratch:[A-Za-z0-9_.-]+)\}(/[A-Za-z0-9_.%$-]+)")
#: ``output_kind`` of a run whose result is a directory of files (one ``package`` File).
DIRECTORY_OUTPUT = "package"


@dataclass(frozen=True)
class PlanInput:
    """A file the runner places in the step's directory before running it: a user's file
    (``file_id``) or an earlier run's output (``step_id``)."""

    placeholder: str  # "in0"
    filename: str  # "in0.mp4": the name it must have in the step directory
    file_id: str | None = None
    step_id: str | None = None

    @property
    def ref(self) -> str:
        """The file id, or ``"@<step id>"`` for an earlier run's output (the spec's notation)."""
        return f"@{self.step_id}" if self.step_id is not None else str(self.file_id)


@dataclass
class PlanStep:
    """One FFmpeg run."""

    index: int
    step_id: str  # the (last) job step it produces; "@<id>" in later inputs names its output
    op: str  # step type, or "fused:join+text+..." when several steps share one run (≤ 32)
    argv: list[str]
    sources: list[PlanInput]
    output_name: str  # "out.mp4"; "out" for a directory output
    output_kind: str = "video"  # "video", "audio", or "package" (a directory of files)
    scratch_files: dict[str, str] = field(default_factory=dict)
    gpu_capable: bool = False  # decodes video, so NVDEC can help; else CPU only (copy/audio)
    expected_seconds: float = 0.0  # seconds of output, for progress percent; 0 when unknown
    weight: float = 1.0  # expected work, for progress across steps
    keep_output: bool = True  # whether the output becomes a job output File
    covers: list[str] = field(default_factory=list)  # job step ids computed by this run
    video_inputs: list[str] = field(default_factory=list)  # "-i" targets that carry video
    # directory outputs only: the member a client opens first ("master.m3u8"), facts known
    # when compiling (merged into the File's metadata), text members the runner adds
    output_entry: str = ""
    output_metadata: dict[str, Any] = field(default_factory=dict)
    output_extras: dict[str, str] = field(default_factory=dict)

    @property
    def is_directory_output(self) -> bool:
        return self.output_kind == DIRECTORY_OUTPUT

    @property
    def output_ext(self) -> str:
        return self.output_name.rsplit(".", 1)[-1]

    def paths_in(self, directory: str) -> dict[str, str]:
        """The standard placeholder → path mapping for a scratch directory."""
        root = PurePosixPath(directory)
        paths = {item.placeholder: str(root / item.filename) for item in self.sources}
        paths.update({f"scratch:{name}": str(root / name) for name in self.scratch_files})
        paths["out"] = str(root / self.output_name)
        return paths

    def render(self, paths: dict[str, str]) -> list[str]:
        """argv with placeholders replaced by real paths (see the module docstring)."""
        self._check_paths(paths)
        return [self._render_arg(arg, paths) for arg in self.argv]

    def public(self) -> dict[str, Any]:
        pool = "gpu-capable" if self.gpu_capable else "cpu"
        return {"step": self.step_id, "op": self.op, "pool": pool, "argv": list(self.argv)}

    def _render_arg(self, arg: str, paths: dict[str, str]) -> str:
        whole = PLACEHOLDER.fullmatch(arg)
        if whole:
            return paths[whole.group(1)]
        inside = PATH_IN_PLACEHOLDER.fullmatch(arg)
        if inside and ".." not in inside.group(2):
            return paths[inside.group(1)] + inside.group(2)
        return PLACEHOLDER.sub(lambda m: escape_filter_value(paths[m.group(1)]), arg)

    def _check_paths(self, paths: dict[str, str]) -> None:
        needed = {m.group(1) for arg in self.argv for m in PLACEHOLDER.finditer(arg)}
        needed |= {item.placeholder for item in self.sources}
        missing = needed - paths.keys()
        if missing:
            raise ValueError(f"no path for placeholders: {sorted(missing)}")
        for name in needed:
            path = paths[name]
            if not PurePosixPath(path).is_absolute() or "\x00" in path or "\n" in path:
                raise ValueError(f"{name}: scratch paths must be absolute: {path!r}")
        self._check_concat_neighbours(paths)

    def _check_concat_neighbours(self, paths: dict[str, str]) -> None:
        """A concat list names inputs relative to itself: they must share its directory."""
        for name in self.scratch_files:
            if not name.startswith("concat"):
                continue
            directory = PurePosixPath(paths[f"scratch:{name}"]).parent
            for item in self.sources:
                if PurePosixPath(paths[item.placeholder]) != directory / item.filename:
                    raise ValueError(f"{item.placeholder} must be {directory / item.filename}")


@dataclass
class Plan:
    """Every FFmpeg run of a job, in execution order (each depends only on earlier ones)."""

    steps: list[PlanStep]
    warnings: list[str] = field(default_factory=list)

    @property
    def outputs(self) -> list[PlanStep]:
        """The runs whose results become job outputs."""
        return [step for step in self.steps if step.keep_output]

    @property
    def media_seconds(self) -> float:
        """Seconds of media the runs produce together."""
        return sum(step.expected_seconds for step in self.steps)

    def public(self) -> list[dict[str, Any]]:
        """``[{step, op, pool, argv}]`` for ``POST /jobs/validate``; placeholders kept."""
        return [step.public() for step in self.steps]


def gpu_argv_variant(step: PlanStep) -> list[str]:
    """argv that decodes video on NVDEC (``-hwaccel cuda`` before each video input).

    Frames come back to system memory, so the CPU filters and libx264 stay as they are (the
    GPU box has no usable NVENC path for us). Steps that decode no video are returned as is.
    """
    if not step.gpu_capable:
        return list(step.argv)
    argv: list[str] = []
    for position, arg in enumerate(step.argv):
        next_arg = step.argv[position + 1] if position + 1 < len(step.argv) else None
        if arg == "-i" and next_arg in step.video_inputs:
            argv += ["-hwaccel", "cuda"]
        argv.append(arg)
    return argv
