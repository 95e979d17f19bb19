"""A page of devices with their setup problems filled in: stuck in Setup Assistant, or a setup step failed.

``mdm/setup_release.py`` decides what a problem is; this only joins its answer to the inventory's rows, for the
whole page at once, so a page costs the same two queries whatever its size or the fleet's.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from pippin.inventory.schemas import DeviceRead
from pippin.mdm.setup_release import setup_problems
from pippin.mdm.setup_schemas import SetupWatch


def with_setup_problems(session: Session, devices: Sequence[DeviceRead], *, watch: SetupWatch) -> list[DeviceRead]:
    """``devices``, each with its ``setup_problem`` (None for those without one)."""
    # Only enrollments that said they await configuration can be stuck; a failure outlives the wait, so enrolled
    # devices are asked about whatever they said.
    udids = [device.udid for device in devices if device.udid is not None]
    problems = setup_problems(session, udids, watch=watch) if udids else {}
    if not problems:
        return list(devices)
    return [
        device.model_copy(update={"setup_problem": problems[device.udid]}) if device.udid in problems else device
        for device in devices
    ]
