"""A DEP token's four OAuth 1.0a values, and the signed ``Authorization`` header that trades them for a session.

Apple's ``GET /session`` takes OAuth 1.0a with HMAC-SHA1, a fresh nonce and timestamp per request and no body
parameters (reference section 2.1). The signing itself is ``oauthlib``'s; this module only holds the values and
keeps them out of ``repr()``, logs and errors.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, SIGNATURE_TYPE_AUTH_HEADER, Client

from pippin.dep.errors import DEPRequestRejected

# oauthlib logs the consumer key and access token at DEBUG; keep them out of logs whatever the root level is.
logging.getLogger("oauthlib").setLevel(logging.INFO)

# Apple's realm; not part of the signature, sent by zentral and the Ruby client (reference section 2.1).
REALM = "ADM"
_FIELDS = ("consumer_key", "consumer_secret", "access_token", "access_secret")


@dataclass(frozen=True)
class OAuthCredentials:
    """The token Apple issues for one MDM server (reference section 1.3). ``repr()`` shows no secret.

    ``expires_at`` is ``access_token_expiry`` when known: the client then refuses locally once it has passed,
    instead of asking Apple with a dead token.
    """

    consumer_key: str = field(repr=False)
    consumer_secret: str = field(repr=False)
    access_token: str = field(repr=False)
    access_secret: str = field(repr=False)
    expires_at: datetime | None = None

    def __post_init__(self) -> None:
        # nanodep's OAuth1Tokens.Valid: all four values must be present.
        missing = [name for name in _FIELDS if not isinstance(getattr(self, name), str) or not getattr(self, name)]
        if missing:
            raise DEPRequestRejected(
                f"The DEP token is incomplete: {', '.join(missing)} missing.",
                hint="Download the token again from Apple Business Manager and upload the new file.",
            )
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            object.__setattr__(self, "expires_at", self.expires_at.replace(tzinfo=UTC))

    def __str__(self) -> str:
        return repr(self)

    @classmethod
    def from_token_json(cls, data: Mapping[str, object]) -> OAuthCredentials:
        """Build from the JSON inside a decrypted ``.p7m`` (reference 1.3), reading ``access_token_expiry``."""
        values = {name: data.get(name) for name in _FIELDS}
        if not all(isinstance(value, str) for value in values.values()):
            missing = [name for name, value in values.items() if not isinstance(value, str) or not value]
            raise DEPRequestRejected(
                f"The DEP token is incomplete: {', '.join(missing)} missing.",
                hint="Download the token again from Apple Business Manager and upload the new file.",
            )
        expiry = data.get("access_token_expiry")
        expires_at = None
        if isinstance(expiry, str) and expiry:
            try:
                expires_at = datetime.fromisoformat(expiry.replace("Z", "+00:00"))
            except ValueError:
                raise DEPRequestRejected(
                    "The DEP token's expiry date is not a valid timestamp.",
                    hint="Download the token again from Apple Business Manager and upload the new file.",
                ) from None
        return cls(
            consumer_key=str(values["consumer_key"]),
            consumer_secret=str(values["consumer_secret"]),
            access_token=str(values["access_token"]),
            access_secret=str(values["access_secret"]),
            expires_at=expires_at,
        )


def session_authorization(credentials: OAuthCredentials, url: str) -> str:
    """The ``Authorization`` header for ``GET url`` (Apple's ``/session``), with a new nonce and timestamp."""
    signer = Client(
        credentials.consumer_key,
        client_secret=credentials.consumer_secret,
        resource_owner_key=credentials.access_token,
        resource_owner_secret=credentials.access_secret,
        signature_method=SIGNATURE_HMAC_SHA1,
        signature_type=SIGNATURE_TYPE_AUTH_HEADER,
        realm=REALM,
    )
    _, headers, _ = signer.sign(url, http_method="GET")
    return str(headers["Authorization"])
