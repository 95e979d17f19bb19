"""Sending due profile assignments to Apple in batches of 1000, with Apple's retry rules.

Apple answers 200 while refusing single serials (reference 3.7, 8), so each serial's outcome is stored:
``FAILED`` is not sent again for 24 hours, ``THROTTLED`` not before ``retry_after_seconds``.

:func:`run_due_assignments` takes a *session factory* and commits one short transaction per step, like the sync:
a batch is first *claimed* (its devices' retry time pushed a lease ahead, so a second runner never sends it
too), then sent, then its outcome committed in one transaction. A crash between the two leaves the batch due
again once the lease runs out, and Apple's answer to a repeat of the same assignment is the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from pippin.admin import audit
from pippin.admin.audit import Actor, AuditAction
from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.dep.assignment import IN_CHUNK, WAITING, active_device
from pippin.dep.errors import DEPAuthFailure, DEPError, DEPRequestRejected
from pippin.dep.profile_schemas import AssignmentRunRead
from pippin.dep.profiles import apple_profile, find_definition
from pippin.dep.token import get_token, record_dep_failure, record_dep_success
from pippin.dep.wire import AssignProfileResult, DefineProfileResult, Profile
from pippin.errors import InvalidInput
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import (
    AppleStatus,
    AssignmentStatus,
    DEPProfile,
    DEPToken,
    Device,
    ProfileDefinition,
    utcnow,
)

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000  # Apple: "limit requests to 1000 devices at a time" (reference 3.7)
FAILED_COOLDOWN = timedelta(hours=24)  # Apple's guidance after FAILED (reference 8)
DEFAULT_THROTTLE = timedelta(hours=1)  # THROTTLED without retry_after_seconds (protocol before v10)
CLAIM_LEASE = timedelta(minutes=10)  # a claimed batch is due again after this if its runner died
UNAVAILABLE_BACKOFF = timedelta(minutes=5)
UNANSWERED_RETRY = timedelta(minutes=15)


class ProfileAPI(Protocol):
    """The ``DEPClient`` calls assignment makes."""

    def define_profile(self, profile: Profile) -> DefineProfileResult: ...
    def assign_profile(self, *, profile_uuid: str, serials: Sequence[str]) -> AssignProfileResult: ...
    def close(self) -> None: ...


ProfileClientFactory = Callable[[DEPToken], ProfileAPI]


@dataclass
class _Tally:
    apple_calls: int = 0
    definitions: int = 0
    batches: int = 0
    sent: int = 0
    assigned: int = 0
    failed: int = 0
    throttled: int = 0
    not_accessible: int = 0
    unanswered: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Group:
    token_id: int
    profile_id: int
    revision: int


def _due(cutoff: datetime) -> ColumnElement[bool]:
    return and_(
        active_device(),
        Device.assignment_status.in_(WAITING),
        Device.assigned_profile_id.is_not(None),
        Device.assigned_revision.is_not(None),
        or_(Device.assignment_retry_at.is_(None), Device.assignment_retry_at <= cutoff),
    )


def _next_group(session: Session, cutoff: datetime, skip: set[int], skip_groups: set[_Group]) -> _Group | None:
    query = (
        select(Device.token_id, Device.assigned_profile_id, Device.assigned_revision)
        .where(_due(cutoff))
        .group_by(Device.token_id, Device.assigned_profile_id, Device.assigned_revision)
        .order_by(Device.token_id, Device.assigned_profile_id, Device.assigned_revision)
    )
    if skip:
        query = query.where(Device.token_id.not_in(skip))
    for token_id, profile_id, revision in session.execute(query):
        if token_id is None or profile_id is None or revision is None:
            continue  # excluded by _due; keeps the types honest
        group = _Group(token_id, profile_id, revision)
        if group not in skip_groups:
            return group
    return None


def _in_group(group: _Group, *, indexed: bool = True) -> ColumnElement[bool]:
    if not indexed:
        # "+ 0" keeps the planners off the token and profile indexes (every queued row matches them) and on the
        # unique serial index: without it SQLite scanned the whole queue for each batch's outcome.
        return and_(
            Device.token_id + 0 == group.token_id,
            Device.assigned_profile_id + 0 == group.profile_id,
            Device.assigned_revision + 0 == group.revision,
        )
    return and_(
        Device.token_id == group.token_id,
        Device.assigned_profile_id == group.profile_id,
        Device.assigned_revision == group.revision,
    )


def _claim(
    session: Session, group: _Group, *, cutoff: datetime, now: datetime, size: int, after_id: int
) -> tuple[list[str], int]:
    """Take up to ``size`` due devices of the group with ids above ``after_id``, pushing their retry time a lease
    ahead; returns their serials and the highest id looked at (the next claim starts there, so a pass reads each
    row once however large the queue).

    The conditional UPDATE is the claim: of two runners racing for the same rows, the second finds them no longer
    due (PostgreSQL re-checks the condition after the first commits; SQLite serialises writers).
    """
    # Only the id is left indexable, so both statements walk the primary key from after_id: the status and group
    # indexes match every queued row, and right after a bulk change (no statistics yet) PostgreSQL picked them
    # and spent seconds per batch. Two statements, not UPDATE ... WHERE id IN (SELECT ... LIMIT), for the same
    # reason.
    due = and_(
        _in_group(group, indexed=False),
        Device.apple_status != AppleStatus.removed,
        func.coalesce(Device.assignment_status, "").in_(WAITING),
        func.coalesce(Device.assignment_retry_at, cutoff) <= cutoff,
        Device.id > after_id,
    )
    ids = list(session.scalars(select(Device.id).where(due).order_by(Device.id).limit(size)))
    if not ids:
        return [], after_id
    claimed = session.execute(
        update(Device)
        .where(Device.id.in_(ids), due)
        .values(assignment_retry_at=now + CLAIM_LEASE)
        .returning(Device.id, Device.serial_number)
        .execution_options(synchronize_session=False)
    ).all()
    return sorted(serial for _, serial in claimed), max(ids)


def _settle(session: Session, group: _Group, serials: Sequence[str], **values: object) -> None:
    for start in range(0, len(serials), IN_CHUNK):
        session.execute(
            update(Device)
            .where(_in_group(group, indexed=False), Device.serial_number.in_(serials[start : start + IN_CHUNK]))
            .values(**values)
            .execution_options(synchronize_session=False)
        )


class _Runner:
    """One pass: a client per token, opened on first need and closed at the end."""

    def __init__(
        self,
        factory: SessionFactory,
        *,
        settings: Settings,
        box: SecretBox,
        open_client: ProfileClientFactory,
        clock: Callable[[], datetime],
        batch_size: int,
    ) -> None:
        self.factory, self.settings, self.open_client, self.clock = factory, settings, open_client, clock
        self.box = box
        self.batch_size = batch_size
        self.clients: dict[int, ProfileAPI] = {}
        self.tally = _Tally()
        self.skip_tokens: set[int] = set()
        self.skip_groups: set[_Group] = set()

    def close(self) -> None:
        for client in self.clients.values():
            client.close()

    def client_for(self, token: DEPToken) -> ProfileAPI:
        if token.id not in self.clients:
            self.clients[token.id] = self.open_client(token)
        return self.clients[token.id]

    def fail_token(self, token_id: int, error: DEPError) -> None:
        """Apple refused the token: record it and leave its devices queued for a run after the fix."""
        self.skip_tokens.add(token_id)
        self.tally.errors.append(str(error))
        if isinstance(error, DEPAuthFailure):
            with transaction(self.factory) as session:
                record_dep_failure(session.get_one(DEPToken, token_id), error, now=self.clock())

    def definition(self, group: _Group, *, redefine: bool = False) -> str | None:
        """The Apple UUID of the group's revision under its token, defining it first when needed (reference 3.5).

        A definition made with another enrollment URL than the one Pippin gives now is made again, so every device
        is sent to a URL that names the revision it was assigned. When a definition is replaced, the devices Apple
        holds the old one for are queued again in the same transaction: they are sent the new one, and the sync
        never takes them for devices whose profile Apple dropped.
        """
        with transaction(self.factory) as session:
            token = session.get_one(DEPToken, group.token_id)
            profile = session.get_one(DEPProfile, group.profile_id)
            existing = find_definition(session, profile_id=profile.id, token_id=token.id, revision=group.revision)
            if profile.revision != group.revision:
                # Edited meanwhile: its devices now wait for the new revision.
                return existing.profile_uuid if existing is not None and not redefine else None
            body = apple_profile(profile, settings=self.settings, box=self.box)
            if existing is not None and not redefine and existing.enrollment_url == body.url:
                return existing.profile_uuid
        client = self.client_for(token)
        self.tally.apple_calls += 1
        result = client.define_profile(body)
        with transaction(self.factory) as session:
            existing = find_definition(
                session, profile_id=group.profile_id, token_id=group.token_id, revision=group.revision
            )
            if existing is None:
                existing = ProfileDefinition(
                    profile_id=group.profile_id,
                    token_id=group.token_id,
                    revision=group.revision,
                    defined_at=self.clock(),
                )
                session.add(existing)
            replaced = existing.profile_uuid if existing.profile_uuid != result.profile_uuid else None
            existing.profile_uuid, existing.defined_at = result.profile_uuid, self.clock()
            existing.enrollment_url = body.url
            if replaced is not None:
                session.execute(
                    update(Device)
                    .where(_in_group(group), Device.assignment_status == AssignmentStatus.assigned)
                    .values(assignment_status=AssignmentStatus.pending, assignment_retry_at=None)
                    .execution_options(synchronize_session=False)
                )
        self.tally.definitions += 1
        return result.profile_uuid

    def run_group(self, group: _Group, cutoff: datetime) -> None:
        with transaction(self.factory) as session:
            token = session.get_one(DEPToken, group.token_id)
        try:
            profile_uuid = self.definition(group)
            if profile_uuid is None:
                self.skip_groups.add(group)
                return
            after_id = 0
            while True:
                now = self.clock()
                with transaction(self.factory) as session:
                    serials, last_id = _claim(
                        session, group, cutoff=cutoff, now=now, size=self.batch_size, after_id=after_id
                    )
                if last_id == after_id:
                    return
                after_id = last_id
                if serials:  # empty when another runner took every row first
                    profile_uuid = self.send(group, token, profile_uuid, serials)
        except DEPAuthFailure as error:
            self.fail_token(group.token_id, error)
        except DEPRequestRejected as error:
            # The profile itself is refused (a bad PIPPIN_SERVER_URL, say): its devices wait for a fix.
            self.skip_groups.add(group)
            self.tally.errors.append(str(error))
            with transaction(self.factory) as session:
                session.execute(
                    update(Device)
                    .where(_in_group(group), _due(cutoff))
                    .values(assignment_error=str(error), assignment_updated_at=self.clock())
                    .execution_options(synchronize_session=False)
                )
        except DEPError as error:
            self.fail_token(group.token_id, error)

    def send(self, group: _Group, token: DEPToken, profile_uuid: str, serials: list[str]) -> str:
        """One batch to Apple and its outcome committed; returns the UUID in use (it changes on a redefine)."""
        client = self.client_for(token)
        try:
            self.tally.apple_calls += 1
            result = client.assign_profile(profile_uuid=profile_uuid, serials=serials)
        except DEPRequestRejected as error:
            if error.apple_code not in ("PROFILE_NOT_FOUND", "NOT_FOUND"):
                self.release(group, serials, error, retry=FAILED_COOLDOWN, status=AssignmentStatus.failed)
                return profile_uuid
            # Apple no longer knows the definition: define the revision again, once, and resend.
            profile_uuid = self.definition(group, redefine=True) or profile_uuid
            self.tally.apple_calls += 1
            try:
                result = client.assign_profile(profile_uuid=profile_uuid, serials=serials)
            except DEPError as again:
                self.release(group, serials, again, retry=UNAVAILABLE_BACKOFF)
                raise
        except DEPError as error:
            self.release(group, serials, error, retry=UNAVAILABLE_BACKOFF)
            raise
        self.record(group, serials, result, profile_uuid)
        return profile_uuid

    def release(
        self, group: _Group, serials: list[str], error: DEPError, *, retry: timedelta, status: str | None = None
    ) -> None:
        now = self.clock()
        values: dict[str, object] = {
            "assignment_retry_at": now + retry,
            "assignment_error": str(error),
            "assignment_updated_at": now,
        }
        if status is not None:
            values["assignment_status"] = status
        with transaction(self.factory) as session:
            _settle(session, group, serials, **values)

    def record(self, group: _Group, serials: list[str], result: AssignProfileResult, profile_uuid: str) -> None:
        """Each serial's outcome, in one transaction with the batch (reference 3.7, 8)."""
        now = self.clock()
        by_status: dict[str, list[str]] = {}
        for serial in serials:
            status = result.devices.get(serial, "").upper()
            by_status.setdefault(status if status in _OUTCOMES else "", []).append(serial)
        throttle = timedelta(seconds=result.retry_after_seconds) if result.retry_after_seconds else DEFAULT_THROTTLE
        with transaction(self.factory) as session:
            for status, settled in by_status.items():
                values = _outcome_values(status, now=now, throttle=throttle, profile_uuid=profile_uuid)
                _settle(session, group, settled, assignment_updated_at=now, **values)
            record_dep_success(session.get_one(DEPToken, group.token_id), now=now)
        tally = self.tally
        tally.batches += 1
        tally.sent += len(serials)
        tally.assigned += len(by_status.get("SUCCESS", []))
        tally.not_accessible += len(by_status.get("NOT_ACCESSIBLE", []))
        tally.failed += len(by_status.get("FAILED", []))
        tally.throttled += len(by_status.get("THROTTLED", []))
        tally.unanswered += len(by_status.get("", []))


