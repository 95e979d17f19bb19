"""OAuth 1.0a verification of ``GET /session`` against the MDM server's current token (reference 2.1).

The signature is checked with oauthlib's own base-string and HMAC-SHA1 functions over the URL the client called
(scheme, Host header and path as received), so any correct OAuth 1.0a client passes and nothing hand-rolled can
disagree with it. Failures answer as Apple does: 400 for a malformed request (missing or duplicated parameter,
unsupported signature method), 401 with an OAuth problem word for everything about the credentials.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.request import parse_http_list

from oauthlib.common import Request as OAuthlibRequest
from oauthlib.common import safe_string_equals
from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from oauthlib.oauth1.rfc5849.utils import unescape
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pippin.sim.models import SimNonce, SimServerToken
from pippin.sim.wire import AppleError

#: How far a client's ``oauth_timestamp`` may be from the real time (oauthlib's default window).
TIMESTAMP_WINDOW = timedelta(minutes=10)
_REQUIRED = (
    "oauth_consumer_key",
    "oauth_token",
    "oauth_signature_method",
    "oauth_signature",
    "oauth_timestamp",
    "oauth_nonce",
)
_KNOWN = {*_REQUIRED, "oauth_version", "realm"}


def _bad_request(problem: str) -> AppleError:
    return AppleError(400, f"oauth_problem={problem}")


def _unauthorized(problem: str) -> AppleError:
    return AppleError(401, f"oauth_problem={problem}")


@dataclass(frozen=True)
class OAuthParameters:
    """The parameters of an ``Authorization: OAuth ...`` header, each present exactly once."""

    values: dict[str, str]

    @property
    def consumer_key(self) -> str:
        return self.values["oauth_consumer_key"]

    @property
    def access_token(self) -> str:
        return self.values["oauth_token"]


def parse_authorization(header: str | None) -> OAuthParameters:
    """Read the OAuth header strictly: every required parameter once, no unknown ones, HMAC-SHA1, version 1.0."""
    if header is None or not header[:6].lower() == "oauth ":
        raise _bad_request("parameter_absent")
    if len(header) > 4096:
        raise _bad_request("parameter_rejected")
    values: dict[str, str] = {}
    for item in parse_http_list(header[6:]):
        name, equals, quoted = item.strip().partition("=")
        if not equals or len(quoted) < 2 or not (quoted.startswith('"') and quoted.endswith('"')):
            raise _bad_request("parameter_rejected")
        name = unescape(name)
        if name in values:
            raise _bad_request("parameter_rejected")
        if name not in _KNOWN:
            raise _bad_request("parameter_rejected")
        values[name] = unescape(quoted[1:-1])
    if any(name not in values or not values[name] for name in _REQUIRED):
        raise _bad_request("parameter_absent")
    if values["oauth_signature_method"] != "HMAC-SHA1":
        raise _bad_request("signature_method_rejected")
    if values.get("oauth_version", "1.0") != "1.0":
        raise _bad_request("version_rejected")
    if len(values["oauth_nonce"]) > 255:
        raise _bad_request("parameter_rejected")
    return OAuthParameters(values)


def _signature_matches(*, header: str, params: OAuthParameters, url: str, token: SimServerToken) -> bool:
    """oauthlib rebuilds the base string (method, URL, sorted parameters) and compares HMAC-SHA1 in constant time."""
    request = OAuthlibRequest(url, http_method="GET", headers={"Authorization": header})
    # The attributes oauthlib's own endpoints set before verifying (oauth1/rfc5849/endpoints/base.py).
    vars(request).update(
        params=oauth_signature.collect_parameters(
            uri_query=url.partition("?")[2],
            headers={"Authorization": header},
            exclude_oauth_signature=True,
            with_realm=False,
        ),
        signature=params.values["oauth_signature"],
    )
    return oauth_signature.verify_hmac_sha1(request, token.consumer_secret, token.access_secret)


def verify_session_request(
    session: Session, *, header: str | None, url: str, now: datetime, real_now: datetime
) -> SimServerToken:
    """The token a signed ``/session`` request proves, after every OAuth check; records its nonce.

    ``now`` is the simulator's clock (token expiry); ``real_now`` the wall clock that clients stamp
    ``oauth_timestamp`` with, so advancing the simulator's clock does not make every signature stale.
    """
    params = parse_authorization(header)
    assert header is not None
    token = session.scalars(select(SimServerToken).where(SimServerToken.access_token == params.access_token)).first()
    if token is None or not _constant_equal(token.consumer_key, params.consumer_key):
        raise _unauthorized("token_rejected")
    timestamp = params.values["oauth_timestamp"]
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise _unauthorized("timestamp_refused")
    if abs(real_now.timestamp() - int(timestamp)) > TIMESTAMP_WINDOW.total_seconds():
        raise _unauthorized("timestamp_refused")
    if not _signature_matches(header=header, params=params, url=url, token=token):
        raise _unauthorized("signature_invalid")
    nonce_key = (token.consumer_key, params.values["oauth_nonce"])
    if session.get(SimNonce, nonce_key) is not None:
        raise _unauthorized("nonce_used")
    if token.revoked_at is not None or _newer_token_exists(session, token):
        # Downloading a new token in the portal revokes the previous one (reference 1.4).
        raise _unauthorized("token_rejected")
    if token.expires_at <= now:
        raise _unauthorized("token_expired")
    session.execute(delete(SimNonce).where(SimNonce.seen_at < real_now - 2 * TIMESTAMP_WINDOW))
    session.add(SimNonce(consumer_key=nonce_key[0], nonce=nonce_key[1], seen_at=real_now))
    return token


def _newer_token_exists(session: Session, token: SimServerToken) -> bool:
    newer = select(SimServerToken.id).where(SimServerToken.server_id == token.server_id, SimServerToken.id > token.id)
    return session.scalars(newer.limit(1)).first() is not None


def _constant_equal(left: str, right: str) -> bool:
    return safe_string_equals(left, right)
