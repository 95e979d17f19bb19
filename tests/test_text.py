"""The one rule for text from people, and the rules for names, e-mail addresses and passwords built on it."""

# Names in other scripts and with en dashes are what these tests are about.
# ruff: noqa: RUF001

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from pippin.errors import InvalidInput
from pippin.text import (
    MAX_DEP_TOKEN_NAME,
    EmailAddress,
    Line,
    MultiLine,
    check_display_name,
    check_email,
    check_identifier_name,
    check_password,
    check_text,
    first_refused_character,
)

#: One of each kind of character the rule refuses, as it would arrive in a hostile name or filter.
REFUSED = [
    "\x00",  # NUL: PostgreSQL refuses it in text
    "\x1b",  # ESC: terminal escape sequences
    "\n",
    "\r",
    "\t",
    "\x7f",  # DEL
    "\x9b",  # C1 CSI
    "\u202e",  # RIGHT-TO-LEFT OVERRIDE
    "\u2066",  # LEFT-TO-RIGHT ISOLATE
    "\u200b",  # ZERO WIDTH SPACE
    "\u200c",  # ZERO WIDTH NON-JOINER between Latin letters
    "\u200d",  # ZERO WIDTH JOINER between Latin letters
    "\u2060",  # WORD JOINER
    "\ufeff",  # BYTE ORDER MARK
    "\u2028",  # LINE SEPARATOR
    "\u2029",  # PARAGRAPH SEPARATOR
    "\udcff",  # a lone surrogate: an undecodable byte in a command-line argument
    "\U000e0041",  # a tag character outside a flag
]

#: Text that must stay accepted: any script, accents, emoji with their joiners and modifiers.
ACCEPTED = [
    "Büro – iPads 東京",
    "Équipe – Paris",
    "iPads 📱",
    "Developers 👩‍💻",  # ZWJ sequence
    "Pride 🏳️‍🌈",  # VS16 then ZWJ
    "Team 👍🏽",  # skin tone modifier
    "Wales 🏴\U000e0067\U000e0062\U000e0077\U000e006c\U000e0073\U000e007f",  # subdivision flag: tag sequence
    "می\u200cخواهم",  # Persian: ZWNJ between Arabic-script letters
    "क्\u200dष",  # Devanagari: ZWJ after a virama
    "Ελληνικά Кириллица עברית العربية",
    "50% off, (really) & more: yes!",
]


