"""Log lines: JSON in production, readable text in development, each tagged with its request.

Every line written while a request is handled carries its `request_id` and, once the
credential check has run, its `user_id`: both live in context variables, set by the
request middleware (`app.core.observability`) and by `bind_user_id`.

Secrets stay out: nothing here logs headers, bodies or query strings, and the loggers
that would (SQLAlchemy's statement log with its parameters, aiosqlite's debug lines)
are held at WARNING unless `DB_ECHO` asks for statements. The console mailer writes
to standard output, never through logging.
"""

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

from app.core.config import Environment, Settings

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
USER_ID: ContextVar[int | None] = ContextVar("user_id", default=None)

# What every LogRecord has; anything else on a record came from `extra=` and is logged.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, None, None, None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's coloured copy of its message
}
# Built once: json.dumps with options builds a new encoder per call.
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)
# Libraries whose INFO or DEBUG lines would carry SQL parameters or be one line per query.
_QUIET_LOGGERS = ("sqlalchemy", "aiosqlite")


def bind_user_id(user_id: int) -> None:
    """Tag the rest of this request's log lines with the authenticated user's id."""
    USER_ID.set(user_id)


class RequestContextFilter(logging.Filter):
    """Copies the request id and user id into each record, in the thread that logs it."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = REQUEST_ID.get()
        if request_id is not None:
            record.request_id = request_id
            user_id = USER_ID.get()
            if user_id is not None:
                record.user_id = user_id
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request context, extras."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES:
                payload[key] = value
        if record.exc_info:
            record.exc_text = record.exc_text or self.formatException(record.exc_info)
        if record.exc_text:
            payload["exception"] = record.exc_text
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        return _ENCODER.encode(payload)


class TextFormatter(logging.Formatter):
    """For development: `12:00:01.234 INFO     app.requests  GET /health/live 200 0.4ms`,
    then `[request_id=... user_id=7]` when a request is under way."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03d %(levelname)-8s %(name)s  %(message)s", "%X")

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        context = " ".join(
            f"{key}={value}"
            for key in ("request_id", "user_id")
            if (value := getattr(record, key, None)) is not None
        )
        return f"{line}  [{context}]" if context else line


class _Stderr:
    """Standard error as it is when a line is written: test runners swap `sys.stderr`."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class LogHandler(logging.StreamHandler[Any]):
    """The service's one handler on the root logger; `configure_logging` replaces it."""


def configure_logging(settings: Settings, stream: TextIO | None = None) -> LogHandler:
    """Route every logger, uvicorn's included, through one handler in the configured format.

    Called by each `create_app`, so it replaces the handler it installed before and
    leaves any other (a test runner's) alone. Lines go to standard error by default.
    """
    use_json = settings.log_format == "json" or (
        settings.log_format == "auto" and settings.environment is not Environment.DEVELOPMENT
    )
    handler = LogHandler(stream if stream is not None else _Stderr())
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger()
    for previous in [h for h in root.handlers if isinstance(h, LogHandler)]:
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    # The request line of `app.requests` replaces uvicorn's access log, which has no
    # route template, request id or user id.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler
