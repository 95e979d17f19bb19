"""Pippin's shapes for enrollment profiles and their assignment: what REST returns and ``--json`` prints.

Input shapes check types and ``pippin.text``'s rule for text (no control, format or separator characters); the
limits (Apple's, reference 3.5) are checked by ``dep/profiles.py`` so the CLI and the API refuse the same things
with the same words, naming Apple's rule.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from pippin.store.models import UserAffinity
from pippin.text import Line, MultiLine

_TEXT = 10_000  # far above every Apple limit: longer input is refused by type, the rest by the service
_MINIMUM_OS_VERSION = (
    "The OS version a device must run to enroll, 1 to 3 numbers separated by dots (e.g. 17.4); an older device "
    "that can update (iOS 17+) is told to first. Pippin's own policy: not sent to Apple, and changing it keeps "
    "the revision."
)


class _ProfileFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: Line | None = Field(default=None, max_length=_TEXT, description="For admins; not sent to Apple.")
    user_affinity: UserAffinity = Field(
        default=UserAffinity.none, description="with_user: the user signs in during Setup Assistant."
    )
    supervised: bool = Field(default=False, description="Apple's is_supervised.")
    locked: bool = Field(
        default=False, description="The user cannot remove the MDM profile (is_mdm_removable false); needs supervised."
    )
    mandatory: bool = Field(default=False, description="The user cannot skip enrollment (is_mandatory).")
    allow_pairing: bool = Field(default=True, description="The device may pair with computers (allow_pairing).")
    await_device_configured: bool = Field(
        default=False, description="Setup Assistant waits until Pippin says the device is configured."
    )
    auto_advance_setup: bool = Field(default=False, description="tvOS and macOS: advance through the panes alone.")
    department: Line | None = Field(default=None, max_length=_TEXT)
    support_phone: Line | None = Field(default=None, max_length=_TEXT)
    support_email: Line | None = Field(default=None, max_length=_TEXT)
    org_magic: Line | None = Field(default=None, max_length=_TEXT, description="Apple's opaque org_magic string.")
    language: Line | None = Field(default=None, max_length=_TEXT, description="ISO 639 code, e.g. en (tvOS, macOS).")
    region: Line | None = Field(default=None, max_length=_TEXT, description="ISO 3166 code, e.g. US (tvOS, macOS).")
    anchor_certs: list[MultiLine] = Field(
        default_factory=list,
        max_length=20,
        description="Certificates the device trusts for Pippin's TLS: PEM, or base64 of DER.",
    )
    skip_setup_items: list[Line] = Field(
        default_factory=list, max_length=200, description="Apple's SkipKeys: the Setup Assistant panes to hide."
    )
    minimum_os_version: Line | None = Field(
        default=None, max_length=_TEXT, examples=["17.4"], description=_MINIMUM_OS_VERSION
    )


class ProfileCreate(_ProfileFields):
    """A new enrollment profile."""

    name: Line = Field(max_length=_TEXT, description="Shown on the device during setup (Apple's profile_name).")


class ProfileUpdate(BaseModel):
    """Changes to a profile; only the keys given change. ``null`` clears an optional text."""

    model_config = ConfigDict(extra="forbid")

    name: Line | None = Field(default=None, max_length=_TEXT)
    description: Line | None = Field(default=None, max_length=_TEXT)
    user_affinity: UserAffinity | None = None
    supervised: bool | None = None
    locked: bool | None = None
    mandatory: bool | None = None
    allow_pairing: bool | None = None
    await_device_configured: bool | None = None
    auto_advance_setup: bool | None = None
    department: Line | None = Field(default=None, max_length=_TEXT)
    support_phone: Line | None = Field(default=None, max_length=_TEXT)
    support_email: Line | None = Field(default=None, max_length=_TEXT)
    org_magic: Line | None = Field(default=None, max_length=_TEXT)
    language: Line | None = Field(default=None, max_length=_TEXT)
    region: Line | None = Field(default=None, max_length=_TEXT)
    anchor_certs: list[MultiLine] | None = Field(default=None, max_length=20)
    skip_setup_items: list[Line] | None = Field(default=None, max_length=200)
    minimum_os_version: Line | None = Field(default=None, max_length=_TEXT, examples=["17.4"])


class SetupPaneRead(BaseModel):
    """One Setup Assistant pane and whether this profile shows it."""

    key: str = Field(description="Apple's SkipKey.")
    name: str
    platforms: str
    note: str | None
    shown: bool


class AnchorCertificateRead(BaseModel):
    subject: str
    not_valid_after: datetime
    sha256: str


class ProfileDefinitionRead(BaseModel):
    """A revision of the profile as defined at Apple under one token."""

    token: str
    revision: int
    profile_uuid: str
    url: str | None = Field(
        description="The enrollment URL this definition sends devices to (null: defined before URLs named their "
        "revision; defined again when next needed)."
    )
    defined_at: datetime
    current: bool = Field(description="Whether this is the profile's current revision.")


class AssignmentCounts(BaseModel):
    """How many devices are in each assignment state."""

    pending: int = 0
    assigned: int = 0
    failed: int = 0
    throttled: int = 0
    not_accessible: int = 0


class ProfileRead(BaseModel):
    """An enrollment profile, the panes it shows, where it is defined at Apple and who has it."""

    name: str
    description: str | None
    revision: int = Field(description="Goes up with every change Apple sees; each revision is defined anew.")
    user_affinity: UserAffinity
    supervised: bool
    locked: bool
    mandatory: bool
    allow_pairing: bool
    await_device_configured: bool
    auto_advance_setup: bool
    department: str | None
    support_phone: str | None
    support_email: str | None
    org_magic: str | None
    language: str | None
    region: str | None
    anchor_certs: list[AnchorCertificateRead]
    skip_setup_items: list[str]
    minimum_os_version: str | None = Field(description=_MINIMUM_OS_VERSION)
    setup_panes: list[SetupPaneRead]
    url: str = Field(
        description="Where devices are sent to enroll; each definition at Apple adds a signed reference to its "
        "revision (see `definitions[].url`)."
    )
    configuration_web_url: str | None = Field(description="The sign-in page, with user affinity.")
    default_for_tokens: list[str]
    definitions: list[ProfileDefinitionRead]
    devices: AssignmentCounts
    created_at: datetime
    updated_at: datetime


class AssignmentQueued(BaseModel):
    """What asking for an assignment queued."""

    profile: str
    revision: int
    queued: int = Field(description="Devices now waiting to be sent to Apple.")
    unchanged: int = Field(description="Devices that already had (or were waiting for) this revision.")
    cooling_down: int = Field(description="Queued devices Apple asked Pippin to leave alone for a while.")


class AssignmentRunRead(BaseModel):
    """What one pass over the due assignments did."""

    apple_calls: int = Field(description="Requests sent to Apple (definitions, device look-ups and assignments).")
    definitions: int = Field(description="Profiles (re)defined at Apple.")
    batches: int
    sent: int = Field(description="Serial numbers sent to Apple.")
    assigned: int
    confirmed: int = Field(
        default=0,
        description="Devices an interrupted earlier pass had sent, found assigned at Apple and not sent again.",
    )
    failed: int
    throttled: int
    not_accessible: int
    unanswered: int = Field(description="Serials Apple's answer left out; retried soon.")
    errors: list[str] = Field(description="Calls that failed as a whole; their devices stay queued.")
    still_due: int = Field(description="Devices that are due but were left for a later pass.")
