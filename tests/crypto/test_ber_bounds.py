"""The BER walk that runs before any parser: real structures pass, hostile ones are refused with a reason."""

from __future__ import annotations

import pytest

from pippin.crypto.ber_bounds import MAX_NESTING, HostileEncoding, check_ber


def _sequence(content: bytes, *, indefinite: bool = False) -> bytes:
    if indefinite:
        return b"\x30\x80" + content + b"\x00\x00"
    length = len(content)
    header = bytes([length]) if length < 0x80 else b"\x82" + length.to_bytes(2, "big")
    return b"\x30" + header + content


def _nested(depth: int, *, indefinite: bool = False) -> bytes:
    value = b"\x02\x01\x01"
    for _ in range(depth):
        value = _sequence(value, indefinite=indefinite)
    return value


@pytest.mark.parametrize("indefinite", [False, True])
def test_nesting_up_to_the_bound_passes(indefinite: bool) -> None:
    check_ber(_nested(MAX_NESTING, indefinite=indefinite))


@pytest.mark.parametrize("indefinite", [False, True])
def test_nesting_past_the_bound_is_refused(indefinite: bool) -> None:
    with pytest.raises(HostileEncoding, match="nested deeper"):
        check_ber(_nested(MAX_NESTING + 1, indefinite=indefinite))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"\x30\x05\x02\x01", "past its end"),
        (b"\x30\x80\x02\x01\x01", "cut short"),
        (b"\x02\x01\x01\x00", "after its end"),
        (b"\x04\x80\x00\x00", "indefinite length on a primitive"),
        (b"\x04\x85\x01\x00\x00\x00\x00", "cannot hold"),
        (b"\x1f\xff\xff\xff\xff\xff\x01\x00", "tag number"),
        (b"\x30\x80" * 100_000, "nested deeper"),
        (b"\x30\x06\x02\x01\x01\x02\x02\x01", "past its end"),
    ],
)
def test_hostile_encodings_are_refused_with_their_reason(data: bytes, reason: str) -> None:
    with pytest.raises(HostileEncoding, match=reason):
        check_ber(data)


def test_mixed_definite_and_indefinite_values_pass() -> None:
    inner = _sequence(b"\x02\x01\x01" + _sequence(b"\x04\x00", indefinite=True))
    check_ber(_sequence(inner + b"\x05\x00", indefinite=True))


def test_too_many_values_are_refused() -> None:
    with pytest.raises(HostileEncoding, match="more values"):
        check_ber(b"\x30\x83\x01\x00\x00" + b"\x05\x00" * 32768)
