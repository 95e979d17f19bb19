"""Signing `/session` never leaves a credential in the logs, even with every logger at DEBUG."""

from __future__ import annotations

import logging

import pytest

from pippin.dep.oauth import OAuthCredentials, session_authorization


def test_signing_logs_no_credential_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    credentials = OAuthCredentials(
        consumer_key="CK_consumerkeyvalue",
        consumer_secret="CS_consumersecretvalue",
        access_token="AT_accesstokenvalue",
        access_secret="AS_accesssecretvalue",
    )
    with caplog.at_level(logging.DEBUG):
        header = session_authorization(credentials, "https://mdmenrollment.apple.com/session")
    assert "oauth_signature=" in header
    for value in ("CK_consumerkeyvalue", "CS_consumersecretvalue", "AT_accesstokenvalue", "AS_accesssecretvalue"):
        assert value not in caplog.text
