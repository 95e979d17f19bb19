"""The enrollment profile (.mobileconfig) Pippin hands a device: MDM, SCEP and anchor payloads, signed.

Reference ``apple-mdm-protocol.md`` section 1 and Apple's ``mdm/profiles/com.apple.mdm.yaml``,
``com.apple.security.scep.yaml`` and ``com.apple.security.root.yaml``. The profile carries, in the order iOS
installs them: the certificates the device must trust (the SCEP CA, and any TLS anchors), the SCEP identity with a
one-time challenge bound to this enrollment (``pippin.pki.challenges``), and the MDM payload that points the device
at the check-in and command URLs with the push certificate's topic. The whole plist is CMS-signed by Pippin's
server identity (``pippin.pki.profile_signing``), so the device shows it as verified.

The top-level ``PayloadIdentifier`` is derived from the server's address and never changes (1.1: the device
replaces an installed profile with the same identifier, which re-enrollment relies on); ``PayloadUUID`` is new for
each profile. One function serves every way a device enrolls: ADE (``mdm/ade_enrollment.py``), the user-affinity
web view and manual enrollment links; each passes its own binding.
"""

from __future__ import annotations

import ipaddress
import plistlib
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.orm import Session

from pippin.config import Settings
from pippin.crypto.certs import certificate_to_der
from pippin.crypto.keys import KeyGenerator
from pippin.crypto.secrets import SecretBox
from pippin.errors import ConfigurationError
from pippin.pki.challenges import EnrollmentBinding, issue_challenge
from pippin.pki.profile_signing import sign_profile
from pippin.pki.server_identity import ensure_server_identity
from pippin.store.models import PUSH_CERTIFICATE_ID, PushCertificate

#: What the profile is served as (reference 1.5).
PROFILE_MEDIA_TYPE = "application/x-apple-aspen-config"
#: Every access right (reference 1.2): Pippin manages corporate-owned devices whole.
ALL_ACCESS_RIGHTS = 8191
SERVER_CAPABILITIES = ("com.apple.mdm.per-user-connections", "com.apple.mdm.bootstraptoken")
#: The SCEP payload's ``Name``: the CA identifier the device sends as GetCACert's ``message``.
SCEP_CA_NAME = "pippin"
IDENTITY_COMMON_NAME = "Pippin device identity"
#: 1 signing + 4 encryption: the identity signs check-ins and decrypts profiles sent to it (reference 1.3).
KEY_USAGE_SIGN_AND_ENCRYPT = 5
DEFAULT_ORGANIZATION = "Pippin"
#: OID of the X.520 serialNumber attribute, for the device's serial in the identity's subject.
SERIAL_NUMBER_OID = "2.5.4.5"


class NoPushCertificate(ConfigurationError):
    """Without the push certificate's topic no enrollment profile can be made: the admin must upload one."""

    code = "no_push_certificate"


def profile_identifier(settings: Settings) -> str:
    """The profile's stable ``PayloadIdentifier``: the server's host in reverse-DNS order, then ``pippin.enrollment``.

    ``https://mdm.example.com`` gives ``com.example.mdm.pippin.enrollment``; an IP address is kept in its order.
    """
    host = (urlsplit(settings.server_url).hostname or "localhost").rstrip(".").lower()
    try:
        ipaddress.ip_address(host)
        labels = [host.replace(":", "-")]
    except ValueError:
        labels = list(reversed(host.split(".")))
    return ".".join([*labels, "pippin", "enrollment"])


def push_topic(session: Session, *, now: datetime) -> str:
    """The topic of the push certificate in force; :class:`NoPushCertificate` when there is none or it expired."""
    # The three columns this needs, not the sealed key and certificates: every enrollment asks.
    row = session.execute(
        select(
            PushCertificate.certificate_pem.is_not(None).label("has_certificate"),
            PushCertificate.topic,
            PushCertificate.not_after,
        ).where(PushCertificate.id == PUSH_CERTIFICATE_ID)
    ).one_or_none()
    if row is None or not row.has_certificate or row.topic is None:
        raise NoPushCertificate(
            "Devices cannot enroll: there is no MDM push certificate, so enrollment profiles have no push topic.",
            hint="Make the request with `pippin push csr`, have Apple's Push Certificates Portal sign it, then "
            "upload the certificate with `pippin push upload-cert`.",
        )
    if row.not_after is not None and row.not_after <= now:
        raise NoPushCertificate(
            "Devices cannot enroll: the MDM push certificate has expired, so enrolled devices could not be reached.",
            hint="Renew it at Apple's Push Certificates Portal with the same Apple ID, then upload it with "
            "`pippin push upload-cert`.",
        )
    topic: str = row.topic
    return topic


