"""Structured log lines, and a handler that follows ``sys.stderr`` when it is replaced."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from pippin.logs import configure_logging


def test_text_lines_carry_the_records_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    captured = io.StringIO()
    monkeypatch.setattr(sys, "stderr", captured)
    configure_logging("INFO", "text")
    logging.getLogger("pippin.test").info("sync finished", extra={"fields": {"token": "acme", "added": 3}})
    assert captured.getvalue().rstrip().endswith("INFO pippin.test sync finished token=acme added=3")


def test_json_lines_are_one_object_each(monkeypatch: pytest.MonkeyPatch) -> None:
    captured = io.StringIO()
    monkeypatch.setattr(sys, "stderr", captured)
    configure_logging("INFO", "json")
    logging.getLogger("pippin.test").warning("refused", extra={"fields": {"token": "acme"}})
    line = json.loads(captured.getvalue())
    assert line["level"] == "WARNING" and line["message"] == "refused" and line["token"] == "acme"


def test_records_follow_stderr_after_the_stream_they_started_on_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging("INFO", "text")
    logging.getLogger("pippin.test").info("one")
    first.close()  # what a runner capturing a command's output does when the command ends
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("pippin.test").info("two")
    assert "two" in second.getvalue() and "Logging error" not in second.getvalue()


def test_configuring_again_replaces_the_handler_instead_of_adding_one() -> None:
    configure_logging("INFO", "text")
    configure_logging("DEBUG", "json")
    root = logging.getLogger("pippin")
    assert len(root.handlers) == 1 and root.level == logging.DEBUG


def test_control_characters_in_messages_and_fields_are_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    captured = io.StringIO()
    monkeypatch.setattr(sys, "stderr", captured)
    configure_logging("INFO", "text")
    hostile = "/x\x00\x1b[2J\r\n2026-01-01T00:00:00Z INFO pippin forged\u202e\u2028"
    logging.getLogger("pippin.test").info("path %s", hostile, extra={"fields": {"path": hostile, "k\x1b": 1}})
    line = captured.getvalue()
    assert line.count("\n") == 1 and "\x1b" not in line and "\x00" not in line and "\u202e" not in line
    assert "\\x00\\x1b[2J\\r\\n2026" in line and "\\u202e\\u2028" in line and "k\\x1b=1" in line


def test_a_tracebacks_lines_stay_lines_but_its_message_is_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    captured = io.StringIO()
    monkeypatch.setattr(sys, "stderr", captured)
    configure_logging("INFO", "text")
    try:
        raise ValueError("bad \x1b]0;owned\x07 value\u2028next")
    except ValueError:
        logging.getLogger("pippin.test").exception("failed")
    text = captured.getvalue()
    assert "Traceback (most recent call last):" in text and text.count("\n") > 2
    assert "\x1b" not in text and "\x07" not in text and "\u2028" not in text
    assert "bad \\x1b]0;owned\\x07 value\\u2028next" in text


def test_json_lines_stay_json_with_control_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    captured = io.StringIO()
    monkeypatch.setattr(sys, "stderr", captured)
    configure_logging("INFO", "json")
    logging.getLogger("pippin.test").info("a\x1bb", extra={"fields": {"path": "/\x00"}})
    line = json.loads(captured.getvalue())
    assert line["message"] == "a\x1bb" and line["path"] == "/\x00" and "\x1b" not in captured.getvalue()


def test_the_web_servers_lines_are_written_in_pippins_format(monkeypatch: pytest.MonkeyPatch) -> None:
    captured = io.StringIO()
    monkeypatch.setattr(sys, "stderr", captured)
    configure_logging("INFO", "json")
    logging.getLogger("uvicorn.error").warning("Invalid HTTP request received: \x1b[2J")
    line = json.loads(captured.getvalue())
    assert line["logger"] == "uvicorn.error" and line["level"] == "WARNING"
