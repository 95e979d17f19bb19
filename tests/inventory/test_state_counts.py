"""The counts the database keeps by state equal a full recount after every kind of write, on both databases.

The writes are the ones Pippin's code makes (ORM inserts and updates, the sync's bulk updates by primary key)
and the ones the database makes itself (a deleted token, profile or device unlinking what pointed at it), in a
seeded random walk over every column a state derives from.
"""

from __future__ import annotations

import random
from collections import Counter

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from pippin.inventory.devices import count_by_state, count_cannot_enroll
from pippin.inventory.state import DeviceState, cannot_enroll, derive_state
from pippin.store.models import (
    AppleStatus,
    DEPProfile,
    DEPToken,
    Device,
    DeviceStateCount,
    Enrollment,
    EnrollmentStatus,
)
from tests.inventory.conftest import NOW

Key = tuple[int, str, bool]
STEPS = 400
PROFILE_STATUSES = (None, "empty", "assigned", "pushed", "removed")
APPLE_STATUSES = tuple(AppleStatus)
ENROLLMENT_STATUSES = tuple(EnrollmentStatus)
REVISIONS = (None, 0, 1, 2)


def recount(session: Session) -> Counter[Key]:
    """Every device's state by :func:`derive_state`, row by row: what the kept counts must say."""
    enrollments = {row.device_id: row for row in session.scalars(select(Enrollment)) if row.device_id is not None}
    tally: Counter[Key] = Counter()
    for device in session.scalars(select(Device)):
        enrollment = enrollments.get(device.id)
        status = None if enrollment is None else enrollment.status
        state = derive_state(
            apple_status=device.apple_status,
            assigned_profile_id=device.assigned_profile_id,
            assigned_revision=device.assigned_revision,
            enrollment_status=status,
            enrolled_profile_id=None if enrollment is None else enrollment.profile_id,
            enrolled_revision=None if enrollment is None else enrollment.profile_revision,
        )
        blocked = cannot_enroll(
            apple_status=device.apple_status, profile_status=device.profile_status, enrollment_status=status
        )
        tally[(device.token_id or 0, state.value, blocked)] += 1
    return tally


def kept(session: Session) -> Counter[Key]:
    columns = (DeviceStateCount.token_id, DeviceStateCount.state, DeviceStateCount.cannot_enroll)
    rows = session.execute(select(*columns, DeviceStateCount.devices)).all()
    assert all(devices >= 0 for *_, devices in rows), rows
    return Counter({(token, state, bool(blocked)): devices for token, state, blocked, devices in rows if devices})


class Walk:
    """Random writes over a small fleet, each of a kind Pippin or the database makes."""

    def __init__(self, session: Session, rng: random.Random) -> None:
        self.session, self.rng = session, rng
        self.serials = 0
        self.udids = 0

    def _ids(self, model: type[DEPToken] | type[DEPProfile] | type[Device]) -> list[int]:
        return list(self.session.scalars(select(model.id)))

    def _udids(self) -> list[str]:
        return list(self.session.scalars(select(Enrollment.udid)))

    def _profile(self) -> int | None:
        return self.rng.choice([None, *self._ids(DEPProfile)])

    def _device_values(self) -> dict[str, object]:
        return {
            "token_id": self.rng.choice([None, *self._ids(DEPToken)]),
            "apple_status": self.rng.choice(APPLE_STATUSES),
            "profile_status": self.rng.choice(PROFILE_STATUSES),
            "assigned_profile_id": self._profile(),
            "assigned_revision": self.rng.choice(REVISIONS),
        }

    def add_token(self) -> None:
        self.session.add(DEPToken(name=f"token-{len(self._ids(DEPToken))}-{self.rng.randrange(10**6)}"))

    def add_profile(self) -> None:
        self.session.add(DEPProfile(name=f"profile-{self.rng.randrange(10**9)}", revision=self.rng.choice((1, 2))))

    def add_device(self) -> None:
        self.serials += 1
        self.session.add(
            Device(
                serial_number=f"S{self.serials:05d}",
                first_seen_at=NOW,
                last_synced_at=NOW,
                apple_record={},
                **self._device_values(),
            )
        )

    def bulk_insert_devices(self) -> None:
        rows = []
        for _ in range(self.rng.randrange(1, 5)):
            self.serials += 1
            rows.append(
                {
                    "serial_number": f"S{self.serials:05d}",
                    "first_seen_at": NOW,
                    "last_synced_at": NOW,
                    "apple_record": {},
                    **self._device_values(),
                }
            )
        self.session.execute(insert(Device), rows)

    def change_device(self) -> None:
        ids = self._ids(Device)
        if ids:
            device = self.session.get_one(Device, self.rng.choice(ids))
            column, value = self.rng.choice(list(self._device_values().items()))
            setattr(device, column, value)

    def bulk_update_devices(self) -> None:
        """As the sync writes a page: an UPDATE by primary key per row, every column set, most unchanged."""
        ids = self._ids(Device)
        if ids:
            chosen = self.rng.sample(ids, min(len(ids), 4))
            self.session.execute(update(Device), [{"id": id_, **self._device_values()} for id_ in chosen])

    def unchanged_update(self) -> None:
        ids = self._ids(Device)
        if ids:
            self.session.execute(update(Device).where(Device.id == self.rng.choice(ids)).values(model="renamed"))

    def enroll(self) -> None:
        linked = set(self.session.scalars(select(Enrollment.device_id)))
        free = [id_ for id_ in self._ids(Device) if id_ not in linked]
        self.udids += 1
        self.session.add(
            Enrollment(
                udid=f"U{self.udids:05d}",
                device_id=self.rng.choice([None, *free]) if free else None,
                status=self.rng.choice(ENROLLMENT_STATUSES),
                profile_id=self._profile(),
                profile_revision=self.rng.choice(REVISIONS),
                first_contact_at=NOW,
            )
        )

    def change_enrollment(self) -> None:
        udids = self._udids()
        if udids:
            enrollment = self.session.get_one(Enrollment, self.rng.choice(udids))
            column = self.rng.choice(("status", "profile_id", "profile_revision"))
            value = {
                "status": self.rng.choice(ENROLLMENT_STATUSES),
                "profile_id": self._profile(),
                "profile_revision": self.rng.choice(REVISIONS),
            }[column]
            setattr(enrollment, column, value)

    def move_enrollment(self) -> None:
        """A manual enrollment later matched to its DEP record, or unlinked from one."""
        udids = self._udids()
        if udids:
            linked = set(self.session.scalars(select(Enrollment.device_id)))
            free = [id_ for id_ in self._ids(Device) if id_ not in linked]
            self.session.execute(
                update(Enrollment)
                .where(Enrollment.udid == self.rng.choice(udids))
                .values(device_id=self.rng.choice([None, *free]))
            )

    def delete_enrollment(self) -> None:
        udids = self._udids()
        if udids:
            self.session.execute(delete(Enrollment).where(Enrollment.udid == self.rng.choice(udids)))

    def delete_device(self) -> None:
        """Its enrollment stays, unlinked by the database."""
        ids = self._ids(Device)
        if ids:
            self.session.execute(delete(Device).where(Device.id == self.rng.choice(ids)))

    def delete_token(self) -> None:
        ids = self._ids(DEPToken)
        if len(ids) > 1:
            self.session.execute(delete(DEPToken).where(DEPToken.id == self.rng.choice(ids)))

    def delete_profile(self) -> None:
        ids = self._ids(DEPProfile)
        if len(ids) > 1:
            self.session.execute(delete(DEPProfile).where(DEPProfile.id == self.rng.choice(ids)))