@pytest.mark.parametrize("char", REFUSED)
def test_every_refused_character_is_refused_with_the_field_named_and_where_it_is(char: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        check_text(f"ab{char}cd", field="The search")
    assert raised.value.message.startswith("The search contains U+")
    assert "at character 3" in raised.value.message
    assert "control, format or separator characters" in raised.value.message


@pytest.mark.parametrize("text", ACCEPTED)
def test_any_script_accents_and_emoji_are_accepted(text: str) -> None:
    assert check_text(text, field="The name") == text
    assert check_display_name(text, field="The name", max_chars=125) == text


def test_multiline_text_allows_line_breaks_and_tabs_but_nothing_else() -> None:
    pem = "-----BEGIN CERTIFICATE-----\r\nMIIB\tAA==\n-----END CERTIFICATE-----\n"
    assert check_text(pem, field="The certificate", multiline=True) == pem
    with pytest.raises(InvalidInput, match="U\\+0000"):
        check_text(pem + "\x00", field="The certificate", multiline=True)
    with pytest.raises(InvalidInput, match="U\\+2028"):
        check_text("a\u2028b", field="The certificate", multiline=True)


def test_joiners_are_refused_where_they_only_hide() -> None:
    for hidden in ("\u200d👩", "👩\u200d", "a\u200d👩", "🏴\U000e007f", "x\U000e0067\U000e007f", "\u200c"):
        assert first_refused_character(hidden) is not None, hidden


@given(st.text())
def test_whatever_is_accepted_holds_no_nul_and_no_line_separator(text: str) -> None:
    if first_refused_character(text) is None:
        assert not {"\x00", "\n", "\u2028", "\u2029", "\u202e"} & set(text)


@pytest.mark.parametrize(
    "name",
    ["a", "acme-ios", "A.b_c-9", "1", "x" * MAX_DEP_TOKEN_NAME],
)
def test_identifier_names_at_their_limits_are_accepted(name: str) -> None:
    assert check_identifier_name(name, field="The DEP token name", max_chars=MAX_DEP_TOKEN_NAME, example="x") == name


@pytest.mark.parametrize(
    "name",
    ["", ".", "..", "-", "-x", ".hidden", "_x", "a b", "a/b", "Büro", "x" * (MAX_DEP_TOKEN_NAME + 1), "a\x00"],
)
def test_identifier_names_that_cannot_work_everywhere_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        check_identifier_name(name, field="The DEP token name", max_chars=MAX_DEP_TOKEN_NAME, example="acme-ios")
    assert raised.value.message.startswith("The DEP token name ")
    assert "U+0000" in raised.value.message or f"1-{MAX_DEP_TOKEN_NAME} letters" in raised.value.message


def test_the_dep_token_name_limit_fits_the_certificate_common_name() -> None:
    assert len("pippin-dep-" + "x" * MAX_DEP_TOKEN_NAME) == 64


def test_display_names_are_trimmed_and_at_most_the_limit() -> None:
    assert check_display_name("  Équipe – Paris  ", field="The profile name", max_chars=125) == "Équipe – Paris"
    assert check_display_name("é" * 125, field="The profile name", max_chars=125) == "é" * 125
    with pytest.raises(InvalidInput, match="longer than 125 characters"):
        check_display_name("é" * 126, field="The profile name", max_chars=125)
    with pytest.raises(InvalidInput, match="is empty"):
        check_display_name("   ", field="The profile name", max_chars=125)


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        (".", "'.' or '..'"),
        ("..", "'.' or '..'"),
        ("-", "start with '-'"),
        ("-rf", "start with '-'"),
        ("a/b", "'/'"),
        ("a\\b", "'\\\\'"),
        ("what?", "'\\?'"),
        ("#1", "'#'"),
        ("ab\u202ecd", "U\\+202E"),
        ("a\u200bb", "U\\+200B"),
        ("a\u2028b", "U\\+2028"),
    ],
)
def test_display_names_that_cannot_work_in_a_url_or_a_command_line_are_refused(name: str, rule: str) -> None:
    with pytest.raises(InvalidInput, match=f"^The profile name .*{rule}"):
        check_display_name(name, field="The profile name", max_chars=125)


@pytest.mark.parametrize(
    "address", ["it@example.com", "First.Last+tag@sub.example.co.uk", "josé@exämple.se", "a_b-c@x-y.io"]
)
def test_e_mail_addresses_of_the_usual_shapes_are_accepted(address: str) -> None:
    assert check_email(f" {address} ", field="The Apple ID") == address


@pytest.mark.parametrize(
    "address",
    [
        "x@y",
        "a\x00@x.com",
        "<script>@x.com",
        "a@<script>.com",
        "a b@x.com",
        "@x.com",
        "a@",
        "a@.com",
        "a@x..com",
        "a@-x.com",
        "a..b@x.com",
        ".a@x.com",
        "a@x.123",
        '"a"@x.com',
        "a@x_y.com",
        "a" * 65 + "@x.com",
        "a@" + "x" * 64 + ".com",
        "a@b@x.com",
    ],
)
def test_what_is_not_an_e_mail_address_is_refused_naming_the_field(address: str) -> None:
    with pytest.raises(InvalidInput, match=r"^The Apple ID "):
        check_email(address, field="The Apple ID")


def test_passwords_may_hold_any_character_but_controls() -> None:
    unusual = "pässwörd 東京 📱 \u202e\u200b"
    assert check_password(unusual) == unusual
    for bad in ("\x00" * 20, "secret\npassword", "secret\x1bpassword", "bad\udcffbyte"):
        with pytest.raises(InvalidInput, match=r"^The password contains U\+"):
            check_password(bad)


class _Shape(BaseModel):
    line: Line | None = None
    lines: MultiLine | None = None
    email: EmailAddress | None = None


def test_the_pydantic_types_refuse_the_same_and_pydantic_names_the_field() -> None:
    assert _Shape(line="Büro 📱", lines="a\nb", email=" it@example.com ").email == "it@example.com"
    for field, value in (("line", "a\x00"), ("line", "a\nb"), ("lines", "a\u202eb"), ("email", "x@y")):
        with pytest.raises(ValidationError) as raised:
            _Shape.model_validate({field: value})
        error = raised.value.errors()[0]
        assert error["loc"] == (field,)
        assert "control, format or separator" in error["msg"] or "not an e-mail address" in error["msg"]
