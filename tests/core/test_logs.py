"""MEDIAFLOW_LOG_FORMAT=json (core/logs.py): one JSON object per line, naming the request,
the user, the job, the workflow and the activity attempt it belongs to. The whole path
through real processes is tests/monitoring/test_prometheus.py's log test."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys

from temporalio import activity
from temporalio.testing import ActivityEnvironment

from core.config import Settings
from core.logs import JsonFormatter, bind, log_context, uvicorn_log_config

log = logging.getLogger("mediaflow.test")


def render(record: logging.LogRecord) -> dict:
    return json.loads(JsonFormatter().format(record))


def record(message: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    return log.makeRecord(log.name, logging.INFO, __file__, 1, message, args or ("world",),
                          None, extra=extra or None)


def test_a_line_is_one_object_with_the_record_and_its_extras() -> None:
    line = render(record(status=201, method="POST"))
    assert line["message"] == "hello world" and line["level"] == "INFO"
    assert line["logger"] == "mediaflow.test" and line["time"].endswith("Z")
    assert line["status"] == 201 and line["method"] == "POST"


def test_the_bound_request_and_user_reach_every_line_of_the_block() -> None:
    with log_context(request_id="req-1"):
        bind(user_id="u-7")
        inside = render(record())
    outside = render(record())
    assert inside["request_id"] == "req-1" and inside["user_id"] == "u-7"
    assert "request_id" not in outside and "user_id" not in outside
    bind(user_id="nobody")  # outside a context: nothing to bind to, nothing breaks
    assert "user_id" not in render(record())


def test_exceptions_are_kept_whole_in_one_line() -> None:
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        made = log.makeRecord(log.name, logging.ERROR, __file__, 1, "failed", (),
                              exc_info=sys.exc_info())
    text = JsonFormatter().format(made)
    assert "\n" not in text
    assert "ValueError: bad" in json.loads(text)["exception"]


async def test_lines_logged_inside_an_activity_name_the_job_and_the_attempt() -> None:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id="job-1234", attempt=3,
                                   activity_type="run_ffmpeg_step")

    @activity.defn(name="probe_logging")
    async def logs_something() -> dict:
        return render(record())

    line = await env.run(logs_something)
    assert line["job_id"] == "1234" and line["workflow_id"] == "job-1234"
    assert line["attempt"] == 3 and line["activity"] == "run_ffmpeg_step"


def test_temporal_workflow_logger_extras_are_flattened() -> None:
    line = render(record(temporal_workflow={"workflow_id": "job-99", "workflow_type":
                                            "MediaJobWorkflow", "run_id": "r"}))
    assert line["job_id"] == "99" and line["workflow_type"] == "MediaJobWorkflow"
    assert "temporal_workflow" not in line


def test_the_setting_and_uvicorn_config() -> None:
    assert Settings().log_format == "text"
    assert Settings(log_format="json").log_format == "json"
    config = uvicorn_log_config("INFO", "json")
    assert config["formatters"]["default"]["()"] == "core.logs.JsonFormatter"
    assert config["root"]["handlers"] == ["default"]  # mediaflow's own loggers included


def test_uvicorns_coloured_copy_of_the_message_is_left_out() -> None:
    line = render(record("Started server process [%d]", 42,
                         color_message="Started server process [\x1b[36m%d\x1b[0m]"))
    assert line["message"] == "Started server process [42]"
    assert "color_message" not in line and "\x1b" not in json.dumps(line)
