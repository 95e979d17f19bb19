"""ADE enrollment: a device in Setup Assistant posts its signed MachineInfo and gets its enrollment profile.

Reference ``apple-mdm-protocol.md`` 0.3: the device POSTs to the URL of the DEP profile Apple gave it, which ends in
Pippin's signed reference to the profile and revision (``dep/enrollment_reference.py``). Pippin answers only a
device that proves it is one (its MachineInfo signed by a device of the configured trust anchors,
``mdm/machine_info.py``) and that Apple assigned to one of this server's tokens with a profile; any other device
gets Apple's ``com.apple.unrecognized.device``. The profile it gets is bound to its serial, UDID and the profile
revision it was promised, and cannot be removed when that DEP profile is locked (``is_mdm_removable`` false).

Nothing is written until every check has passed; then only the SCEP challenge (and, on first use, the SCEP CA and
server identity) in the caller's transaction.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.orm import Session

from pippin.config import Settings
from pippin.crypto.keys import KeyGenerator
from pippin.crypto.secrets import SecretBox
from pippin.dep.enrollment_reference import read_reference
from pippin.errors import NotFound, PippinError
from pippin.mdm.enrollment_profile import enrollment_profile
from pippin.mdm.machine_info import MachineInfo, verify_machine_info
from pippin.mdm.trust_anchors import load_device_trust_anchors
from pippin.pki.challenges import EnrollmentBinding
from pippin.store.models import DEPProfile, DEPToken, Device

logger = logging.getLogger(__name__)

_VERSION = re.compile(r"\d+(\.\d+){0,3}")


class DeviceNotRecognized(PippinError):
    """The device is not one Apple assigned to this server with a Pippin profile: Apple's 403
    ``com.apple.unrecognized.device`` (``device/refusals.py``), never a 401."""

    code = "device_not_recognized"


class SoftwareUpdateRequired(PippinError):
    """The profile asks for a newer OS than the device runs, and the device says it can update first: Apple's 403
    ``com.apple.softwareupdate.required`` with the version to reach."""

    code = "software_update_required"

    def __init__(self, os_version: str, build_version: str | None = None) -> None:
        super().__init__(f"The device must update to {os_version} before it enrolls.")
        self.os_version = os_version
        self.build_version = build_version


@dataclass(frozen=True)
class IssuedProfile:
    """The signed enrollment profile, and the device it was made for."""

    profile: bytes
    machine_info: MachineInfo
    binding: EnrollmentBinding


def _version_tuple(version: str | None) -> tuple[int, ...] | None:
    if version is None or not _VERSION.fullmatch(version.strip()):
        return None
    return tuple(int(part) for part in version.strip().split("."))


def required_update(machine_info: MachineInfo, *, minimum_os_version: str | None) -> str | None:
    """The OS version the device must update to before it enrolls, or None.

    Only a device that says it can be asked to update (``MDM_CAN_REQUEST_SOFTWARE_UPDATE``, iOS 17+) is refused
    so (reference ``apple-mdm-updates-2026.md`` 4.4, as Zentral and Fleet do); an older one would be stuck.
    """
    minimum = _version_tuple(minimum_os_version)
    current = _version_tuple(machine_info.os_version)
    if minimum is None or current is None or not machine_info.can_request_software_update:
        return None
    width = max(len(minimum), len(current))
    if current + (0,) * (width - len(current)) >= minimum + (0,) * (width - len(minimum)):
        return None
    return minimum_os_version


def minimum_os_version(profile: DEPProfile) -> str | None:
    """The OS version ``profile`` requires before enrollment (``None``: any), the one place that reads it.

    The profile's current setting, whichever revision the device was given: it is Pippin's policy, never sent to
    Apple, so a change applies to the next device that asks, with no new revision.
    """
    return profile.minimum_os_version


def require_minimum_os(profile: DEPProfile, machine_info: MachineInfo, *, refused_by: str) -> None:
    """:class:`SoftwareUpdateRequired` (logged as refused by ``refused_by``) when the device must update before it
    enrolls with ``profile``; the one gate both the enrollment URL and the sign-in page apply."""
    update_to = required_update(machine_info, minimum_os_version=minimum_os_version(profile))
    if update_to is not None:
        fields = {"serial": machine_info.serial_number, "udid": machine_info.udid, "profile": profile.id}
        logger.info("%s refused: software update required", refused_by, extra={"fields": fields})
        raise SoftwareUpdateRequired(update_to)


def _anchor_certificates(profile: DEPProfile) -> list[x509.Certificate]:
    """The profile's ``anchor_certs`` (base64 DER, what the device trusts for TLS in Setup Assistant), kept trusted
    after enrollment too; one that does not parse is left out rather than failing the enrollment."""
    certificates = []
    for encoded in profile.anchor_certs or []:
        try:
            certificates.append(x509.load_der_x509_certificate(base64.b64decode(encoded, validate=True)))
        except (ValueError, binascii.Error, TypeError):
            logger.warning("a DEP profile anchor certificate does not parse", extra={"fields": {"profile": profile.id}})
    return certificates


def _recognized_device(session: Session, serial_number: str) -> Device | None:
    """The DEP record of a device Apple holds a Pippin profile for, on one of this server's tokens.

    The profile it enrolls with is the one its URL names, even when another is assigned by now: that is what Apple
    gave the device, and the inventory shows it as pending reset until it is erased (DESIGN.md, device states).
    """
    device = session.execute(select(Device).where(Device.serial_number == serial_number)).scalar_one_or_none()
    if device is None or device.token_id is None or not device.can_enroll or device.assigned_profile_id is None:
        return None
    return device


def enroll_ade_device(
    session: Session,
    *,
    settings: Settings,
    box: SecretBox,
    generate_key: KeyGenerator,
    now: datetime,
    reference: str,
    body: bytes,
) -> IssuedProfile:
    """The enrollment profile for the device whose signed MachineInfo is ``body``, posted to ``reference``'s URL.

    Raises, before writing anything: :class:`NotFound` for a reference Pippin did not sign;
    ``ConfigurationError`` when no trust anchors or push certificate are configured (the device retries later);
    ``MachineInfoRefused`` for a body that is not a device's signed MachineInfo; :class:`DeviceNotRecognized`;
    :class:`SoftwareUpdateRequired`.
    """
    target = read_reference(box, reference)
    if target is None:
        raise NotFound("There is no enrollment at this address.")
    anchors = load_device_trust_anchors(settings)
    machine_info = verify_machine_info(body, anchors=anchors)
    fields = {"serial": machine_info.serial_number, "udid": machine_info.udid, "profile": target.profile_id}
    device = _recognized_device(session, machine_info.serial_number)
    profile = session.get(DEPProfile, target.profile_id)
    if device is None or profile is None:
        logger.info("ADE enrollment refused: device not recognized", extra={"fields": fields})
        raise DeviceNotRecognized("This device is not assigned to this server with an enrollment profile.")
    require_minimum_os(profile, machine_info, refused_by="ADE enrollment")
    # Only the organisation's name, not the token's sealed credentials.
    organization = session.scalar(select(DEPToken.org_name).where(DEPToken.id == device.token_id))
    binding = EnrollmentBinding(
        serial_number=machine_info.serial_number,
        udid=machine_info.udid,
        profile_id=target.profile_id,
        profile_revision=target.revision,
    )
    signed = enrollment_profile(
        session,
        settings=settings,
        box=box,
        generate_key=generate_key,
        now=now,
        binding=binding,
        removal_disallowed=not profile.is_mdm_removable,
        organization=organization,
        anchor_certificates=_anchor_certificates(profile),
    )
    logger.info("ADE enrollment profile issued", extra={"fields": {**fields, "revision": target.revision}})
    return IssuedProfile(profile=signed, machine_info=machine_info, binding=binding)
