"""Sending due profile assignments to Apple in batches of 1000, with Apple's retry rules.

Apple answers 200 while refusing single serials (reference 3.7, 8), so each serial's outcome is stored
(``dep/assignment_outcomes.py``): ``FAILED`` is not sent again for 24 hours, ``THROTTLED`` not before
``retry_after_seconds``.

:func:`run_due_assignments` takes a *session factory* and commits one short transaction per step, like the sync.
A batch is first *claimed*: one conditional UPDATE gives its devices a claim of the runner's own and a lease
(their retry time, :data:`CLAIM_LEASE` ahead), so a second runner never sends it too. The claim is committed
before the call to Apple and ends with the transaction that stores Apple's answer, so what a crash (kill -9,
power cut) can leave is known: devices whose claim outlived its lease. The next runner to find them due looks
them up at Apple first (``POST /devices``, reference 3.4) and sends again only those Apple does not hold the
profile for; the others are stored as assigned (or not accessible) without a second assignment.

What holds, under a crash at any step:

- a device Apple holds the profile for is never sent it again for the same definition; a device is sent again
  only when Apple does not hold the profile: the crash came before the send reached Apple, or Apple answered
  ``FAILED`` or ``THROTTLED`` and the answer was lost (Apple answers the same again, at the cost of one call);
- a crash loses the answer of at most the batch in flight (each runner has one), and only its devices wait for
  the lease to end; batches stored before it stay stored, batches after it are sent as usual;
- every later write of a batch (its outcome, its release after an error) applies only to the devices that
  still carry the runner's claim, so a runner that outlived its lease never overwrites the runner that took
  its batch over. The one case left: a call still waiting for Apple when the lease ends, whose batch another
  runner takes over before Apple has acted on it, is sent twice (the client's timeouts and retries normally end
  a call within minutes).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

from pippin.admin import audit
from pippin.admin.audit import Actor, AuditAction
from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.dep.assignment_claims import CLAIM_LEASE, Batch, Group, claim_batch, due_by, in_group, next_group, settle
from pippin.dep.assignment_outcomes import (
    ASSIGN_OUTCOMES,
    FAILED_COOLDOWN,
    assign_outcome_values,
    held_record,
    held_values,
    not_accessible_values,
)
from pippin.dep.errors import DEPAuthFailure, DEPError, DEPRequestRejected, DEPResponseInvalid, DEPUnavailable
from pippin.dep.profile_schemas import AssignmentRunRead
from pippin.dep.profiles import apple_profile, find_definition
from pippin.dep.token import get_token, record_dep_failure, record_dep_success
from pippin.dep.wire import AssignProfileResult, DefineProfileResult, DEPDevice, DeviceDetail, Profile
from pippin.errors import InvalidInput
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import (
    AssignmentStatus,
    DEPProfile,
    DEPToken,
    Device,
    ProfileDefinition,
    utcnow,
)

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000  # Apple: "limit requests to 1000 devices at a time" (reference 3.7)
DEFAULT_THROTTLE = timedelta(hours=1)  # THROTTLED without retry_after_seconds (protocol before v10)
UNAVAILABLE_BACKOFF = timedelta(minutes=5)


class ProfileAPI(Protocol):
    """The ``DEPClient`` calls assignment makes."""

    def define_profile(self, profile: Profile) -> DefineProfileResult: ...
    def assign_profile(self, *, profile_uuid: str, serials: Sequence[str]) -> AssignProfileResult: ...
    def device_details(self, serials: Sequence[str]) -> dict[str, DeviceDetail]: ...
    def close(self) -> None: ...


ProfileClientFactory = Callable[[DEPToken], ProfileAPI]


@dataclass
class _Tally:
    apple_calls: int = 0
    definitions: int = 0
    batches: int = 0
    sent: int = 0
    assigned: int = 0
    confirmed: int = 0
    failed: int = 0
    throttled: int = 0
    not_accessible: int = 0
    unanswered: int = 0
    errors: list[str] = field(default_factory=list)


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
        self.skip_groups: set[Group] = set()

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

    def definition(self, group: Group, *, redefine: bool = False) -> str | None:
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
                    .where(in_group(group), Device.assignment_status == AssignmentStatus.assigned)
                    .values(assignment_status=AssignmentStatus.pending, assignment_retry_at=None)
                    .execution_options(synchronize_session=False)
                )
        self.tally.definitions += 1
        return result.profile_uuid

    def run_group(self, group: Group, cutoff: datetime) -> None:
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
                    batch, last_id = claim_batch(
                        session, group, cutoff=cutoff, now=now, size=self.batch_size, after_id=after_id
                    )
                if last_id == after_id:
                    return
                after_id = last_id
                if batch is not None:  # None when another runner took every row first
                    profile_uuid = self.send(group, token, profile_uuid, batch)
        except DEPAuthFailure as error:
            self.fail_token(group.token_id, error)
        except DEPRequestRejected as error:
            # The profile itself is refused (a bad PIPPIN_SERVER_URL, say): its devices wait for a fix.
            self.skip_groups.add(group)
            self.tally.errors.append(str(error))
            with transaction(self.factory) as session:
                session.execute(
                    update(Device)
                    .where(in_group(group), due_by(cutoff))
                    .values(assignment_error=str(error), assignment_updated_at=self.clock())
                    .execution_options(synchronize_session=False)
                )
        except DEPError as error:
            self.fail_token(group.token_id, error)

    def send(self, group: Group, token: DEPToken, profile_uuid: str, batch: Batch) -> str:
        """One batch to Apple and its outcome committed; returns the UUID in use (it changes on a redefine).

        The unsettled devices of the batch are looked up at Apple first, and only those Apple does not hold the
        profile for are sent.
        """
        serials = batch.serials
        if batch.unsettled:
            serials = self.reconcile(group, token, profile_uuid, batch)
            if not serials:
                return profile_uuid
        client = self.client_for(token)
        try:
            self.tally.apple_calls += 1
            result = client.assign_profile(profile_uuid=profile_uuid, serials=serials)
        except DEPRequestRejected as error:
            if error.apple_code not in ("PROFILE_NOT_FOUND", "NOT_FOUND"):
                self.release(group, batch, error, retry=FAILED_COOLDOWN, status=AssignmentStatus.failed)
                return profile_uuid
            # Apple no longer knows the definition, so it assigned nothing: define the revision again, once,
            # and resend what is still this runner's.
            try:
                profile_uuid = self.definition(group, redefine=True) or profile_uuid
                serials = self.renew(group, batch, serials)
                if not serials:
                    return profile_uuid
                self.tally.apple_calls += 1
                result = client.assign_profile(profile_uuid=profile_uuid, serials=serials)
            except DEPError as again:
                self.release(group, batch, again, retry=UNAVAILABLE_BACKOFF, unsettled=_maybe_sent(again, serials))
                raise
        except DEPError as error:
            self.release(group, batch, error, retry=UNAVAILABLE_BACKOFF, unsettled=_maybe_sent(error, serials))
            raise
        self.record(group, batch, serials, result, profile_uuid)
        return profile_uuid

    def reconcile(self, group: Group, token: DEPToken, profile_uuid: str, batch: Batch) -> list[str]:
        """Ask Apple about the batch's unsettled devices (reference 3.4) and store what it holds; returns the
        batch's serials still to send, their lease renewed for the send.

        Apple's record shows the profile assigned when the lost send reached it: those devices are assigned and
        not sent again. ``NOT_ACCESSIBLE`` is what an assignment would answer too. Any other record (no profile,
        another one, ``FAILED``) means Apple did not take the assignment, and the device is sent.
        """
        client = self.client_for(token)
        try:
            self.tally.apple_calls += 1
            details = client.device_details(batch.unsettled)
        except DEPError as error:
            self.release(group, batch, error, retry=UNAVAILABLE_BACKOFF, unsettled=batch.unsettled)
            raise
        now = self.clock()
        # Devices Apple holds the profile for, grouped by what their records say (profile status and assignment
        # time), so a batch is stored in a few statements.
        held: dict[tuple[str | None, datetime | None], list[str]] = {}
        records: dict[tuple[str | None, datetime | None], DEPDevice] = {}
        away: list[str] = []
        for serial in batch.unsettled:
            detail = details.get(serial)
            device = held_record(detail, profile_uuid)
            if device is not None:
                key = (device.profile_status, device.profile_assign_time)
                held.setdefault(key, []).append(serial)
                records.setdefault(key, device)
            elif detail is not None and detail.response_status == "NOT_ACCESSIBLE":
                away.append(serial)
        with transaction(self.factory) as session:
            confirmed: list[str] = []
            for key, serials in held.items():
                values = held_values(records[key], now=now, profile_uuid=profile_uuid)
                confirmed += settle(session, group, batch.claim, serials, assignment_updated_at=now, **values)
            gone = settle(session, group, batch.claim, away, assignment_updated_at=now, **not_accessible_values())
            settled = {serial for serials in held.values() for serial in serials} | set(away)
            rest = [serial for serial in batch.serials if serial not in settled]
            to_send = settle(session, group, batch.claim, rest, assignment_retry_at=now + CLAIM_LEASE)
        self.tally.confirmed += len(confirmed)
        self.tally.not_accessible += len(gone)
        if confirmed:
            logger.info(
                "found assigned at Apple after an interrupted send; not sent again",
                extra={"fields": {"devices": len(confirmed), "profile_uuid": profile_uuid}},
            )
        return to_send

    def renew(self, group: Group, batch: Batch, serials: list[str]) -> list[str]:
        """Push the lease of those of ``serials`` still claimed by this runner a lease ahead; returns them."""
        with transaction(self.factory) as session:
            return settle(session, group, batch.claim, serials, assignment_retry_at=self.clock() + CLAIM_LEASE)

    def release(
        self,
        group: Group,
        batch: Batch,
        error: DEPError,
        *,
        retry: timedelta,
        status: str | None = None,
        unsettled: Collection[str] = (),
    ) -> None:
        """Leave the batch's devices queued after a failed call, until ``retry`` from now.

        ``unsettled`` devices keep the claim: the call may have reached Apple (no answer, or one Pippin could not
        read), or an earlier lost call may have, so the next runner looks them up at Apple before sending them.
        """
        now = self.clock()
        values: dict[str, object] = {
            "assignment_retry_at": now + retry,
            "assignment_error": str(error),
            "assignment_updated_at": now,
        }
        if status is not None:
            values["assignment_status"] = status
        keep = set(unsettled)
        with transaction(self.factory) as session:
            settle(session, group, batch.claim, [serial for serial in batch.serials if serial in keep], **values)
            done = [serial for serial in batch.serials if serial not in keep]
            settle(session, group, batch.claim, done, assignment_claim=None, **values)

    def record(
        self, group: Group, batch: Batch, serials: list[str], result: AssignProfileResult, profile_uuid: str
    ) -> None:
        """Each serial's outcome, in one transaction with the batch (reference 3.7, 8)."""
        now = self.clock()
        by_status: dict[str, list[str]] = {}
        for serial in serials:
            status = result.devices.get(serial, "").upper()
            by_status.setdefault(status if status in ASSIGN_OUTCOMES else "", []).append(serial)
        throttle = timedelta(seconds=result.retry_after_seconds) if result.retry_after_seconds else DEFAULT_THROTTLE
        with transaction(self.factory) as session:
            for status, settled in by_status.items():
                values = assign_outcome_values(status, now=now, throttle=throttle, profile_uuid=profile_uuid)
                settle(session, group, batch.claim, settled, assignment_updated_at=now, **values)
            record_dep_success(session.get_one(DEPToken, group.token_id), now=now)
        tally = self.tally
        tally.batches += 1
        tally.sent += len(serials)
        tally.assigned += len(by_status.get("SUCCESS", []))
        tally.not_accessible += len(by_status.get("NOT_ACCESSIBLE", []))
        tally.failed += len(by_status.get("FAILED", []))
        tally.throttled += len(by_status.get("THROTTLED", []))
        tally.unanswered += len(by_status.get("", []))


def _maybe_sent(error: DEPError, serials: list[str]) -> list[str]:
    """The serials a failed call may still have assigned at Apple: all of them when no answer (or no readable
    answer) came back, none when Apple refused the call."""
    return serials if isinstance(error, DEPUnavailable | DEPResponseInvalid) else []


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
                group = next_group(session, cutoff, runner.skip_tokens, runner.skip_groups)
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
        confirmed=tally.confirmed,
        failed=tally.failed,
        throttled=tally.throttled,
        not_accessible=tally.not_accessible,
        unanswered=tally.unanswered,
        errors=tally.errors,
        still_due=still_due,
    )


def count_due(session: Session, *, now: datetime | None = None, token_id: int | None = None) -> int:
    """How many devices :func:`run_due_assignments` would send now."""
    due = due_by(now or utcnow())
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
