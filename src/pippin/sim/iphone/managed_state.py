"""What management has made of a device: its name and settings, lock and Lost Mode, supervision, the profiles its
MDM server installed, and the commands it has put off (NotNow).

Part of the device's saved state (``device_state.py``), so a lock, a Lost Mode or a new name survive a restart as
they do on iOS; an erase starts it afresh (:meth:`ManagedState.erased`), keeping only what Apple's cloud
configuration will set again during Setup Assistant.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: How many put-off commands a device remembers: enough for any queue, bounded for a hostile one.
MAX_REMEMBERED_NOT_NOW = 1000
#: How many answered commands a device remembers, to answer one handed out again without running it again.
MAX_REMEMBERED_ANSWERS = 1000


@dataclass
class LostMode:
    """Lost Mode as EnableLostMode left it (``device.lostmode.enable.yaml``)."""

    message: str | None = None
    phone_number: str | None = None
    footnote: str | None = None
    sounds_played: int = 0


@dataclass
class ManagedState:
    device_name: str | None = None  # None: the name the device leaves the factory with ("iPhone", "iPad")
    supervised: bool = False  # the cloud configuration's IsSupervised
    awaiting_configuration: bool = False  # the cloud configuration's AwaitDeviceConfigured, until DeviceConfigured
    passcode_present: bool = True
    locked: bool = False
    lock_message: str | None = None
    lock_phone_number: str | None = None
    lost_mode: LostMode | None = None
    activation_lock_bypass_code: str | None = None
    #: Settings items' values by item name (``DataRoaming`` -> its ``Enabled``; ``TimeZone`` -> the zone ...).
    settings: dict[str, Any] = field(default_factory=dict)
    #: PayloadIdentifiers of the profiles the MDM server installed (InstallProfile): those it may remove.
    managed_profiles: list[str] = field(default_factory=list)
    #: CommandUUIDs answered NotNow once: the next delivery is run for real.
    not_now_given: list[str] = field(default_factory=list)
    powered_off: bool = False  # ShutDownDevice: off until switched on again
    restarts: int = 0
    erasures: int = 0
    #: The commands it answered for good (CommandUUID -> the report's Status), oldest first: a command handed out
    #: again (its answer never reached the server) is recognised by its UUID and answered again, not run again.
    #: Kept through an erase too, as a record of what the device did for tests that check a server against it.
    answered: dict[str, str] = field(default_factory=dict)
    #: Times a command it had answered was handed out again.
    repeated_deliveries: int = 0

    def remember_not_now(self, command_uuid: str) -> None:
        self.not_now_given.append(command_uuid)
        del self.not_now_given[:-MAX_REMEMBERED_NOT_NOW]

    def remember_answer(self, command_uuid: str, status: str) -> None:
        self.answered[command_uuid] = status
        while len(self.answered) > MAX_REMEMBERED_ANSWERS:
            del self.answered[next(iter(self.answered))]

    def erased(self) -> ManagedState:
        """The device after EraseDevice: nothing management set survives; it only counts the erase (and keeps the
        record of what it answered)."""
        return ManagedState(
            erasures=self.erasures + 1,
            restarts=self.restarts,
            answered=dict(self.answered),
            repeated_deliveries=self.repeated_deliveries,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ManagedState:
        if not data:
            return cls()
        lost = data.get("lost_mode")
        known = {name: value for name, value in data.items() if name in cls.__dataclass_fields__}
        return cls(**{**known, "lost_mode": LostMode(**lost) if isinstance(lost, dict) else None})
