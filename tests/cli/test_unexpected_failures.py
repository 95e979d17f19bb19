"""The root group's promises for what no rule foresaw: one line and exit 1, never a traceback or the
exception's text (it may quote a secret); the traceback only at PIPPIN_LOG_LEVEL=DEBUG."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from pippin.cli.main import PippinGroup, root

SECRET = "s3cr3t-in-the-exception"


def _probe() -> typer.Typer:
    """A root like `pippin`'s (its group and its callback) with commands that fail in ways nobody planned."""
    probe = typer.Typer(cls=PippinGroup, pretty_exceptions_enable=False)
    probe.callback()(root)

    @probe.command()
    def boom() -> None:
        raise RuntimeError(f"the key was {SECRET}")

    @probe.command()
    def pipe() -> None:
        raise BrokenPipeError(32, "Broken pipe")

    return probe


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"PIPPIN_DATA_DIR": str(tmp_path), **extra}


def test_an_unexpected_exception_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(_probe(), ["boom"], env=_env(tmp_path))
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "Pippin failed unexpectedly (RuntimeError)." in result.stderr
    assert "PIPPIN_LOG_LEVEL=DEBUG" in result.stderr
    assert SECRET not in result.output and "Traceback" not in result.output


def test_debug_logging_shows_where_it_failed(tmp_path: Path) -> None:
    result = CliRunner().invoke(_probe(), ["boom"], env=_env(tmp_path, PIPPIN_LOG_LEVEL="DEBUG"))
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr and "in boom" in result.stderr


def test_a_closed_pipe_is_left_to_typer(tmp_path: Path) -> None:
    result = CliRunner().invoke(_probe(), ["pipe"], env=_env(tmp_path))
    assert "failed unexpectedly" not in result.output


def test_an_undecodable_argument_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(_probe(), ["boom", "caf\udce9"], env=_env(tmp_path))
    assert result.exit_code == 2
    assert "argument 2 (caf\\xe9) is not valid UTF-8" in " ".join(result.output.split())
