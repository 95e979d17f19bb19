"""A walk over BER's tag-length-value headers that refuses hostile nesting before any parser recurses into it.

A SCEP request, like the MachineInfo a device in Setup Assistant posts, is BER from an unauthenticated client.
``asn1crypto`` parses indefinite-length values by recursion, so a few kilobytes of nested ``30 80`` headers (a
"BER bomb") would exhaust Python's stack; a length that points past the end, or a value that does not fill its
parent exactly, marks a truncated or forged message.
This walk reads only headers, iteratively, in linear time, and says what is wrong in one line.
"""

from __future__ import annotations

from pippin.errors import InvalidInput

#: Far deeper than any SignedData, EnvelopedData or CSR (about 12 levels), far shallower than Python's stack.
MAX_NESTING = 32
#: A message of 64 KiB holds at most a few thousand values; this bounds the work of a walk.
MAX_VALUES = 20_000


class HostileEncoding(InvalidInput):
    """The bytes are not one well-formed BER value within Pippin's bounds."""


def _header(data: bytes, offset: int, end: int) -> tuple[bool, int | None, int]:
    """(constructed, content length or None when indefinite, offset of the content) of the value at ``offset``."""
    if offset >= end:
        raise HostileEncoding("The message is cut short.")
    first = data[offset]
    constructed = bool(first & 0x20)
    offset += 1
    if first & 0x1F == 0x1F:  # high tag number: base-128 digits, the last without its top bit
        for _ in range(5):
            if offset >= end:
                raise HostileEncoding("The message is cut short.")
            offset += 1
            if not data[offset - 1] & 0x80:
                break
        else:
            raise HostileEncoding("The message has a tag number too large to be real.")
    if offset >= end:
        raise HostileEncoding("The message is cut short.")
    length_byte = data[offset]
    offset += 1
    if length_byte == 0x80:
        if not constructed:
            raise HostileEncoding("The message has an indefinite length on a primitive value.")
        return constructed, None, offset
    if length_byte < 0x80:
        return constructed, length_byte, offset
    count = length_byte & 0x7F
    if count > 4 or offset + count > end:
        raise HostileEncoding("The message declares a length it cannot hold.")
    length = int.from_bytes(data[offset : offset + count], "big")
    return constructed, length, offset + count


def check_ber(data: bytes, *, max_nesting: int = MAX_NESTING, max_values: int = MAX_VALUES) -> None:
    """Refuse ``data`` unless it is exactly one BER value of at most ``max_values`` values, nested at most
    ``max_nesting`` deep: one pass without recursion, at most ``max_values`` steps whatever ``data`` holds."""
    if not data:
        raise HostileEncoding("The message is empty.")
    # Each open constructed value: its end offset, or None while indefinite (then closed by 00 00).
    open_values: list[int | None] = []
    offset, end, values = 0, len(data), 0
    while True:
        limit = next((stop for stop in reversed(open_values) if stop is not None), end)
        if open_values and open_values[-1] is not None and offset == open_values[-1]:
            open_values.pop()
            if not open_values:
                break
            continue
        if open_values and open_values[-1] is None and data[offset : offset + 2] == b"\x00\x00":
            open_values.pop()
            offset += 2
            if not open_values:
                break
            continue
        values += 1
        if values > max_values:
            raise HostileEncoding("The message holds more values than any real one.")
        constructed, length, offset = _header(data, offset, limit)
        if length is not None and offset + length > limit:
            raise HostileEncoding("The message declares a length past its end.")
        if constructed:
            if len(open_values) >= max_nesting:
                raise HostileEncoding("The message is nested deeper than any real one.")
            open_values.append(None if length is None else offset + length)
            if length == 0:
                continue
        else:
            offset += length or 0
        if not open_values:
            break
    if offset != end:
        raise HostileEncoding("The message has bytes after its end.")
