"""Pippin's shapes for pushes: one enrollment's push state, and the answer to a test push.

What ``--json`` prints (and, next, REST returns), with the same keys. The PushMagic is never among them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel

from pippin.store.models import PushResult


class TokenState(StrEnum):
    """Whether Pippin can push to an enrollment's token."""

    #: The device has sent no TokenUpdate yet.
    missing = "missing"
    valid = "valid"
    #: APNs refused this token for good; a new TokenUpdate brings another one.
    refused = "refused"


class PushCountsRead(BaseModel):
    pushes: int = 0
    delivered: int = 0
    token_refused: int = 0
    certificate_refused: int = 0
    retryable: int = 0
    request_error: int = 0
    expired: int = 0


class PushStatusRead(BaseModel):
    """One enrollment's pushes: the token's state, the push waiting (if any), the last answer, the counts."""

    udid: str
    token_state: TokenState
    token_refused_at: datetime | None = None
    token_refused_reason: str | None = None
    pending: bool = False
    wanted_at: datetime | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    expires_at: datetime | None = None
    last_push_at: datetime | None = None
    last_result: PushResult | None = None
    last_status: int | None = None
    last_reason: str | None = None
    last_apns_id: str | None = None
    next_sweep_at: datetime | None = None
    counts: PushCountsRead


class PushTestRead(BaseModel):
    """What APNs answered to ``pippin push test``."""

    result: PushResult
    status: int | None
    reason: str | None
    apns_id: str | None
    topic: str
    apns_base_url: str
