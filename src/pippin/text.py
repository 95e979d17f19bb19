"""The text Pippin accepts from people: one rule for every text input, and the rules for names and addresses.

Every string that arrives through the CLI, the REST API or the console (a name, a filter, a form field, a path
segment) passes :func:`check_text` or one of the stricter checks built on it before it reaches the database or
Apple. The rule is the same everywhere: no control characters (NUL, ESC, DEL, C1; PostgreSQL refuses NUL in
text outright), no invisible format characters (bidi overrides that reorder what the reader sees, zero-width
spaces and joiners that make two different names look alike, the byte-order mark), no line or paragraph
separators, and no lone surrogates (undecodable bytes in a command-line argument). Any script, accented
letters and emoji stay accepted; so do the zero-width joiners inside emoji sequences and after a virama, and
the zero-width non-joiner of Arabic-script words, where they are part of how the text is written.

Names must also work in every interface: as a segment of an API path or console URL, and as a CLI argument.
So a name is never ``.`` or ``..`` (URLs resolve them away), never starts with ``-`` (a CLI would read an
option), and a display name holds no ``/``, ``\\``, ``?`` or ``#`` (they end a path segment; browsers read
``\\`` as ``/``). A DEP token's name is also the common name of its certificate, which X.509 caps at 64
characters, so it is shorter than that by the certificate's prefix.

The checks come in two forms that share the rules and the words: functions raising :class:`InvalidInput`
naming the field (for services and the CLI), and ``Annotated`` types for Pydantic schemas and FastAPI
parameters, whose errors Pydantic reports with the field's location.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator

from pippin.errors import InvalidInput

#: Categories refused in any text: controls, format characters, line and paragraph separators, surrogates.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
#: Allowed in multi-line text (certificates in PEM, lists of serial numbers): newline, carriage return, tab.
_LINE_BREAKS = frozenset("\n\r\t")
_ZWNJ, _ZWJ = "\u200c", "\u200d"
_VS16 = "\ufe0f"
_BLACK_FLAG, _CANCEL_TAG = "\U0001f3f4", "\U000e007f"
_TAGS = range(0xE0020, 0xE007F)
_SKIN_TONES = range(0x1F3FB, 0x1F400)
_ARABIC_SCRIPT = ((0x0600, 0x06FF), (0x0750, 0x077F), (0x08A0, 0x08FF), (0xFB50, 0xFDFF), (0xFE70, 0xFEFF))

RULE = "text may not contain control, format or separator characters (NUL, ESC, bidi overrides, zero-width spaces)"

#: The certificate of a DEP token's key pair is named ``pippin-dep-NAME``; X.509 allows 64 characters.
DEP_TOKEN_CERTIFICATE_PREFIX = "pippin-dep-"  # noqa: S105 (a certificate name, not a secret)
MAX_DEP_TOKEN_NAME = 64 - len(DEP_TOKEN_CERTIFICATE_PREFIX)
MAX_API_TOKEN_NAME = 64
MAX_EMAIL = 320
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_DISPLAY_NAME_FORBIDDEN = frozenset("/\\?#")
# RFC 5322's dot-atom characters (and, as RFC 6531 allows, any other letter or digit) before the @.
_EMAIL_LOCAL_ASCII = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.!#$%&'*+/=?^_`{|}~-")


def _arabic_letter(char: str) -> bool:
    code = ord(char)
    return unicodedata.category(char).startswith("L") and any(low <= code <= high for low, high in _ARABIC_SCRIPT)


def _pictographic(char: str) -> bool:
    return unicodedata.category(char) == "So"


def _joiner_belongs(text: str, index: int) -> bool:
    """Whether the ZWJ or ZWNJ at ``index`` is part of how the text is written, not an invisible trick.

    After a virama (Indic scripts) both joiners shape the conjunct; ZWNJ between Arabic-script letters breaks
    a ligature (Persian, Urdu); ZWJ between pictographs makes one emoji (👩‍💻, 🏳️‍🌈).
    """
    before = text[index - 1] if index > 0 else ""
    after = text[index + 1] if index + 1 < len(text) else ""
    if before and unicodedata.combining(before) == 9:
        return True
    if text[index] == _ZWNJ:
        return bool(before and after) and _arabic_letter(before) and _arabic_letter(after)
    back = index - 1
    while back >= 0 and (text[back] == _VS16 or ord(text[back]) in _SKIN_TONES):
        back -= 1
    return back >= 0 and _pictographic(text[back]) and bool(after) and _pictographic(after)


def _in_flag_tag_sequence(text: str, index: int) -> bool:
    """Whether the tag character at ``index`` belongs to a subdivision flag: 🏴, tags, then CANCEL TAG."""
    start = index
    while start > 0 and ord(text[start - 1]) in _TAGS:
        start -= 1
    if start == 0 or text[start - 1] != _BLACK_FLAG:
        return False
    end = index
    while end < len(text) and ord(text[end]) in _TAGS:
        end += 1
    return start < end < len(text) and text[end] == _CANCEL_TAG


def _allowed_format_character(text: str, index: int) -> bool:
    char = text[index]
    if char in (_ZWJ, _ZWNJ):
        return _joiner_belongs(text, index)
    if ord(char) in _TAGS or char == _CANCEL_TAG:
        return _in_flag_tag_sequence(text, index)
    return False


def describe(char: str) -> str:
    """``char`` as a reader can identify it: its code point and, when Unicode names it, its name."""
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X} {name}".rstrip() if name else f"U+{ord(char):04X}"


def first_refused_character(text: str, *, multiline: bool = False) -> tuple[int, str] | None:
    """The position and character of the first one :data:`RULE` refuses in ``text``, or None when it is clean."""
    if text.isprintable():
        return None  # the usual case, decided without looking at each character
    for index, char in enumerate(text):
        if multiline and char in _LINE_BREAKS:
            continue
        category = unicodedata.category(char)
        if category not in _REFUSED_CATEGORIES:
            continue
        if category == "Cf" and _allowed_format_character(text, index):
            continue
        return index, char
    return None


def _text_problem(text: str, *, multiline: bool) -> str | None:
    found = first_refused_character(text, multiline=multiline)
    if found is None:
        return None
    index, char = found
    return f"contains {describe(char)} at character {index + 1}; {RULE}"


def check_text(value: str, *, field: str, multiline: bool = False) -> str:
    """``value`` itself, or :class:`InvalidInput` naming ``field`` when it holds a character :data:`RULE` refuses.

    ``multiline`` allows newlines, carriage returns and tabs (PEM certificates, lists of serial numbers).
    """
    problem = _text_problem(value, multiline=multiline)
    if problem is not None:
        raise InvalidInput(f"{field} {problem}.", hint="Type or paste the text again without them.")
    return value


def check_optional_text(value: str | None, *, field: str, multiline: bool = False) -> str | None:
    return None if value is None else check_text(value, field=field, multiline=multiline)


def _url_and_cli_problem(name: str) -> str | None:
    if name in (".", ".."):
        return "cannot be '.' or '..' (URLs resolve them away)"
    if name.startswith("-"):
        return "cannot start with '-' (the command line would read an option)"
    return None


def identifier_name_problem(name: str, *, max_chars: int) -> str | None:
    """What is wrong with ``name`` as a token name, or None: see :func:`check_identifier_name`."""
    if not 1 <= len(name) <= max_chars or not _IDENTIFIER.fullmatch(name):
        return f"must be 1-{max_chars} letters (A-Z, a-z), digits, '.', '_' or '-', starting with a letter or digit"
    return None


def check_identifier_name(name: str, *, field: str, max_chars: int, example: str) -> str:
    """``name`` when it is 1 to ``max_chars`` ASCII letters, digits, ``.``, ``_`` or ``-``, starting with a letter
    or digit: a name that needs no quoting in a URL, a file name, a header or a shell (DEP and API tokens)."""
    check_text(name, field=field)
    problem = identifier_name_problem(name, max_chars=max_chars)
    if problem is not None:
        raise InvalidInput(f"{field} {problem}.", hint=f"Pick a short name, e.g. {example}.")
    return name


def display_name_problem(name: str, *, max_chars: int) -> str | None:
    """What is wrong with ``name`` (already stripped) as a display name, or None: see :func:`check_display_name`."""
    text_problem = _text_problem(name, multiline=False)
    if text_problem is not None:
        return text_problem
    if not name:
        return "is empty"
    if len(name) > max_chars:
        return f"is longer than {max_chars} characters"
    forbidden = sorted(_DISPLAY_NAME_FORBIDDEN.intersection(name))
    if forbidden:
        shown = ", ".join(f"'{char}'" for char in forbidden)
        return f"cannot contain {shown} (it would end the name in a URL; '/', '\\', '?' and '#' are refused)"
    return _url_and_cli_problem(name)


def check_display_name(name: str, *, field: str, max_chars: int) -> str:
    """``name`` without surrounding spaces, when it is 1 to ``max_chars`` characters of any script (emoji too)
    that work as a URL segment and a CLI argument: not ``.``/``..``, no leading ``-``, no ``/ \\ ? #``."""
    check_text(name, field=field)  # before trimming, which would drop a trailing line separator unseen
    stripped = name.strip()
    problem = display_name_problem(stripped, max_chars=max_chars)
    if problem is not None:
        raise InvalidInput(f"{field} {problem}.", hint="Choose another name.")
    return stripped


