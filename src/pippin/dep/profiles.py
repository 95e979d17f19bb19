"""Enrollment profiles: kept in Pippin, checked against Apple's rules first, defined at Apple per token.

Apple refuses a bad profile with one code for the whole request (reference 3.5). Pippin checks the same rules
before anything is stored or sent, and names Apple's code in the error, so an admin can look it up. A profile
is defined at Apple lazily, under each token it is used with, once per revision: Apple's profiles are immutable,
so an edit that Apple would see raises the revision, and every device that had the profile is queued again.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from pippin.admin import audit
from pippin.admin.audit import Actor, AuditAction
from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.dep.enrollment_reference import ProfileRevision, build_reference
from pippin.dep.profile_schemas import (
    AnchorCertificateRead,
    AssignmentCounts,
    ProfileCreate,
    ProfileDefinitionRead,
    ProfileRead,
    ProfileUpdate,
    SetupPaneRead,
)
from pippin.dep.setup_panes import PANES, normalize_skip_keys
from pippin.dep.token import get_token
from pippin.dep.wire import Profile
from pippin.errors import Conflict, InvalidInput, NotFound
from pippin.store.models import (
    AssignmentStatus,
    DEPProfile,
    DEPToken,
    Device,
    ProfileDefinition,
    TokenDefaultProfile,
    UserAffinity,
    utcnow,
)
from pippin.text import check_display_name, check_text

# Apple's limits and the code it answers when one is broken (reference 3.5).
_TEXT_LIMITS: dict[str, tuple[int, str, str]] = {
    "department": (125, "DEPARTMENT_INVALID", "The department"),
    "support_phone_number": (50, "SUPPORT_PHONE_INVALID", "The support phone number"),
    "support_email_address": (250, "SUPPORT_EMAIL_INVALID", "The support email address"),
    "org_magic": (256, "MAGIC_INVALID", "org_magic"),
}
MAX_NAME = 125
MAX_URL = 2000
MAX_DESCRIPTION = 1000
MAX_CERTIFICATE_BYTES = 64 * 1024
_LANGUAGE = re.compile(r"[a-z]{2,3}")
_REGION = re.compile(r"[A-Z]{2}")
_EMAIL = re.compile(r"[^\s@]+@[^\s@]+")
_PEM_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
#: A minimum OS version: 1 to 3 numbers (major, minor, patch), each 0 to 999 without leading zeros, ASCII digits
#: only (``\d`` would take other scripts' digits, which the device never reports).
MAX_OS_VERSION_PART = 999
_OS_VERSION = re.compile(r"(0|[1-9][0-9]{0,2})(\.(0|[1-9][0-9]{0,2})){0,2}")

# Admin-facing keys -> columns, for the fields whose names differ.
_COLUMN_FOR = {
    "supervised": "is_supervised",
    "mandatory": "is_mandatory",
    "support_phone": "support_phone_number",
    "support_email": "support_email_address",
}
# Update keys that have no "unset" value.
_NOT_NULL = (
    "name",
    "user_affinity",
    "supervised",
    "locked",
    "mandatory",
    "allow_pairing",
    "await_device_configured",
    "auto_advance_setup",
    "anchor_certs",
    "skip_setup_items",
)
# Columns that do not change what Apple stores; editing only these keeps the revision. A new revision is defined
# at Apple and reassigned to every device that had the profile, which Apple may show as "Pending reset" on enrolled
# devices: a price worth paying only for what Apple sends the device. The minimum OS version is Pippin's own policy,
# applied when a device asks to enroll (``mdm/ade_enrollment.py``), so a change to it takes effect at once with
# nothing sent to Apple.
_PIPPIN_ONLY = {"description", "minimum_os_version"}


def _apple_rule(code: str, message: str, hint: str) -> InvalidInput:
    return InvalidInput(f"{message} (Apple's rule {code}).", hint=hint)


def _clean_text(label: str, value: str | None) -> str | None:
    if value is None:
        return None
    return check_text(value, field=label).strip() or None


def check_url(url: str, *, setting: str = "PIPPIN_SERVER_URL") -> str:
    """A URL Apple accepts in a profile: http(s), a host, at most 2000 characters once URL-encoded (3.5)."""
    encoded = quote(url, safe=":/?#[]@!$&'()*+,;=%")
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        parts = None
    if (
        not url
        or len(encoded) > MAX_URL
        or any(ord(ch) < 33 or ord(ch) == 127 for ch in url)
        or parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
    ):
        raise _apple_rule(
            "CONFIG_URL_INVALID",
            f"{url[:80]!r} is not a URL Apple accepts for enrollment",
            f"Set {setting} to Pippin's address as devices reach it, e.g. https://mdm.example.com "
            f"(http or https, at most {MAX_URL} characters).",
        )
    return url


def parse_anchor_certificates(values: list[str]) -> list[str]:
    """Certificates given as PEM (one or several per entry) or base64 DER, as Apple's base64 DER (reference 5)."""
    found: list[str] = []
    for index, value in enumerate(values, start=1):
        if not isinstance(value, str) or len(value) > MAX_CERTIFICATE_BYTES:
            raise InvalidInput(f"Anchor certificate {index} is larger than {MAX_CERTIFICATE_BYTES:,} characters.")
        check_text(value, field=f"Anchor certificate {index}", multiline=True)
        blocks = _PEM_BLOCK.findall(value)
        try:
            if blocks:
                ders = [x509.load_pem_x509_certificate(block.encode()).public_bytes(Encoding.DER) for block in blocks]
            else:
                der = base64.b64decode("".join(value.split()), validate=True)
                ders = [x509.load_der_x509_certificate(der).public_bytes(Encoding.DER)]
        except (ValueError, binascii.Error):
            raise InvalidInput(
                f"Anchor certificate {index} is not an X.509 certificate.",
                hint="Give the certificate as PEM (-----BEGIN CERTIFICATE-----) or as base64 of its DER bytes.",
            ) from None
        found.extend(base64.b64encode(der).decode() for der in ders)
    return list(dict.fromkeys(found))


