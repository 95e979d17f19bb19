"""How often a simulated device puts a command off (NotNow) or fails it: fractions drawn per command, repeatably.

A real fleet answers some commands NotNow (before first unlock, during a call) and fails some; the rates let a
server meet both at a chosen share. Each draw depends only on the seed, the device and the CommandUUID, so a run
with the same ``--seed`` answers the same commands the same way, in any order and across restarts. A command put
off once is run for real the next time the server sends it (``managed_state.py`` remembers which), as iOS runs
it when it can.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pippin.sim.iphone.command_reading import CommandFailed, ErrorEntry


class RateOutOfRange(ValueError):
    """A rate that is not a fraction from 0 to 1."""


def _fraction(seed: int, udid: str, command_uuid: str, purpose: str) -> float:
    digest = hashlib.sha256(f"{seed}|{udid}|{command_uuid}|{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class AnswerRates:
    not_now_rate: float = 0.0
    error_rate: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("not_now_rate", "error_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise RateOutOfRange(f"{name} must be from 0 to 1, not {value!r}")

    def puts_off(self, udid: str, command_uuid: str) -> bool:
        return self.not_now_rate > 0 and _fraction(self.seed, udid, command_uuid, "not-now") < self.not_now_rate

    def fails(self, udid: str, command_uuid: str) -> bool:
        return self.error_rate > 0 and _fraction(self.seed, udid, command_uuid, "error") < self.error_rate


def injected_failure(request_type: str) -> CommandFailed:
    """The failure the error rate gives: mdmb's "handler failure" code (reference section 7), saying it is simulated."""
    return CommandFailed(
        ErrorEntry(99998, "MCMDMErrorDomain", f"The simulated device failed {request_type[:64]} (--error-rate).")
    )