def _payload(payload_type: str, identifier: str, **keys: Any) -> dict[str, Any]:
    return {
        "PayloadType": payload_type,
        "PayloadIdentifier": identifier,
        "PayloadUUID": str(uuid.uuid4()).upper(),
        "PayloadVersion": 1,
        **keys,
    }


def _subject(organization: str, serial_number: str | None) -> list[list[list[str]]]:
    subject = [[["O", organization]], [["CN", IDENTITY_COMMON_NAME]]]
    if serial_number:
        subject.append([[SERIAL_NUMBER_OID, serial_number]])
    return subject


def build_profile_plist(
    *,
    settings: Settings,
    topic: str,
    challenge: str,
    scep_ca: x509.Certificate,
    binding: EnrollmentBinding,
    removal_disallowed: bool,
    organization: str = DEFAULT_ORGANIZATION,
    anchor_certificates: Sequence[x509.Certificate] = (),
) -> bytes:
    """The enrollment profile's XML plist, unsigned (see the module docstring for what it holds)."""
    base = settings.server_url.rstrip("/")
    identifier = profile_identifier(settings)
    anchors: list[dict[str, Any]] = []
    seen: set[bytes] = set()
    for index, certificate in enumerate([scep_ca, *anchor_certificates]):
        der = certificate_to_der(certificate)
        if der in seen:
            continue
        seen.add(der)
        anchors.append(
            _payload(
                "com.apple.security.root",
                f"{identifier}.anchor.{index}",
                PayloadContent=der,
                PayloadCertificateFileName="pippin-scep-ca.cer" if index == 0 else f"anchor-{index}.cer",
                PayloadDisplayName="Pippin device certificate authority" if index == 0 else "Server certificate anchor",
            )
        )
    scep = _payload(
        "com.apple.security.scep",
        f"{identifier}.scep",
        PayloadDisplayName="Device identity",
        PayloadContent={
            "URL": f"{base}/mdm/scep",
            "Name": SCEP_CA_NAME,
            "Challenge": challenge,
            "Keysize": 2048,
            "Key Type": "RSA",
            "Key Usage": KEY_USAGE_SIGN_AND_ENCRYPT,
            "Subject": _subject(organization, binding.serial_number),
        },
    )
    mdm = _payload(
        "com.apple.mdm",
        f"{identifier}.mdm",
        PayloadDisplayName="Device management",
        IdentityCertificateUUID=scep["PayloadUUID"],
        Topic=topic,
        ServerURL=f"{base}/mdm/connect",
        CheckInURL=f"{base}/mdm/checkin",
        SignMessage=True,
        AccessRights=ALL_ACCESS_RIGHTS,
        CheckOutWhenRemoved=True,
        ServerCapabilities=list(SERVER_CAPABILITIES),
    )
    top: dict[str, Any] = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": identifier,
        "PayloadUUID": str(uuid.uuid4()).upper(),
        "PayloadDisplayName": f"{organization} device management",
        "PayloadOrganization": organization,
        "PayloadDescription": "Lets your organisation manage this device.",
        "PayloadContent": [*anchors, scep, mdm],
    }
    if removal_disallowed:
        top["PayloadRemovalDisallowed"] = True
    return plistlib.dumps(top, fmt=plistlib.FMT_XML)


def enrollment_profile(
    session: Session,
    *,
    settings: Settings,
    box: SecretBox,
    generate_key: KeyGenerator,
    now: datetime,
    binding: EnrollmentBinding,
    uses: int = 1,
    removal_disallowed: bool,
    organization: str | None = None,
    anchor_certificates: Sequence[x509.Certificate] = (),
) -> bytes:
    """The signed enrollment profile for ``binding``: a challenge good for ``uses`` SCEP requests until
    ``now + settings.enrollment_challenge_ttl`` is issued in ``session``, then the profile is built and signed.

    Raises :class:`NoPushCertificate` (a :class:`ConfigurationError`: the admin's to fix, the device retries later)
    before anything is written when there is no usable push certificate. The SCEP CA and the server identity are
    made on first use (sealed with ``box``).
    """
    topic = push_topic(session, now=now)
    # The identity comes with the CA above it, made too if need be: one read of their row.
    identity = ensure_server_identity(session, box=box, generate_key=generate_key, now=now)
    challenge = issue_challenge(session, binding=binding, uses=uses, expires_at=now + settings.enrollment_challenge_ttl)
    plist = build_profile_plist(
        settings=settings,
        topic=topic,
        challenge=challenge,
        scep_ca=identity.ca_certificate,
        binding=binding,
        removal_disallowed=removal_disallowed,
        organization=organization or DEFAULT_ORGANIZATION,
        anchor_certificates=anchor_certificates,
    )
    return sign_profile(identity, plist)
