"""Apple's DEP request and response shapes (reference sections 3, 4, 5), as Pydantic models.

Responses are read leniently, the way Apple evolves the API: unknown keys are kept (``extra="allow"``), missing
optional fields are ``None``, ``profile_status: ""`` is tolerated and the zero time ``0001-01-01T00:00:00Z`` that
depsim sends reads as ``None``. Every timestamp comes out timezone-aware in UTC. Requests are written strictly:
:meth:`Profile.to_wire` always writes every boolean, because Apple's default for an omitted
``is_mdm_removable`` is *true* (reference section 8).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from pippin.dep.errors import CursorInvalid, DEPRequestRejected


def _utc_or_none(value: object) -> object:
    """Parse leniently into an aware UTC datetime; Go's zero time and empty strings mean "not set"."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value  # Pydantic reports it as a bad datetime
    if isinstance(value, datetime):
        if value.year <= 1:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def _one_string(value: object) -> object:
    """Accept a single value either bare or as a one-element list (Apple's docs disagree between versions)."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _string_list(value: object) -> object:
    if isinstance(value, str):
        return [value] if value else []
    return value


UTCTime = Annotated[datetime | None, BeforeValidator(_utc_or_none)]
OneString = Annotated[str | None, BeforeValidator(_one_string)]
StringList = Annotated[list[str], BeforeValidator(_string_list)]


class _AppleResponse(BaseModel):
    """A shape Apple sends: unknown keys are kept so newer protocol versions lose nothing."""

    model_config = ConfigDict(extra="allow", frozen=True)


# --- Sessions and account (sections 2.1, 3.1) --------------------------------------------------------------------


class SessionResponse(_AppleResponse):
    """``GET /session``'s answer; an empty token is an error (nanodep does the same)."""

    auth_session_token: str = Field(min_length=1, max_length=4096)

    def __repr__(self) -> str:
        return "SessionResponse(auth_session_token=<hidden>)"


class PageLimit(_AppleResponse):
    default: int | None = None
    maximum: int | None = None


class AccountURL(_AppleResponse):
    """One entry of ``/account``'s ``urls``: an endpoint, its methods and, for paged ones, its limits."""

    uri: str
    http_method: list[str] = Field(default_factory=list)
    limit: PageLimit | None = None


class Account(_AppleResponse):
    """``GET /account``: the MDM server this token belongs to and its organisation (reference 3.1)."""

    server_uuid: str
    server_name: str | None = None
    admin_id: str | None = None
    facilitator_id: str | None = None
    org_name: str | None = None
    org_email: str | None = None
    org_phone: str | None = None
    org_address: str | None = None
    org_id: str | None = None
    org_id_hash: str | None = None
    org_type: str | None = None
    org_version: str | None = None
    urls: list[AccountURL] = Field(default_factory=list)

    def limit_for(self, uri: str) -> int | None:
        """The largest page size Apple advertises for ``uri`` (e.g. ``/server/devices``), if it says."""
        for url in self.urls:
            if url.uri == uri and url.limit is not None:
                return url.limit.maximum
        return None


# --- Devices (sections 3.2-3.4, 4) ---------------------------------------------------------------------------------


