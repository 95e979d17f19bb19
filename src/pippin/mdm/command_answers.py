"""What a command's answer means: the inventory a DeviceInformation answer updates, and any answer made listable.

Reference ``apple-mdm-protocol.md`` section 3.1 and Apple's ``mdm/commands/*.yaml``. The raw answer is kept sealed
on the command (``store/models/command.py``); this module reads it.

- :func:`apply_answer`: a DeviceInformation answer (``QueryResponses``, keys as ``information.device.yaml`` names
  them) updates the enrollment's facts; a key the device did not report keeps its value, a key of the wrong type
  refuses the whole answer (the device is told, and nothing changes).
- :func:`listed_response`: an answer as listings show it: the command's own keys (without the identity and status
  keys every report carries), data as base64, dates as ISO 8601, and the secrets some answers carry
  (``ActivationLockBypassCode``, ``UnlockToken``, a bootstrap token) replaced by a marker.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from pippin.mdm.checkin_wire import CheckinRefused
from pippin.store.models import Enrollment

#: Keys every report carries, not the command's answer.
REPORT_KEYS = frozenset({"UDID", "Status", "CommandUUID", "ErrorChain", "RequestType", "EnrollmentID", "UserID"})
#: Answer keys whose values are secrets, at any depth: never listed.
SECRET_KEYS = frozenset(
    {
        "ActivationLockBypassCode",
        "UnlockToken",
        "BootstrapToken",
        "PushMagic",
        "RecoveryLockPassword",
        "Password",
        "PIN",
        "EscrowKey",
    }
)
REDACTED = "(secret: not shown)"
#: Nesting of an answer Pippin reads; Apple's deepest (ProfileList's payload contents) stay well inside.
MAX_DEPTH = 24


class AnswerRefused(CheckinRefused):
    """The answer's content is not what Apple's schema says; nothing was stored."""


def _text(limit: int) -> Callable[[str, object], object]:
    def read(key: str, value: object) -> object:
        if not isinstance(value, str) or len(value) > limit or not value.isprintable():
            raise AnswerRefused(f"The DeviceInformation answer's {key} is not a string of at most {limit} characters.")
        return value or None

    return read


def _real(key: str, value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise AnswerRefused(f"The DeviceInformation answer's {key} is not a number.")
    return float(value)


def _battery(key: str, value: object) -> object:
    level = _real(key, value)
    assert isinstance(level, float)
    # Apple: between 0.0 and 1.0, or -1.0 when the level cannot be read.
    return level if 0.0 <= level <= 1.0 else None


def _flag(key: str, value: object) -> object:
    if not isinstance(value, bool):
        raise AnswerRefused(f"The DeviceInformation answer's {key} is not a boolean.")
    return value


#: QueryResponses key -> (enrollment column, reader).
DEVICE_FACTS: Mapping[str, tuple[str, Callable[[str, object], object]]] = {
    "OSVersion": ("os_version", _text(32)),
    "BuildVersion": ("build_version", _text(32)),
    "ProductName": ("product_name", _text(64)),
    "Model": ("model", _text(64)),
    "ModelName": ("model_name", _text(64)),
    "DeviceName": ("device_name", _text(255)),
    "DeviceCapacity": ("capacity_gb", _real),
    "AvailableDeviceCapacity": ("available_capacity_gb", _real),
    "BatteryLevel": ("battery_level", _battery),
    "IMEI": ("imei", _text(32)),
    "MEID": ("meid", _text(32)),
    "WiFiMAC": ("wifi_mac", _text(32)),
    "IsSupervised": ("supervised", _flag),
    "IsActivationLockEnabled": ("activation_lock_enabled", _flag),
    "IsDeviceLocatorServiceEnabled": ("find_my_enabled", _flag),
    "IsMDMLostModeEnabled": ("lost_mode_enabled", _flag),
}


def device_facts(report: Mapping[str, Any]) -> dict[str, object]:
    """The enrollment columns a DeviceInformation answer sets; :class:`AnswerRefused` when a key is malformed."""
    responses = report.get("QueryResponses")
    if not isinstance(responses, dict):
        raise AnswerRefused("The DeviceInformation answer has no QueryResponses dictionary.")
    facts: dict[str, object] = {}
    for key, (column, read) in DEVICE_FACTS.items():
        if key in responses:
            facts[column] = read(key, responses[key])
    return facts


def apply_answer(
    session: Session, enrollment: Enrollment, *, request_type: str, report: Mapping[str, Any], now: datetime
) -> None:
    """What an acknowledged answer changes beyond its command, in the caller's transaction."""
    if request_type == "DeviceInformation":
        for column, value in device_facts(report).items():
            setattr(enrollment, column, value)
        enrollment.information_at = now
        session.flush()


def _listable(value: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        return "(nested too deep: not shown)"
    if isinstance(value, dict):
        return {str(key): REDACTED if key in SECRET_KEYS else _listable(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [_listable(item, depth + 1) for item in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return moment.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def listed_response(report: Mapping[str, Any]) -> dict[str, Any] | None:
    """The answer's own keys as a listing shows them (see the module docstring); ``None`` when it has none."""
    own = {key: item for key, item in report.items() if key not in REPORT_KEYS}
    if not own:
        return None
    listed: dict[str, Any] = _listable(own, 0)
    return listed