WRITES = (
    ("add_device", 6),
    ("bulk_insert_devices", 2),
    ("change_device", 8),
    ("bulk_update_devices", 4),
    ("unchanged_update", 2),
    ("enroll", 5),
    ("change_enrollment", 6),
    ("move_enrollment", 2),
    ("delete_enrollment", 1),
    ("delete_device", 1),
    ("add_token", 1),
    ("delete_token", 1),
    ("add_profile", 1),
    ("delete_profile", 1),
)


def test_the_kept_counts_equal_a_recount_after_every_write(session: Session) -> None:
    rng = random.Random(20261202)
    walk = Walk(session, rng)
    for _ in range(2):
        walk.add_token()
        walk.add_profile()
    session.flush()
    names, weights = zip(*WRITES, strict=True)
    seen: Counter[str] = Counter()
    states: set[str] = set()
    for step in range(STEPS):
        write = rng.choices(names, weights)[0]
        getattr(walk, write)()
        session.flush()
        session.expire_all()  # read back what the database holds, not the session's copies
        assert kept(session) == recount(session), f"after step {step}, {write}"
        seen[write] += 1
        states |= {state for _, state, _ in kept(session)}
    assert set(seen) == set(names)  # every kind of write was made
    assert states == {state.value for state in DeviceState}  # every state was counted at some point
    totals = Counter[DeviceState]()
    for (_, state, _), devices in recount(session).items():
        totals[DeviceState(state)] += devices
    for manual in session.scalars(select(Enrollment).where(Enrollment.device_id.is_(None))):
        # Enrolled without a DEP record: counted by the inventory too, from the enrollment alone.
        totals[
            derive_state(
                apple_status=None,
                assigned_profile_id=None,
                assigned_revision=None,
                enrollment_status=manual.status,
                enrolled_profile_id=manual.profile_id,
                enrolled_revision=manual.profile_revision,
            )
        ] += 1
    assert count_by_state(session) == {state: totals[state] for state in DeviceState}
    assert count_cannot_enroll(session) == sum(n for (_, _, blocked), n in recount(session).items() if blocked)


def test_a_rolled_back_write_leaves_the_counts_as_they_were(session: Session) -> None:
    walk = Walk(session, random.Random(3))
    walk.add_token()
    for _ in range(5):
        walk.add_device()
    session.flush()
    before = kept(session)
    savepoint = session.begin_nested()
    walk.bulk_update_devices()
    walk.enroll()
    session.flush()
    savepoint.rollback()
    session.expire_all()
    assert kept(session) == before == recount(session)
