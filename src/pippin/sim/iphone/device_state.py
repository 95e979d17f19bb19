"""What a simulated device remembers across restarts: its identity, installed profiles, push token and magic, and
what management made of it (``managed_state.py``).

Kept as one JSON file per device in the state directory (private keys included: it is the device's keychain,
written owner-only), so a device killed at any step boots again: once enrolled it stays enrolled and only
waits for pushes; before that it runs Setup Assistant again, as an iPhone switched off during setup does.
"""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pippin.sim.iphone.errors import SetupFailed
from pippin.sim.iphone.identity import DeviceFacts, DeviceIdentity
from pippin.sim.iphone.managed_state import ManagedState

_SAFE_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass
class DeviceState:
    serial_number: str
    facts: DeviceFacts | None = None
    factory_identity: DeviceIdentity | None = None
    mdm_identity: DeviceIdentity | None = None
    profiles: list[dict[str, Any]] = field(default_factory=list)
    push_token: str | None = None
    push_topic: str | None = None
    push_magic: str | None = None
    unlock_token: bytes | None = None
    enrolled: bool = False
    mdm_unremovable: bool = False  # the cloud configuration's IsMDMUnremovable
    managed: ManagedState = field(default_factory=ManagedState)

    def to_json(self) -> dict[str, Any]:
        return {
            "serial_number": self.serial_number,
            "facts": self.facts.as_dict() if self.facts else None,
            "factory_identity": _pem(self.factory_identity),
            "mdm_identity": _pem(self.mdm_identity),
            "profiles": self.profiles,
            "push_token": self.push_token,
            "push_topic": self.push_topic,
            "push_magic": self.push_magic,
            "unlock_token": base64.b64encode(self.unlock_token).decode() if self.unlock_token else None,
            "enrolled": self.enrolled,
            "mdm_unremovable": self.mdm_unremovable,
            "managed": self.managed.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeviceState:
        facts = data.get("facts")
        unlock = data.get("unlock_token")
        return cls(
            serial_number=data["serial_number"],
            facts=DeviceFacts.from_dict(facts) if facts else None,
            factory_identity=_identity(data.get("factory_identity")),
            mdm_identity=_identity(data.get("mdm_identity")),
            profiles=list(data.get("profiles") or []),
            push_token=data.get("push_token"),
            push_topic=data.get("push_topic"),
            push_magic=data.get("push_magic"),
            unlock_token=base64.b64decode(unlock) if unlock else None,
            enrolled=bool(data.get("enrolled")),
            mdm_unremovable=bool(data.get("mdm_unremovable")),
            managed=ManagedState.from_json(data.get("managed")),
        )


class StateDirectory:
    """Device states as ``<dir>/<serial>.json``; ``None`` keeps them in memory only."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    def load(self, serial_number: str) -> DeviceState:
        path = self._path(serial_number)
        if path is None or not path.exists():
            return DeviceState(serial_number=serial_number)
        try:
            return DeviceState.from_json(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            raise SetupFailed("state", f"the saved state {path} is unreadable; delete it to start afresh") from None

    def save(self, state: DeviceState) -> None:
        path = self._path(state.serial_number)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(state.to_json(), file)
        temporary.replace(path)  # atomic: a device killed while saving keeps its previous state

    def _path(self, serial_number: str) -> Path | None:
        if self.directory is None:
            return None
        if not _SAFE_NAME.fullmatch(serial_number):
            raise SetupFailed("state", "the serial number cannot name a state file")
        return self.directory / f"{serial_number}.json"


def _pem(identity: DeviceIdentity | None) -> str | None:
    return identity.to_pem().decode("ascii") if identity else None


def _identity(pem: str | None) -> DeviceIdentity | None:
    return DeviceIdentity.from_pem(pem.encode("ascii")) if pem else None
