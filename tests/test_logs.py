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
