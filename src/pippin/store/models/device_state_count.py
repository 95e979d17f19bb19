"""How many devices of each DEP token are in each derived state: the overview's counts, kept by the database.

Counting the fleet on every overview request costs what the fleet is large; these rows cost what changed.
Triggers on ``devices`` and ``enrollments`` (migration 0011) move a device from one row to another whenever a
column its state derives from changes, in the same transaction as the change, whichever code wrote it: the sync,
the assignment runner, a deleted token or profile, and next the device half. ``tests/inventory`` checks the
counts against a full recount after every kind of write, on both databases.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from pippin.store.models.base import Base


class DeviceStateCount(Base):
    """The number of devices of one token (0: none) in one state, split by whether they could enroll now."""

    __tablename__ = "device_state_counts"

    # No foreign key: a deleted token's rows fall to zero as its devices go, and 0 stands for "no token".
    token_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    state: Mapped[str] = mapped_column(String(16), primary_key=True)
    cannot_enroll: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    devices: Mapped[int] = mapped_column(Integer, default=0)