def _email_local_part_ok(local: str) -> bool:
    if not 1 <= len(local) <= 64 or local.startswith(".") or local.endswith(".") or ".." in local:
        return False
    return all(char in _EMAIL_LOCAL_ASCII or (not char.isascii() and char.isalnum()) for char in local)


def _domain_label_ok(label: str) -> bool:
    return (
        1 <= len(label) <= 63
        and not label.startswith("-")
        and not label.endswith("-")
        and all(char == "-" or char.isalnum() for char in label)
    )


def email_problem(address: str) -> str | None:
    """What is wrong with ``address`` (already stripped) as an e-mail address, or None."""
    text_problem = _text_problem(address, multiline=False)
    if text_problem is not None:
        return text_problem
    local, at, domain = address.rpartition("@")
    labels = domain.split(".")
    if (
        not at
        or len(address) > MAX_EMAIL
        or not _email_local_part_ok(local)
        or len(domain) > 253
        or len(labels) < 2
        or not all(_domain_label_ok(label) for label in labels)
        or labels[-1].isdigit()
    ):
        return "is not an e-mail address (name@domain.example: no spaces, quotes or brackets, a dot in the domain)"
    return None


def check_email(address: str, *, field: str) -> str:
    """``address`` without surrounding spaces, when it has the shape of an e-mail address: a local part of
    RFC 5322's dot-atom characters (or other letters and digits), ``@``, and a domain of two or more labels."""
    check_text(address, field=field)
    stripped = address.strip()
    problem = email_problem(stripped)
    if problem is not None:
        raise InvalidInput(f"{field} {problem}.", hint="Use an address like it@example.com.")
    return stripped