def check_minimum_os_version(value: str | None) -> str | None:
    """``value`` as a minimum OS version (e.g. ``17.4``), ``None`` for none (also for empty text), or
    :class:`InvalidInput` naming the field. Pippin's rule, not Apple's: the profile JSON has no such field."""
    version = _clean_text("The minimum OS version", value)
    if version is not None and not _OS_VERSION.fullmatch(version):
        raise InvalidInput(
            "The minimum OS version (minimum_os_version) must be 1 to 3 numbers separated by dots, each 0 to "
            f"{MAX_OS_VERSION_PART} without leading zeros, such as 17.4 or 17.4.1.",
            hint="Give the iOS or iPadOS version devices must run to enroll, or leave it empty for none.",
        )
    return version


def _validate(values: dict[str, Any]) -> dict[str, Any]:
    """Columns checked against Apple's rules (reference 3.5); the first broken rule is raised."""
    values = dict(values)
    name = _clean_text("The profile name", values.get("name"))
    if name is None or len(name) > MAX_NAME:
        raise _apple_rule(
            "CONFIG_NAME_INVALID",
            "The profile name must be 1 to 125 characters",
            "Devices show the name during setup; choose a shorter one.",
        )
    values["name"] = check_display_name(name, field="The profile name", max_chars=MAX_NAME)
    description = _clean_text("The description", values.get("description"))
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise InvalidInput(f"The description is longer than {MAX_DESCRIPTION} characters.", hint="Shorten it.")
    values["description"] = description
    for column, (limit, code, label) in _TEXT_LIMITS.items():
        value = _clean_text(label, values.get(column))
        if value is not None and len(value) > limit:
            raise _apple_rule(code, f"{label} is longer than {limit} characters", "Shorten it.")
        values[column] = value
    email = values.get("support_email_address")
    if email is not None and not _EMAIL.fullmatch(email):
        raise _apple_rule("SUPPORT_EMAIL_INVALID", f"{email[:80]!r} is not an email address", "Use name@domain.")
    if not values.get("is_mdm_removable", True) and not values.get("is_supervised", False):
        raise _apple_rule(
            "FLAGS_INVALID",
            "A locked profile (MDM profile not removable) must also be supervised",
            'Add --supervised ("supervised": true), or leave the profile removable.',
        )
    language = _clean_text("The language", values.get("language"))
    region = _clean_text("The region", values.get("region"))
    if language is not None and not _LANGUAGE.fullmatch(language.lower()):
        raise _apple_rule("LOCALE_INVALID", f"{language[:20]!r} is not a language code", "Use ISO 639, e.g. en, sv.")
    if region is not None and not _REGION.fullmatch(region.upper()):
        raise _apple_rule("LOCALE_INVALID", f"{region[:20]!r} is not a region code", "Use ISO 3166, e.g. US, SE.")
    values["language"] = language.lower() if language else None
    values["region"] = region.upper() if region else None
    values["skip_setup_items"] = normalize_skip_keys(values.get("skip_setup_items") or [])
    values["anchor_certs"] = parse_anchor_certificates(values.get("anchor_certs") or [])
    values["minimum_os_version"] = check_minimum_os_version(values.get("minimum_os_version"))
    if values.get("user_affinity") not in (None, *UserAffinity):
        raise InvalidInput("user_affinity must be none or with_user.")
    return values


