"""Configuration profiles as iOS takes them: verified, checked, installed in Apple's order, removed when allowed.

The enrollment profile arrives as a CMS SignedData (reference §1.5): iOS checks the signature and that the signer
chains to a certificate it trusts, and refuses a profile it cannot verify. Unsigned profiles, which some MDM
servers serve, install as iOS installs them ("Not Verified"). Payloads install anchors first, then the identity,
then MDM (§1.4), and an MDM payload iOS would refuse (no identity to point at, a foreign topic) stops the install.
"""

from __future__ import annotations

import base64
import ipaddress
import plistlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509

from pippin.sim.iphone.cms import CMSError, chains_to, read_signed_data
from pippin.sim.iphone.errors import RemovalRefused, SetupFailed

ANCHOR_TYPES = ("com.apple.security.root", "com.apple.security.pem", "com.apple.security.pkcs1")
IDENTITY_TYPES = ("com.apple.security.scep", "com.apple.security.pkcs12")
MDM_TYPE = "com.apple.mdm"
MAX_PROFILE_BYTES = 1024 * 1024
_REQUIRED_KEYS = ("PayloadType", "PayloadIdentifier", "PayloadUUID", "PayloadVersion")


@dataclass(frozen=True)
class Profile:
    """A profile that passed iOS's checks; ``payloads`` in the order iOS installs them."""

    identifier: str
    uuid: str
    removal_disallowed: bool
    payloads: list[dict[str, Any]]
    plist: bytes
    verified: bool  # signed by a certificate the device trusts (False: an unsigned profile)

    def payload_of(self, payload_type: str) -> dict[str, Any] | None:
        return next((p for p in self.payloads if p["PayloadType"] == payload_type), None)

    def anchors(self) -> list[x509.Certificate]:
        """The certificates of the anchor payloads, which the device trusts once the profile is installed."""
        found = []
        for payload in self.payloads:
            if payload["PayloadType"] in ANCHOR_TYPES:
                data = payload.get("PayloadContent")
                if not isinstance(data, bytes):
                    raise SetupFailed("profile", f"anchor payload {payload['PayloadIdentifier']!r} carries no data")
                try:
                    if data.lstrip().startswith(b"-----BEGIN"):
                        found.extend(x509.load_pem_x509_certificates(data))
                    else:
                        found.append(x509.load_der_x509_certificate(data))
                except ValueError:
                    raise SetupFailed("profile", "an anchor payload's certificate does not decode") from None
        return found


def read_profile(body: bytes, *, trusted: Sequence[x509.Certificate]) -> Profile:
    """Verify and check an enrollment profile as iOS does; :class:`SetupFailed` says what it refused."""
    if len(body) > MAX_PROFILE_BYTES:
        raise SetupFailed("profile", "the profile is larger than a device accepts")
    verified = False
    if body.lstrip()[:1] == b"<":
        plist = body
    else:
        try:
            signed = read_signed_data(body)
        except CMSError as exc:
            raise SetupFailed("profile", f"the profile's signature is refused: {exc}") from None
        if not chains_to(signed.signer, included=signed.certificates, anchors=trusted):
            raise SetupFailed("profile", "the profile is signed by a certificate the device does not trust")
        plist, verified = signed.content, True
    try:
        top = plistlib.loads(plist)
    except (plistlib.InvalidFileException, ValueError, OverflowError):
        raise SetupFailed("profile", "the profile is not a property list") from None
    if not isinstance(top, dict) or top.get("PayloadType") != "Configuration":
        raise SetupFailed("profile", "the profile is not a Configuration profile")
    _check_common(top, "the profile")
    content = top.get("PayloadContent")
    if not isinstance(content, list) or not all(isinstance(p, dict) for p in content):
        raise SetupFailed("profile", "the profile's PayloadContent is not a list of payloads")
    for payload in content:
        _check_common(payload, "a payload")
    payloads = sorted(content, key=_install_rank)
    _check_mdm(payloads)
    return Profile(
        identifier=top["PayloadIdentifier"],
        uuid=top["PayloadUUID"],
        removal_disallowed=top.get("PayloadRemovalDisallowed") is True,
        payloads=payloads,
        plist=plist,
        verified=verified,
    )


