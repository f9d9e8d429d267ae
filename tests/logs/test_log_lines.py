"""BPM_LOG_FORMAT: one JSON object a line, or text, with the fields of the log context."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest
from subprocesses import ROOT

from bpm import log_context
from bpm.log_format import JSONFormatter, TextFormatter, logging_config


def record(message: str = "hello %s", *args: object, exc: bool = False) -> logging.LogRecord:
    """Return a record as a logger makes it, passed through the context filter."""
    exc_info = None
    if exc:
        try:
            raise ValueError("broken")
        except ValueError:
            exc_info = sys.exc_info()
    made = logging.getLogger("bpm.test").makeRecord(
        "bpm.test", logging.WARNING, __file__, 1, message, args or ("world",), exc_info
    )
    log_context.ContextFilter().filter(made)
    return made


def test_a_json_line_has_time_level_logger_message_and_the_bound_fields():
    with log_context.bound(request_id="r1", saga_id="s1", step="pay", attempt=2, worker="w1"):
        line = JSONFormatter().format(record())
    entry = json.loads(line)
    assert "\n" not in line
    assert entry.pop("time").endswith("+00:00")
    assert entry == {
        "level": "WARNING",
        "logger": "bpm.test",
        "message": "hello world",
        "request_id": "r1",
        "saga_id": "s1",
        "step": "pay",
        "attempt": 2,
        "worker": "w1",
    }


def test_a_traceback_is_a_field_of_the_one_line():
    line = JSONFormatter().format(record(exc=True))
    assert len(line.splitlines()) == 1
    assert "ValueError: broken" in json.loads(line)["exception"]


def test_a_message_with_newlines_and_quotes_stays_one_valid_line():
    line = JSONFormatter().format(record("%s", 'a"b\nc'))
    assert json.loads(line)["message"] == 'a"b\nc'
    assert len(line.splitlines()) == 1


def test_fields_end_with_their_block_and_inner_blocks_add_to_outer_ones():
    with log_context.bound(request_id="outer"):
        with log_context.bound(saga_id="s"):
            assert log_context.current() == {"request_id": "outer", "saga_id": "s"}
        assert log_context.current() == {"request_id": "outer"}
    assert log_context.current() == {}


def test_add_fills_the_innermost_block_and_does_nothing_outside_one():
    log_context.add(saga_id="leaked")
    assert log_context.current() == {}
    with log_context.bound(step="a"):
        log_context.add(request_id="r", attempt=1)
        assert log_context.current() == {"step": "a", "request_id": "r", "attempt": 1}
    assert log_context.current() == {}


def test_an_empty_value_adds_no_field_and_an_unknown_field_is_refused():
    with log_context.bound(request_id=""):
        assert log_context.current() == {}
    with pytest.raises(TypeError, match="unknown log context field"), log_context.bound(user="x"):
        pass


def test_a_text_line_ends_with_the_fields():
    with log_context.bound(request_id="r1", saga_id="s1"):
        line = TextFormatter().format(record())
    assert line.endswith("WARNING bpm.test hello world [request_id=r1 saga_id=s1]")


def test_every_logger_writes_through_the_root_handler_in_the_chosen_format():
    config = logging_config("json", "INFO")
    assert config["formatters"]["line"]["()"] == "bpm.log_format.JSONFormatter"
    assert config["root"]["handlers"] == ["console"]
    for name in ("django", "django.server", "rq"):
        assert config["loggers"][name]["handlers"] == []
        assert config["loggers"][name]["propagate"] is True


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("BPM_LOG_FORMAT", "xml", "BPM_LOG_FORMAT='xml' is not a log format (use text or json)"),
        ("BPM_LOG_LEVEL", "LOUD", "BPM_LOG_LEVEL='LOUD' is not a level"),
        ("BPM_RETAIN_DAYS", "-1", "BPM_RETAIN_DAYS must be a whole number of days"),
        ("BPM_RETAIN_DAYS", "a month", "BPM_RETAIN_DAYS='a month' is not an integer"),
        ("BPM_RETAIN_BATCH", "0", "BPM_RETAIN_BATCH must be between 1 and 10000"),
    ],
)
def test_a_bad_log_or_retention_setting_stops_the_process_with_what_is_wrong(
    variable, value, message
):
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**_environment(), variable: value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert message in result.stderr


def test_a_command_logs_json_lines_only():
    script = (
        "import logging\n"
        "logging.getLogger('rq.worker').info('from rq')\n"
        "logging.getLogger('django.request').warning('from django')\n"
        "try:\n    1 / 0\n"
        "except ZeroDivisionError:\n    logging.getLogger('somelib').exception('from a library')\n"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env={**_environment(), "BPM_LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    entries = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(e["logger"], e["message"]) for e in entries] == [
        ("rq.worker", "from rq"),
        ("django.request", "from django"),
        ("somelib", "from a library"),
    ]
    assert "ZeroDivisionError" in entries[2]["exception"]


def _environment() -> dict[str, str]:
    import os

    return {key: value for key, value in os.environ.items() if not key.startswith("BPM_LOG")}
