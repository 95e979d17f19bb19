"""Structured logging: ``key=value`` lines for people or one JSON object per line for collectors.

Services log with ``logger.info("message", extra={"fields": {...}})``; the formatter renders the fields.
Secrets never reach a log call: callers pass names and identifiers, never credentials. Text lines show control
characters as escapes (:func:`pippin.printable.printable`): a request path or a device's asset tag carrying ESC,
NUL or a newline can neither drive the reader's terminal nor forge a second log line.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from pippin.printable import printable


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return dict(fields) if isinstance(fields, dict) else {}


class TextFormatter(logging.Formatter):
    """``2026-01-01T00:00:00Z INFO pippin.dep.sync sync finished token=acme added=3``."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        parts = [stamp, record.levelname, printable(record.name), printable(record.getMessage())]
        parts += [f"{printable(str(key))}={printable(str(value))}" for key, value in _fields(record).items()]
        line = " ".join(parts)
        if record.exc_info:
            # A traceback keeps its lines; only what is inside each line (an exception's message) is escaped.
            trace = self.formatException(record.exc_info)
            line += "\n" + "\n".join(printable(part) for part in trace.split("\n"))
        return line


class JSONFormatter(logging.Formatter):
    """One JSON object per line with ``ts``, ``level``, ``logger``, ``message`` and the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload.update(_fields(record))
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


class StandardErrorHandler(logging.StreamHandler[TextIO]):
    """Writes each record to whatever ``sys.stderr`` is when the record is emitted.

    A handler holding the stream it was created with keeps writing to it after it is replaced and closed (a test
    runner capturing output, a command run in-process), and every later record then fails with "I/O operation on
    closed file"; looking ``sys.stderr`` up per record follows the replacement instead.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        """Ignored: the stream is always the current ``sys.stderr``."""


#: Loggers written in Pippin's format besides its own: the web server's (``pippin serve`` runs uvicorn without
#: a logging set-up of its own), so every line of a server's log is in one format and escaped alike.
SERVED_LOGGERS = ("pippin", "uvicorn")


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Send Pippin's log records to standard error in the chosen format; safe to call more than once."""
    handler = StandardErrorHandler()
    handler.setFormatter(JSONFormatter() if fmt == "json" else TextFormatter())
    for name in SERVED_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