class ProfileStore:
    """The profiles installed on one device, by PayloadIdentifier (a profile replaces one with its identifier)."""

    def __init__(self) -> None:
        self._profiles: dict[str, Profile] = {}

    def install(self, profile: Profile) -> None:
        self._profiles[profile.identifier] = profile

    def find(self, identifier: str) -> Profile | None:
        return self._profiles.get(identifier)

    def installed(self) -> list[Profile]:
        return list(self._profiles.values())

    def mdm_profile(self) -> Profile | None:
        return next((p for p in self._profiles.values() if p.payload_of(MDM_TYPE) is not None), None)

    def remove(self, identifier: str, *, by_user: bool) -> Profile:
        """Remove a profile; the user cannot remove one with PayloadRemovalDisallowed (a locked ADE enrollment)."""
        profile = self._profiles.get(identifier)
        if profile is None:
            raise KeyError(identifier)
        if by_user and profile.removal_disallowed:
            raise RemovalRefused(f"the profile {identifier!r} cannot be removed from this device")
        del self._profiles[identifier]
        return profile

    def to_state(self) -> list[dict[str, Any]]:
        return [{"plist": base64.b64encode(p.plist).decode(), "verified": p.verified} for p in self._profiles.values()]

    @classmethod
    def from_state(cls, saved: list[dict[str, Any]]) -> ProfileStore:
        store = cls()
        for entry in saved:
            profile = read_profile(base64.b64decode(entry["plist"]), trusted=())
            store.install(Profile(**{**profile.__dict__, "verified": bool(entry.get("verified"))}))
        return store


def _check_common(payload: dict[str, Any], what: str) -> None:
    for key in _REQUIRED_KEYS:
        value = payload.get(key)
        if key == "PayloadVersion":
            if value != 1:
                raise SetupFailed("profile", f"{what} has PayloadVersion {value!r}, not 1")
        elif not isinstance(value, str) or not value:
            raise SetupFailed("profile", f"{what} has no {key}")


def _install_rank(payload: dict[str, Any]) -> int:
    kind = payload["PayloadType"]
    if kind in ANCHOR_TYPES:
        return 0
    if kind in IDENTITY_TYPES:
        return 1
    return 2 if kind == MDM_TYPE else 3


def _check_mdm(payloads: list[dict[str, Any]]) -> None:
    """What iOS refuses in a com.apple.mdm payload (apple-device-management `com.apple.mdm.yaml`)."""
    mdm = [p for p in payloads if p["PayloadType"] == MDM_TYPE]
    if not mdm:
        return
    if len(mdm) > 1:
        raise SetupFailed("profile", "the profile has more than one MDM payload")
    payload = mdm[0]
    identities = {p["PayloadUUID"] for p in payloads if p["PayloadType"] in IDENTITY_TYPES}
    target = payload.get("IdentityCertificateUUID")
    if not isinstance(target, str) or target not in identities:
        raise SetupFailed("profile", "the MDM payload's IdentityCertificateUUID names no identity payload")
    topic = payload.get("Topic")
    if not isinstance(topic, str) or not topic.startswith("com.apple.mgmt."):
        raise SetupFailed("profile", "the MDM payload's Topic does not start with com.apple.mgmt.")
    for key in ("ServerURL", "CheckInURL"):
        if key in payload or key == "ServerURL":
            require_device_url(payload.get(key), step="profile", what=f"the MDM payload's {key}")
    rights = payload.get("AccessRights")
    if not isinstance(rights, int) or isinstance(rights, bool) or not 1 <= rights <= 8191:
        raise SetupFailed("profile", "the MDM payload's AccessRights is not from 1 to 8191")
    if (rights & 2 and not rights & 1) or (rights & 128 and not rights & 64):
        raise SetupFailed("profile", "the MDM payload's AccessRights gives a right without the one it requires")
    if payload.get("SignMessage") is not True:
        # Like mdmb, this device authenticates only by Mdm-Signature; a TLS client certificate is not simulated.
        raise SetupFailed("profile", "the MDM payload does not set SignMessage, which this simulated device needs")


def require_device_url(value: object, *, step: str, what: str) -> str:
    """iOS speaks to MDM servers over https only; a simulated device also takes http to its own machine (demos)."""
    if not isinstance(value, str) or not value:
        raise SetupFailed(step, f"{what} is missing")
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        host = None
    if host and (parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(host))):
        return value
    raise SetupFailed(step, f"{what} is not an https URL")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
