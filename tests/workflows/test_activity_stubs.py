"""The workflows' activity stubs and the worker's implementations agree: same names, same
argument and result types, nothing registered that no workflow can call."""

from __future__ import annotations

from pathlib import Path

from temporalio import activity

from activities.ffmpeg import FFmpegActivities
from activities.worker import jobs_queue_activities
from core.config import Settings
from core.enums import Pool
from core.storage import get_storage
from workflows.activities import STUBS


def definition(fn: object) -> tuple[str, list, object]:
    found = activity._Definition.must_from_callable(fn)  # type: ignore[arg-type]
    return found.name, list(found.arg_types or []), found.ret_type


def test_every_stub_has_one_implementation_of_the_same_shape(tmp_path: Path) -> None:
    settings = Settings(env="test", data_dir=tmp_path, jwt_secret="x" * 8 + "y1Z2w3V4u5T6s7R8q9P0")
    storage = get_storage(settings)
    implementations = [*jobs_queue_activities(settings, storage),
                       FFmpegActivities(settings, storage, Pool.cpu).run_ffmpeg_step]
    implemented = [definition(fn) for fn in implementations]
    stubs = [definition(fn) for fn in STUBS]

    names = [name for name, _, _ in implemented]
    assert len(names) == len(set(names)), "an activity name is registered twice"
    assert sorted(implemented, key=str) == sorted(stubs, key=str)
    assert all(args for _, args, _ in stubs), "every activity takes one dataclass"
