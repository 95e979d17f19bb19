"""Text shown on terminals and in logs: control characters become escapes, everything else stays as it is."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pippin.printable import printable


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[31mred", "\\x1b[31mred"),
        ("a\x00b", "a\\x00b"),
        ("line\nnext\r\tend", "line\\nnext\\r\\tend"),
        ("\x7f\x9b", "\\x7f\\x9b"),
        ("abc\u202edef", "abc\\u202edef"),
        ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
        ("sep\u2028par\u2029", "sep\\u2028par\\u2029"),
        ("bad byte \udcff", "bad byte \\udcff"),
        ("tag \U000e0041", "tag \\U000e0041"),
    ],
)
def test_controls_formats_and_separators_are_shown_as_escapes(raw: str, shown: str) -> None:
    assert printable(raw) == shown


@pytest.mark.parametrize("text", ["Büro \u2013 iPads 東京", "Équipe \u2013 Paris 🎉", "a\u00a0b", "C:\\path", ""])
def test_ordinary_text_of_any_script_is_left_alone(text: str) -> None:
    assert printable(text) == text


@given(st.text())
def test_no_control_character_survives(text: str) -> None:
    shown = printable(text)
    assert not any(unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp", "Cs"} for char in shown)
    assert printable(shown) == shown
