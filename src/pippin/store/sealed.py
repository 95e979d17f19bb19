"""Every column that holds a ``SecretBox`` ciphertext: what the master key check scans and rotation re-seals.

A new sealed column must be added here; ``tests/store/test_sealed.py`` fails on a ``*_encrypted`` column that
is missing.
"""

from __future__ import annotations

from sqlalchemy.orm import InstrumentedAttribute

from pippin.store.models import (
    CheckinMessage,
    Command,
    CommandApproval,
    DEPToken,
    Enrollment,
    EnrollmentLink,
    PKIAuthority,
    PushCertificate,
    PushVendorCertificate,
    SetupCommand,
    SigningKey,
    WebhookEvent,
)

SEALED_COLUMNS: tuple[InstrumentedAttribute[bytes | None] | InstrumentedAttribute[bytes], ...] = (
    DEPToken.private_key_encrypted,
    DEPToken.pending_private_key_encrypted,
    DEPToken.credentials_encrypted,
    SigningKey.key_encrypted,
    PushCertificate.private_key_encrypted,
    PushCertificate.pending_private_key_encrypted,
    PushVendorCertificate.private_key_encrypted,
    PKIAuthority.private_key_encrypted,
    PKIAuthority.server_identity_key_encrypted,
    Enrollment.unlock_token_encrypted,
    Enrollment.bootstrap_token_encrypted,
    CheckinMessage.raw_encrypted,
    Command.body_encrypted,
    Command.answer_encrypted,
    EnrollmentLink.challenge_encrypted,
    CommandApproval.payload_encrypted,
    WebhookEvent.body_encrypted,
    SetupCommand.payload_encrypted,
)
