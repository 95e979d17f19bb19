"""cli/files.py: a file a command writes is checked first, in place only after the block succeeded, and never
half there."""

from __future__ import annotations

from pathlib import Path

import pytest

from pippin.cli.files import written_after_commit
from pippin.errors import Conflict, InvalidInput


def _listing(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_the_file_appears_only_when_the_block_ends(tmp_path: Path) -> None:
    target = tmp_path / "acme.pem"
    with written_after_commit(target, force=False) as staged:
        assert staged is not None
        staged.write(b"certificate")
        assert not target.exists()  # still a temporary file beside it, until the commit
    assert target.read_bytes() == b"certificate"
    assert _listing(tmp_path) == ["acme.pem"]


def test_a_failing_block_leaves_nothing_behind(tmp_path: Path) -> None:
    target = tmp_path / "acme.pem"
    with pytest.raises(RuntimeError), written_after_commit(target, force=False) as staged:
        assert staged is not None
        staged.write(b"certificate")
        raise RuntimeError("the commit failed")
    assert _listing(tmp_path) == []


def test_an_existing_file_is_kept_unless_forced(tmp_path: Path) -> None:
    target = tmp_path / "acme.pem"
    target.write_bytes(b"keep me")
    with pytest.raises(Conflict, match="already exists"), written_after_commit(target, force=False):
        pass
    assert target.read_bytes() == b"keep me"
    with written_after_commit(target, force=True) as staged:
        assert staged is not None
        staged.write(b"new")
    assert target.read_bytes() == b"new" and _listing(tmp_path) == ["acme.pem"]


def test_a_file_that_appears_meanwhile_is_not_overwritten(tmp_path: Path) -> None:
    target = tmp_path / "acme.pem"
    with pytest.raises(Conflict, match="appeared"), written_after_commit(target, force=False) as staged:
        assert staged is not None
        staged.write(b"ours")
        target.write_bytes(b"theirs")
    assert target.read_bytes() == b"theirs" and _listing(tmp_path) == ["acme.pem"]


@pytest.mark.parametrize(
    ("where", "says"),
    [
        ("missing/acme.pem", "does not exist"),
        ("", "is a folder"),
        ("a\x00b.pem", "not a possible file name"),
        ("x" * 5000, "File name too long"),
    ],
)
def test_an_impossible_target_is_refused_before_anything_happens(tmp_path: Path, where: str, says: str) -> None:
    target = tmp_path / where if where else tmp_path
    ran = False
    with pytest.raises(InvalidInput, match=says), written_after_commit(target, force=False):
        ran = True
    assert not ran and _listing(tmp_path) == []


def test_nothing_to_write_is_nothing_staged() -> None:
    with written_after_commit(None, force=False) as staged:
        assert staged is None