def password_problem(password: str) -> str | None:
    """A password may hold any character but controls and lone surrogates (which no keyboard types)."""
    for index, char in enumerate(password):
        if unicodedata.category(char) in ("Cc", "Cs"):
            return f"contains {describe(char)} at character {index + 1}; a password may not contain control characters"
    return None


def check_password(password: str, *, field: str = "The password") -> str:
    problem = password_problem(password)
    if problem is not None:
        raise InvalidInput(f"{field} {problem}.", hint="Choose a password without them.")
    return password


# Pydantic forms of the same rules: the location Pydantic reports names the field, so the messages do not.


def _single_line(value: str) -> str:
    problem = _text_problem(value, multiline=False)
    if problem is not None:
        raise ValueError(problem)
    return value


def _multi_line(value: str) -> str:
    problem = _text_problem(value, multiline=True)
    if problem is not None:
        raise ValueError(problem)
    return value


def _email(value: str) -> str:
    problem = _text_problem(value, multiline=False) or email_problem(value.strip())
    if problem is not None:
        raise ValueError(problem)
    return value.strip()


#: A line of text under :data:`RULE` (names, filters, form fields).
Line = Annotated[str, AfterValidator(_single_line)]
#: Text that may span lines (certificates in PEM, lists of serial numbers), otherwise under :data:`RULE`.
MultiLine = Annotated[str, AfterValidator(_multi_line)]
#: An e-mail address or Apple ID: see :func:`check_email`.
EmailAddress = Annotated[str, AfterValidator(_email)]
