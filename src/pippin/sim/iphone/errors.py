"""Why a simulated device stopped: one error type naming the setup step and what went wrong there."""

from __future__ import annotations


class SetupFailed(Exception):
    """A device could not get past ``step`` of its setup; ``reason`` says why, in a sentence for people."""

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason


class RemovalRefused(Exception):
    """The user asked to remove a profile iOS will not let them remove (PayloadRemovalDisallowed)."""


class ServerUnauthorized(SetupFailed):
    """The MDM server answered 401: iOS takes it to mean the enrollment is gone and removes its MDM profile."""