def _columns_from(fields: Mapping[str, Any]) -> dict[str, Any]:
    columns = {_COLUMN_FOR.get(key, key): value for key, value in fields.items() if key != "locked"}
    if "locked" in fields and fields["locked"] is not None:
        columns["is_mdm_removable"] = not fields["locked"]
    return columns


def _columns_of(profile: DEPProfile) -> dict[str, Any]:
    names = [column.key for column in DEPProfile.__table__.columns]
    return {name: getattr(profile, name) for name in names if name not in ("id", "created_at", "updated_at")}


def find_profile(session: Session, *, name: str) -> DEPProfile | None:
    check_text(name, field="The profile name")
    return session.scalars(select(DEPProfile).where(DEPProfile.name == name)).one_or_none()


def get_profile(session: Session, *, name: str) -> DEPProfile:
    """The profile called ``name``, or :class:`NotFound` with a hint."""
    profile = find_profile(session, name=name) if isinstance(name, str) and len(name) <= 200 else None
    if profile is None:
        raise NotFound(
            f"No enrollment profile is called {str(name)[:80]!r}.", hint="`pippin profiles list` shows them."
        )
    return profile


def _refuse_taken(session: Session, name: str, *, other_than: int | None = None) -> None:
    existing = find_profile(session, name=name)
    if existing is not None and existing.id != other_than:
        raise Conflict(f"An enrollment profile called {name!r} already exists.", hint="Choose another name.")


def create_profile(
    session: Session, *, data: ProfileCreate, settings: Settings, actor: Actor, now: datetime | None = None
) -> ProfileRead:
    """Store a new profile after checking it against Apple's rules; nothing is stored when one is broken."""
    moment = now or utcnow()
    values = _validate({**_columns_from(data.model_dump()), "revision": 1})
    enrollment_urls(settings, user_affinity=values["user_affinity"])
    _refuse_taken(session, values["name"])
    profile = DEPProfile(**values, created_at=moment, updated_at=moment)
    session.add(profile)
    session.flush()
    audit.record_event(session, actor=actor, action=AuditAction.profile_create, target=profile.name, now=moment)
    return to_read(session, profile, settings=settings)


def update_profile(
    session: Session,
    *,
    name: str,
    changes: ProfileUpdate,
    settings: Settings,
    actor: Actor,
    now: datetime | None = None,
) -> ProfileRead:
    """Apply ``changes``. A change Apple would see raises the revision and queues every device that had the
    profile for the new one (Apple's profiles are immutable, reference 3.5); Apple's cooldowns still hold.

    The queued devices go to Apple with the next send of due assignments, which every interface starts after
    an edit. An edit that changes nothing records nothing.
    """
    moment = now or utcnow()
    profile = get_profile(session, name=name)
    given = changes.model_dump(exclude_unset=True)
    for key in _NOT_NULL:
        if key in given and given[key] is None:
            raise InvalidInput(f"{key} cannot be null.", hint="Leave it out to keep the current value.")
    before = _columns_of(profile)
    after = _validate({**before, **_columns_from(given)})
    enrollment_urls(settings, user_affinity=after["user_affinity"])
    if after["name"] != before["name"]:
        _refuse_taken(session, after["name"], other_than=profile.id)
    changed = {key for key in after if after[key] != before[key]}
    if not changed:
        return to_read(session, profile, settings=settings)
    for key in changed:
        setattr(profile, key, after[key])
    profile.updated_at = moment
    if changed - _PIPPIN_ONLY:
        profile.revision = before["revision"] + 1
        requeue_profile_devices(session, profile=profile, now=moment)
    session.flush()
    audit.record_event(
        session,
        actor=actor,
        action=AuditAction.profile_update,
        target=profile.name,
        detail={"revision": profile.revision},
        now=moment,
    )
    return to_read(session, profile, settings=settings)


