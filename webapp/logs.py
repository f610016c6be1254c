"""Log lines for people (``LOG_FORMAT=text``) or for machines (``json``: one object per line).

A JSON line has ``ts``, ``level``, ``logger``, ``message``, ``process`` and, while one is being
handled, ``recognition_id``: the web binds it when an upload is stored, the worker while a
``recognize`` task runs (worker/signals.py), so one grep follows a photo through both.
"""
from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

from flask import Flask
from flask.logging import default_handler

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d]: %(message)s"
recognition_id: ContextVar[str | None] = ContextVar("recognition_id", default=None)
log = logging.getLogger(__name__)


def bind_recognition(rec_id: str | None, event: str | None = None) -> None:
    """Tag this context's log lines with ``rec_id`` (None: untag); log ``event`` if given."""
    recognition_id.set(rec_id)
    if event:
        log.info(event)


def current_recognition(record: logging.LogRecord) -> str | None:
    return getattr(record, "recognition_id", None) or recognition_id.get()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        rec_id = current_recognition(record)
        if rec_id:
            line["recognition_id"] = rec_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        rec_id = current_recognition(record)
        return f"{text} [recognition {rec_id}]" if rec_id else text


def formatter(fmt: str) -> logging.Formatter:
    if fmt not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return JsonFormatter() if fmt == "json" else TextFormatter()


class _StderrHandler(logging.StreamHandler):
    """Writes to the ``sys.stderr`` of the moment (test runners and Celery swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def _is_console(handler: logging.Handler) -> bool:
    """Ours, or a plain stream handler on stdout/stderr (alembic's, basicConfig's); not files, not test captures."""
    consoles = (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)
    plain = type(handler) is logging.StreamHandler and handler.stream in consoles
    return plain or isinstance(handler, _StderrHandler)


def configure_logging(app: Flask | None, fmt: str | None = None, level: str | None = None) -> None:
    """One console handler on the root logger with ``fmt``, replacing the console handlers there.

    Reads ``LOG_FORMAT`` and ``LOG_LEVEL`` from the app's config when not given. With an app, the
    recognition id is cleared at the start of every request (threads serve many requests).
    """
    config = app.config if app is not None else {}
    fmt = (fmt or config.get("LOG_FORMAT") or "text").lower()
    level = (level or config.get("LOG_LEVEL") or "INFO").upper()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if _is_console(h)]:
        root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(formatter(fmt))
    root.addHandler(handler)
    root.setLevel(level)
    if fmt == "json":  # gunicorn's own loggers (when it serves the app) print JSON too
        for name in ("gunicorn.error", "gunicorn.access"):
            use_format(logging.getLogger(name), fmt)
    if app is not None:
        app.logger.removeHandler(default_handler)  # records reach the root handler instead

        @app.before_request
        def _untag() -> None:
            recognition_id.set(None)


def use_format(logger: logging.Logger, fmt: str) -> None:
    """Give every handler of ``logger`` our formatter (Celery's and gunicorn's handlers)."""
    for handler in logger.handlers:
        handler.setFormatter(formatter(fmt))
