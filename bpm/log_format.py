"""The two shapes of a log line: text for people, one JSON object per line for machines.

Settings choose one with BPM_LOG_FORMAT; both show the fields of `bpm.log_context`.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from bpm.log_context import FIELDS

FORMATS = ("text", "json")
QUIET = "WARNING"
PROJECT_LOGGERS = ("bpm", "orders", "payments", "notifications")


def _rank(level: str) -> int:
    return int(logging.getLevelName(level))


class TextFormatter(logging.Formatter):
    """`time level logger message [field=value ...]`, then the traceback on the lines below."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        fields = " ".join(
            f"{name}={getattr(record, name)}" for name in FIELDS if hasattr(record, name)
        )
        return f"{line} [{fields}]" if fields else line


class JSONFormatter(logging.Formatter):
    """One JSON object per record, on one line: a traceback is a field, never more lines."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: a field or message argument of an odd type still makes a valid line.
        return json.dumps(entry, default=str, ensure_ascii=False)


def logging_config(log_format: str, level: str) -> dict[str, Any]:
    """Return the LOGGING setting: every logger, Django's and RQ's included, writes through one
    handler on the root logger, in `log_format`, with the context fields."""
    formatter = JSONFormatter if log_format == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "bpm.log_context.ContextFilter"}},
        "formatters": {"line": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "line",
                "filters": ["context"],
            }
        },
        # Libraries say only what matters (axes, for one, announces itself at INFO in every
        # process); the project's own loggers, Django's and RQ's speak at `level`.
        "root": {"handlers": ["console"], "level": QUIET if _rank(level) < _rank(QUIET) else level},
        "loggers": {
            **{name: {"level": level} for name in PROJECT_LOGGERS},
            # Django's own handlers (console with DEBUG, runserver's request lines) are replaced:
            # their records reach the root handler instead, in the chosen format.
            "django": {"handlers": [], "level": level, "propagate": True},
            "django.server": {"handlers": [], "level": level, "propagate": True},
            # RQ gives its loggers handlers of its own only when none is found up the tree;
            # the root handler is found, so RQ's lines come out in this format too.
            "rq": {"handlers": [], "level": level, "propagate": True},
        },
    }


def gunicorn_logconfig_dict(log_format: str, level: str) -> dict[str, Any]:
    """Return a gunicorn `logconfig_dict` that writes gunicorn's error and access lines in the
    same format (gunicorn configures its own loggers, apart from Django's settings)."""
    config = logging_config(log_format, level)
    config["loggers"] = {
        "gunicorn.error": {"handlers": [], "level": level, "propagate": True},
        "gunicorn.access": {"handlers": [], "level": level, "propagate": True},
    }
    return config