_OUTCOMES = ("SUCCESS", "NOT_ACCESSIBLE", "FAILED", "THROTTLED")


def _outcome_values(status: str, *, now: datetime, throttle: timedelta, profile_uuid: str) -> dict[str, object]:
    """The device columns for one of Apple's per-serial answers ("" when Apple's answer left the serial out)."""
    if status == "SUCCESS":
        # What Apple now shows for the device (reference 3.7); the next sync confirms it.
        return {
            "assignment_status": AssignmentStatus.assigned,
            "assignment_retry_at": None,
            "assignment_error": None,
            "profile_uuid": profile_uuid,
            "profile_status": "assigned",
            "profile_assign_time": now,
        }
    if status == "NOT_ACCESSIBLE":
        message = "Apple says this device is not assigned to the token's MDM server."
        return {
            "assignment_status": AssignmentStatus.not_accessible,
            "assignment_retry_at": None,
            "assignment_error": message,
        }
    if status == "FAILED":
        message = "Apple answered FAILED; Apple asks for 24 hours before trying this device again."
        return {
            "assignment_status": AssignmentStatus.failed,
            "assignment_retry_at": now + FAILED_COOLDOWN,
            "assignment_error": message,
        }
    if status == "THROTTLED":
        message = f"Apple answered THROTTLED; retried after {int(throttle.total_seconds())} seconds."
        return {
            "assignment_status": AssignmentStatus.throttled,
            "assignment_retry_at": now + throttle,
            "assignment_error": message,
        }
    message = "Apple's answer did not include this device; it is sent again soon."
    return {"assignment_retry_at": now + UNANSWERED_RETRY, "assignment_error": message}