def requeue_profile_devices(session: Session, *, profile: DEPProfile, now: datetime) -> int:
    """Point every device that has ``profile`` at its current revision; those Apple had accepted become pending.

    Devices cooling down after FAILED or THROTTLED keep their status and retry time, and are sent the new revision
    when due; devices Apple said are not on the server stay so.
    """
    base = update(Device).where(Device.assigned_profile_id == profile.id).execution_options(synchronize_session=False)
    session.execute(
        base.where(Device.assignment_status.in_([AssignmentStatus.assigned, AssignmentStatus.pending])).values(
            assignment_status=AssignmentStatus.pending,
            assignment_retry_at=None,
            assignment_error=None,
            # The new revision was never sent: nothing to look up at Apple first (dep/assignment_runner.py).
            assignment_claim=None,
        )
    )
    result = session.execute(base.values(assigned_revision=profile.revision, assignment_updated_at=now))
    return int(getattr(result, "rowcount", 0) or 0)


def delete_profile(session: Session, *, name: str, actor: Actor) -> None:
    """Forget a profile that no device and no token uses (Apple keeps its definitions; it cannot delete them)."""
    profile = get_profile(session, name=name)
    in_use = session.scalar(select(func.count()).select_from(Device).where(Device.assigned_profile_id == profile.id))
    defaults = session.scalars(
        select(DEPToken.name)
        .join(TokenDefaultProfile, TokenDefaultProfile.token_id == DEPToken.id)
        .where(TokenDefaultProfile.profile_id == profile.id)
    ).all()
    if in_use or defaults:
        where = f"{in_use} devices" if in_use else f"the default of token(s) {', '.join(defaults)}"
        raise Conflict(
            f"Profile {profile.name!r} is still given to {where}.",
            hint="Assign those devices another profile and set another default first "
            "(`pippin profiles assign`, `pippin profiles set-default`).",
        )
    session.execute(delete(DEPProfile).where(DEPProfile.id == profile.id))
    audit.record_event(session, actor=actor, action=AuditAction.profile_delete, target=profile.name)


def set_default_profile(session: Session, *, token_name: str, profile_name: str | None, actor: Actor) -> None:
    """Make the profile ``profile_name`` the one the token's newly synced devices get; ``None`` stops giving one."""
    token = get_token(session, name=token_name)
    profile = None if profile_name is None else get_profile(session, name=profile_name)
    audit.record_event(
        session,
        actor=actor,
        action=AuditAction.profile_set_default,
        target=token.name,
        detail={"profile": None if profile is None else profile.name},
    )
    current = session.get(TokenDefaultProfile, token.id)
    if profile is None:
        if current is not None:
            session.delete(current)
    elif current is None:
        session.add(TokenDefaultProfile(token_id=token.id, profile_id=profile.id, set_at=utcnow()))
    else:
        # covered_until reset: the next sync looks at every device of the token for the (new) default once.
        current.profile_id, current.set_at, current.covered_until = profile.id, utcnow(), None
    session.flush()


def enrollment_urls(settings: Settings, *, user_affinity: str, reference: str = "") -> tuple[str, str | None]:
    """The MDM URL and, with user affinity, the sign-in page, both under ``PIPPIN_SERVER_URL``.

    ``reference`` (``dep/enrollment_reference.py``) ends both paths in a definition at Apple; without it, the
    bases are returned (what profile pages show, and what is checked against Apple's URL rules).
    """
    base = settings.server_url.rstrip("/")
    suffix = f"/{reference}" if reference else ""
    mdm_url = check_url(f"{base}/mdm/enroll{suffix}")
    web_url = check_url(f"{base}/enroll/web{suffix}") if user_affinity == UserAffinity.with_user else None
    return mdm_url, web_url