class DEPDevice(_AppleResponse):
    """A device record as Apple describes it (reference section 4); ``record`` is the object exactly as sent."""

    serial_number: str = Field(min_length=1)
    model: str | None = None
    description: str | None = None
    color: str | None = None
    asset_tag: str | None = None
    os: str | None = None
    device_family: str | None = None
    profile_status: str | None = None
    profile_uuid: str | None = None
    profile_assign_time: UTCTime = None
    profile_push_time: UTCTime = None
    device_assigned_date: UTCTime = None
    device_assigned_by: str | None = None
    mdm_migration_deadline: UTCTime = None
    op_type: str | None = None
    op_date: UTCTime = None
    response_status: str | None = None
    eid: str | None = None
    ethernet_mac_address: StringList = Field(default_factory=list)
    wifi_mac_address: OneString = None
    bluetooth_mac_address: OneString = None
    imei: StringList = Field(default_factory=list)
    meid: StringList = Field(default_factory=list)
    is_replacement_device: bool | None = None
    released_by_replacement: bool | None = None
    record: dict[str, Any] = Field(default_factory=dict, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _keep_record(cls, data: Any) -> Any:
        # The raw record is kept beside the parsed fields (STYLE: "the raw message kept beside the parsed one").
        if isinstance(data, dict):
            return {**data, "record": copy.deepcopy(data)}
        return data

    @field_validator("profile_status", mode="before")
    @classmethod
    def _empty_status_is_none(cls, value: object) -> object:
        return None if value == "" else value


class DevicePage(_AppleResponse):
    """One page of a fetch (``/server/devices``) or sync (``/devices/sync``) (reference 3.2, 3.3, 6)."""

    devices: list[DEPDevice] = Field(default_factory=list)
    cursor: str = Field(min_length=1)
    more_to_follow: bool = False
    fetched_until: UTCTime = None


class DeviceDetail(BaseModel):
    """One serial's answer from ``POST /devices``: the status, and the record when Apple gave one (3.4)."""

    model_config = ConfigDict(frozen=True)

    serial_number: str
    response_status: str
    device: DEPDevice | None = None


class SerialsRequest(BaseModel):
    """``{"devices": [serial, ...]}``: device details, disown, remove profile (reference 3.4, 3.8, 3.9)."""

    devices: list[str]
    profile_uuid: str | None = None


class DeviceStatusResponse(_AppleResponse):
    """``{"devices": {serial: status}}`` from remove-profile and disown (reference 3.8, 3.9)."""

    devices: dict[str, str] = Field(default_factory=dict)


class PageRequest(BaseModel):
    """Fetch and sync requests: the cursor (omitted on the first fetch) and the page size (reference 3.2, 3.3)."""

    cursor: str | None = None
    limit: int | None = None


# --- Profiles (sections 3.5-3.8, 5) -------------------------------------------------------------------------------


class Profile(BaseModel):
    """An enrollment profile (reference section 5). Booleans default to Apple's own defaults.

    Unknown keys from ``GET /profile`` are kept and sent back as they came.
    """

    model_config = ConfigDict(extra="allow")

    profile_name: str
    url: str
    configuration_web_url: str | None = None
    is_supervised: bool = False
    is_mandatory: bool = False
    is_mdm_removable: bool = True
    await_device_configured: bool = False
    auto_advance_setup: bool = False
    is_multi_user: bool = False
    allow_pairing: bool = True
    is_return_to_service: bool = False
    do_not_use_profile_from_backup: bool = False
    department: str | None = None
    support_phone_number: str | None = None
    support_email_address: str | None = None
    org_magic: str | None = None
    language: str | None = None
    region: str | None = None
    anchor_certs: list[str] = Field(default_factory=list)
    supervising_host_certs: list[str] = Field(default_factory=list)
    skip_setup_items: list[str] = Field(default_factory=list)
    devices: list[str] = Field(default_factory=list)
    profile_uuid: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """The JSON body for ``POST /profile``: every boolean written, unset strings and empty lists left out.

        ``profile_uuid`` is Apple's answer, not part of a definition, so it is never sent.
        """
        body = self.model_dump(mode="json", exclude={"profile_uuid"}, exclude_none=True)
        for key in ("anchor_certs", "supervising_host_certs", "devices"):
            if not body.get(key):
                body.pop(key, None)
        return body


class DefineProfileResult(_AppleResponse):
    """``POST /profile``'s answer: the new profile's UUID and each listed serial's outcome (reference 3.5)."""

    profile_uuid: str = Field(min_length=1)
    devices: dict[str, str] = Field(default_factory=dict)


class AssignProfileRequest(BaseModel):
    profile_uuid: str
    devices: list[str]


class AssignProfileResult(_AppleResponse):
    """``/profile/devices`` assignment answer; ``retry_after_seconds`` comes with THROTTLED serials (3.7)."""

    profile_uuid: str | None = None
    devices: dict[str, str] = Field(default_factory=dict)
    retry_after_seconds: int | None = Field(default=None, ge=0)


# --- Activation lock and replacements (sections 3.10, 3.11) --------------------------------------------------------


class ActivationLockRequest(BaseModel):
    """``POST /device/activationlock``; ``escrow_key`` is the hex PBKDF2 of the bypass code, never the code."""

    device: str
    escrow_key: str | None = None
    lost_message: str | None = None

    def __repr__(self) -> str:
        return f"ActivationLockRequest(device={self.device!r}, escrow_key=<hidden>)"


class ActivationLockResult(_AppleResponse):
    serial_number: str | None = None
    response_status: str


class ReplacementDetails(_AppleResponse):
    """``GET /device/replacementDetails``: which device this one replaced, and when (reference 3.11)."""

    serial_number: str
    original_device_serial_number: str | None = None
    replacement_date: date | None = None

    @field_validator("replacement_date", mode="before")
    @classmethod
    def _empty_date_is_none(cls, value: object) -> object:
        return None if value == "" else value


def parse_device_details(payload: object) -> dict[str, DeviceDetail]:
    """Read ``POST /devices``'s ``{"devices": {serial: record + response_status}}`` (reference 3.4).

    A ``NOT_ACCESSIBLE`` entry is only ``{"response_status": ...}``, so it gets no device record.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("devices"), dict):
        raise ValueError("expected an object with a 'devices' object")
    details: dict[str, DeviceDetail] = {}
    for serial, entry in payload["devices"].items():
        if not isinstance(entry, dict):
            raise ValueError(f"device entry for {serial[:64]!r} is not an object")
        status = str(entry.get("response_status") or "")
        device = None
        if set(entry) - {"response_status"}:
            device = DEPDevice.model_validate({"serial_number": serial, **entry}).model_copy(
                update={"record": copy.deepcopy(entry)}
            )
        details[serial] = DeviceDetail(serial_number=serial, response_status=status, device=device)
    return details


# --- Local checks before a request is sent ----------------------------------------------------------------------

MAX_PAGE_LIMIT = 1000  # reference 3.2: "limit default 100, maximum 1000"
MAX_SERIALS_PER_CALL = 1000  # reference 3.7 and 8: "limit requests to 1000 devices at a time"
MAX_CURSOR_CHARS = 1000  # reference 3.2: "cursor string up to 1000 chars"
MAX_SERIAL_CHARS = 64


def check_page_limit(limit: int | None) -> int | None:
    """A page size Apple accepts (1 to 1000), or ``None`` for Apple's default; else refused locally."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_LIMIT:
        raise DEPRequestRejected(
            f"A page size must be between 1 and {MAX_PAGE_LIMIT}; got {limit!r}.",
            hint=f"Use a page size of at most {MAX_PAGE_LIMIT} (Apple's maximum).",
        )
    return limit


def check_cursor(cursor: str) -> None:
    """Refuse a cursor Apple could not have issued, so the sync engine starts over as for INVALID_CURSOR."""
    if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR_CHARS:
        raise CursorInvalid(f"The stored sync cursor is not a string of at most {MAX_CURSOR_CHARS} characters.")


def check_serials(serials: Sequence[str]) -> list[str]:
    """Serials as Apple takes them: 1 to 1000 distinct, case kept, no blanks (reference 3, 3.7)."""
    if isinstance(serials, str):
        raise DEPRequestRejected("Serial numbers must be given as a list, not one string.")
    if not all(isinstance(serial, str) for serial in serials):
        raise DEPRequestRejected("Serial numbers must be text.", hint="Pass each serial number as a string.")
    unique = list(dict.fromkeys(serials))
    if not unique:
        raise DEPRequestRejected("No serial numbers were given.", hint="Name at least one device.")
    if len(unique) > MAX_SERIALS_PER_CALL:
        raise DEPRequestRejected(
            f"{len(unique)} serial numbers in one request; Apple takes at most {MAX_SERIALS_PER_CALL}.",
            hint=f"Send them in batches of {MAX_SERIALS_PER_CALL}.",
        )
    for serial in unique:
        if not 0 < len(serial) <= MAX_SERIAL_CHARS or not serial.isprintable() or any(ch.isspace() for ch in serial):
            raise DEPRequestRejected(
                f"{str(serial)[:MAX_SERIAL_CHARS]!r} is not a serial number.",
                hint="Serial numbers are letters and digits without spaces, as printed on the device.",
            )
    return unique


def normalize_profile_uuid(profile_uuid: str) -> str:
    """Apple's form of a profile UUID: 32 uppercase hex digits without dashes (reference 3)."""
    normalized = profile_uuid.replace("-", "").upper() if isinstance(profile_uuid, str) else ""
    if len(normalized) != 32 or any(ch not in "0123456789ABCDEF" for ch in normalized):
        raise DEPRequestRejected(
            f"{str(profile_uuid)[:64]!r} is not a profile UUID.",
            hint="Use the profile_uuid Apple returned when the profile was defined (32 hexadecimal digits).",
        )
    return normalized
