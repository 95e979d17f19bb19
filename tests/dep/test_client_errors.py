"""Reading Apple's error bodies in every form seen, and the typed error each code becomes."""

from __future__ import annotations

import pytest

from pippin.dep.errors import (
    AccessDenied,
    CursorExhausted,
    CursorExpired,
    CursorInvalid,
    CursorRequired,
    DEPError,
    DEPRequestRejected,
    DEPUnavailable,
    TermsNotSigned,
    TokenExpired,
    TokenRejected,
    error_for,
    is_session_invalid,
    read_apple_code,
)
from pippin.errors import InvalidInput, Unavailable


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"T_C_NOT_SIGNED", "T_C_NOT_SIGNED"),
        (b'"T_C_NOT_SIGNED"', "T_C_NOT_SIGNED"),
        (b'{"code": "T_C_NOT_SIGNED"}', "T_C_NOT_SIGNED"),
        (b'  "INVALID_CURSOR"\n', "INVALID_CURSOR"),
        (b"oauth_problem=token_rejected&oauth_problem_advice=x", "token_rejected"),
        (b'{"error": "signature_invalid"}', "signature_invalid"),
        (b"", None),
        (b"   ", None),
        (b"[1, 2]", None),
        (b"\xff\xfe\x00garbage", "garbage"),
    ],
)
def test_apple_codes_are_read_from_every_body_form(body: bytes, code: str | None) -> None:
    assert read_apple_code(body) == code


def test_a_huge_body_yields_a_short_code_and_never_free_text() -> None:
    code = read_apple_code(b"A" * 10_000_000)
    assert code is not None and len(code) <= 64


@pytest.mark.parametrize(
    ("status", "code", "on_session", "expected"),
    [
        (403, "T_C_NOT_SIGNED", False, TermsNotSigned),
        (403, "T_C_NOT_SIGNED", True, TermsNotSigned),
        (403, "ACCESS_DENIED", False, AccessDenied),
        (403, "ACCESS_DENIED", True, AccessDenied),
        (401, "token_rejected", True, TokenRejected),
        (401, "signature_invalid", True, TokenRejected),
        (401, "timestamp_refused", True, TokenRejected),
        (401, None, True, TokenRejected),
        (401, "token_expired", True, TokenExpired),
        (401, "token_expired", False, TokenExpired),
        (400, "EXHAUSTED_CURSOR", False, CursorExhausted),
        (400, "EXPIRED_CURSOR", False, CursorExpired),
        (400, "INVALID_CURSOR", False, CursorInvalid),
        (400, "CURSOR_REQUIRED", False, CursorRequired),
        (400, "CONFIG_NAME_INVALID", False, DEPRequestRejected),
        (404, "NOT_FOUND", False, DEPRequestRejected),
        (405, None, False, DEPRequestRejected),
        (403, "APPLE_SEED_FOR_IT_TURNED_OFF", False, DEPRequestRejected),
    ],
)
def test_each_code_becomes_its_typed_error(status: int, code: str | None, on_session: bool, expected: type) -> None:
    error = error_for(status, code, on_session=on_session)
    assert type(error) is expected
    assert error.apple_code == code
    assert error.status == status
    assert error.message and error.hint


def test_auth_failures_carry_the_token_status_to_record() -> None:
    assert TermsNotSigned().token_status == "terms_not_signed"
    assert AccessDenied().token_status == "access_denied"
    assert TokenRejected().token_status == "token_rejected"
    assert TokenExpired().token_status == "expired"


def test_terms_hint_tells_the_admin_what_to_do() -> None:
    error = TermsNotSigned()
    assert "new terms and conditions" in error.message
    assert "business.apple.com" in (error.hint or "")
    assert "resumes on its own" in str(error)


def test_error_families_fit_pippins_tree() -> None:
    assert isinstance(DEPUnavailable(), Unavailable)
    assert isinstance(DEPUnavailable(), DEPError)
    assert isinstance(DEPRequestRejected(), InvalidInput)
    assert DEPUnavailable(retry_after=30).retry_after == 30


@pytest.mark.parametrize(
    ("status", "code", "stale"),
    [
        (401, "UNAUTHORIZED", True),
        (401, None, True),
        (403, "FORBIDDEN", True),
        (403, "ACCESS_DENIED", False),
        (403, "T_C_NOT_SIGNED", False),
        (401, "token_expired", False),
        (400, "FORBIDDEN", False),
    ],
)
def test_only_stale_session_answers_are_worth_a_new_session(status: int, code: str | None, stale: bool) -> None:
    assert is_session_invalid(status, code) is stale