def apple_profile(profile: DEPProfile, *, settings: Settings, box: SecretBox) -> Profile:
    """The profile's current revision as Apple takes it (reference 5); every boolean is explicit, as Apple's
    defaults differ, and its URLs carry the signed reference to this profile and revision."""
    reference = build_reference(box, ProfileRevision(profile_id=profile.id, revision=profile.revision))
    url, web_url = enrollment_urls(settings, user_affinity=profile.user_affinity, reference=reference)
    return Profile(
        profile_name=profile.name,
        url=url,
        configuration_web_url=web_url,
        is_supervised=profile.is_supervised,
        is_mandatory=profile.is_mandatory,
        is_mdm_removable=profile.is_mdm_removable,
        await_device_configured=profile.await_device_configured,
        auto_advance_setup=profile.auto_advance_setup,
        allow_pairing=profile.allow_pairing,
        department=profile.department,
        support_phone_number=profile.support_phone_number,
        support_email_address=profile.support_email_address,
        org_magic=profile.org_magic,
        language=profile.language,
        region=profile.region,
        anchor_certs=list(profile.anchor_certs),
        skip_setup_items=list(profile.skip_setup_items),
    )


def find_definition(session: Session, *, profile_id: int, token_id: int, revision: int) -> ProfileDefinition | None:
    return session.scalars(
        select(ProfileDefinition).where(
            ProfileDefinition.profile_id == profile_id,
            ProfileDefinition.token_id == token_id,
            ProfileDefinition.revision == revision,
        )
    ).one_or_none()


def list_profiles(session: Session, *, settings: Settings) -> list[ProfileRead]:
    profiles = session.scalars(select(DEPProfile).order_by(DEPProfile.name)).all()
    return [to_read(session, profile, settings=settings) for profile in profiles]


def read_profile(session: Session, *, name: str, settings: Settings) -> ProfileRead:
    return to_read(session, get_profile(session, name=name), settings=settings)


def _certificate_read(encoded: str) -> AnchorCertificateRead:
    certificate = x509.load_der_x509_certificate(base64.b64decode(encoded))
    return AnchorCertificateRead(
        subject=certificate.subject.rfc4514_string(),
        not_valid_after=certificate.not_valid_after_utc,
        sha256=certificate.fingerprint(hashes.SHA256()).hex(),
    )


def to_read(session: Session, profile: DEPProfile, *, settings: Settings) -> ProfileRead:
    skipped = set(profile.skip_setup_items)
    definitions = session.execute(
        select(ProfileDefinition, DEPToken.name)
        .join(DEPToken, DEPToken.id == ProfileDefinition.token_id)
        .where(ProfileDefinition.profile_id == profile.id)
        .order_by(DEPToken.name, ProfileDefinition.revision)
    ).all()
    counts = session.execute(
        select(Device.assignment_status, func.count())
        .where(Device.assigned_profile_id == profile.id)
        .group_by(Device.assignment_status)
    ).all()
    defaults = session.scalars(
        select(DEPToken.name)
        .join(TokenDefaultProfile, TokenDefaultProfile.token_id == DEPToken.id)
        .where(TokenDefaultProfile.profile_id == profile.id)
        .order_by(DEPToken.name)
    ).all()
    url, web_url = enrollment_urls(settings, user_affinity=profile.user_affinity)
    return ProfileRead(
        name=profile.name,
        description=profile.description,
        revision=profile.revision,
        user_affinity=UserAffinity(profile.user_affinity),
        supervised=profile.is_supervised,
        locked=not profile.is_mdm_removable,
        mandatory=profile.is_mandatory,
        allow_pairing=profile.allow_pairing,
        await_device_configured=profile.await_device_configured,
        auto_advance_setup=profile.auto_advance_setup,
        department=profile.department,
        support_phone=profile.support_phone_number,
        support_email=profile.support_email_address,
        org_magic=profile.org_magic,
        language=profile.language,
        region=profile.region,
        anchor_certs=[_certificate_read(encoded) for encoded in profile.anchor_certs],
        skip_setup_items=list(profile.skip_setup_items),
        minimum_os_version=profile.minimum_os_version,
        setup_panes=[
            SetupPaneRead(key=p.key, name=p.name, platforms=p.platforms, note=p.note, shown=p.key not in skipped)
            for p in PANES
        ],
        url=url,
        configuration_web_url=web_url,
        default_for_tokens=list(defaults),
        definitions=[
            ProfileDefinitionRead(
                token=token_name,
                revision=definition.revision,
                profile_uuid=definition.profile_uuid,
                url=definition.enrollment_url,
                defined_at=definition.defined_at,
                current=definition.revision == profile.revision,
            )
            for definition, token_name in definitions
        ],
        devices=AssignmentCounts.model_validate(
            {str(status): count for status, count in counts if status in AssignmentStatus.__members__}
        ),
        created_at=profile.created_at,
        updated_at=profile.updated_at,
    )
