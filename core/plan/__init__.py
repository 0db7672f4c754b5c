"""Spec → FFmpeg compiler: ``compile_plan(spec, media)`` returns the runs of a job.

Pure and shared by ``POST /jobs/validate`` (``Plan.public()``) and the activities
(``PlanStep.paths_in`` + ``PlanStep.render``): one source of truth for what FFmpeg runs.
"""

from core.mediainfo import MediaInfo, SubtitleTrack
from core.plan.compiler import compile_plan
from core.plan.model import Plan, PlanInput, PlanStep, gpu_argv_variant

__all__ = [
    "MediaInfo",
    "Plan",
    "PlanInput",
    "PlanStep",
    "SubtitleTrack",
    "compile_plan",
    "gpu_argv_variant",
]