def run_due_assignments(
    session_factory: SessionFactory,
    *,
    settings: Settings,
    box: SecretBox,
    open_client: ProfileClientFactory,
    clock: Callable[[], datetime] = utcnow,
    token_id: int | None = None,
    batch_size: int = BATCH_SIZE,
) -> AssignmentRunRead:
    """Send every due assignment to Apple (of one token, or all), in batches; one transaction per step.

    Due means pending, or failed/throttled whose retry time has come, on a device still assigned to a token.
    A token Apple refuses, or cannot be reached with, is left for the next run; its devices stay queued.
    """
    if not 1 <= batch_size <= BATCH_SIZE:
        raise InvalidInput(f"batch_size must be between 1 and {BATCH_SIZE}.")
    cutoff = clock()
    runner = _Runner(
        session_factory, settings=settings, box=box, open_client=open_client, clock=clock, batch_size=batch_size
    )
    if token_id is not None:
        with transaction(session_factory) as session:
            runner.skip_tokens.update(session.scalars(select(DEPToken.id).where(DEPToken.id != token_id)))
    try:
        while True:
            with transaction(session_factory) as session:
                group = _next_group(session, cutoff, runner.skip_tokens, runner.skip_groups)
            if group is None:
                break
            if group.token_id in runner.skip_tokens:
                continue
            try:
                runner.run_group(group, cutoff)
            except DEPAuthFailure as error:  # raised by opening the client: the token is refused or expired
                runner.fail_token(group.token_id, error)
    finally:
        runner.close()
    with transaction(session_factory) as session:
        still_due = count_due(session, now=clock(), token_id=token_id)
    tally = runner.tally
    return AssignmentRunRead(
        apple_calls=tally.apple_calls,
        definitions=tally.definitions,
        batches=tally.batches,
        sent=tally.sent,
        assigned=tally.assigned,
        failed=tally.failed,
        throttled=tally.throttled,
        not_accessible=tally.not_accessible,
        unanswered=tally.unanswered,
        errors=tally.errors,
        still_due=still_due,
    )


def count_due(session: Session, *, now: datetime | None = None, token_id: int | None = None) -> int:
    """How many devices :func:`run_due_assignments` would send now."""
    due = _due(now or utcnow())
    if token_id is not None:
        due = and_(due, Device.token_id == token_id)
    return session.scalar(select(func.count()).select_from(Device).where(due)) or 0


@dataclass(frozen=True)
class DueSendRequest:
    """An admin's "send what is due now", recorded: whose devices (``None``: every token's) and how many are due."""

    token_id: int | None
    due: int


def request_due_send(
    session: Session, *, actor: Actor, token_name: str | None = None, now: datetime | None = None
) -> DueSendRequest:
    """Record that ``actor`` asked to send the due assignments (of one token, or all); the caller then sends them
    with :func:`run_due_assignments`, here and now (the CLI) or once the answer is out (the API and the console).
    """
    token_id = None if token_name is None else get_token(session, name=token_name).id
    audit.record_event(session, actor=actor, action=AuditAction.profile_retry_due, target=token_name, now=now)
    return DueSendRequest(token_id=token_id, due=count_due(session, now=now, token_id=token_id))
