"""Deleting a DEP token: what goes with it, counted before and removed in one transaction.

A token's device records (Apple's side of each device), its sync runs, its profile definitions at Apple and its
default-profile choice exist only for that token, so they go with it; the devices' queued assignments go with
their records and are never sent. The enrollment profiles themselves stay: they are Pippin's, and other tokens
may use them.

Enrollments are the device half's (``store/models/enrollment.py``): a device that enrolled stays enrolled and
managed, so its enrollment is kept and only unlinked from the deleted DEP record, like a device enrolled
through a manual enrollment link. Nothing is sent to Apple: the devices stay assigned to this MDM server there
until an admin releases them in Apple Business Manager (:data:`~pippin.dep.schemas.APPLE_KEEPS_DEVICES`).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.orm import Session

from pippin.admin import audit
from pippin.admin.audit import Actor, AuditAction
from pippin.dep.assignment import WAITING
from pippin.dep.schemas import TokenDeletionRead
from pippin.dep.sync_runs import SyncWindowClosed
from pippin.dep.token import get_token, validate_name
from pippin.errors import NotFound
from pippin.store.models import (
    Base,
    DEPProfile,
    DEPToken,
    Device,
    Enrollment,
    ProfileDefinition,
    SyncRun,
    TokenDefaultProfile,
    utcnow,
)

logger = logging.getLogger(__name__)


def _count(session: Session, model: type[Base], where: ColumnElement[bool]) -> int:
    return session.scalar(select(func.count()).select_from(model).where(where)) or 0


def _tally(session: Session, token: DEPToken, *, deleted: bool) -> TokenDeletionRead:
    token_devices = select(Device.id).where(Device.token_id == token.id)
    default_profile = session.scalars(
        select(DEPProfile.name)
        .join(TokenDefaultProfile, TokenDefaultProfile.profile_id == DEPProfile.id)
        .where(TokenDefaultProfile.token_id == token.id)
    ).first()
    return TokenDeletionRead(
        token=token.name,
        server_name=token.server_name,
        server_uuid=token.server_uuid,
        deleted=deleted,
        devices=_count(session, Device, Device.token_id == token.id),
        sync_runs=_count(session, SyncRun, SyncRun.token_id == token.id),
        profile_definitions=_count(session, ProfileDefinition, ProfileDefinition.token_id == token.id),
        default_profile=default_profile,
        pending_assignments=_count(
            session, Device, (Device.token_id == token.id) & Device.assignment_status.in_(WAITING)
        ),
        enrollments_unlinked=_count(session, Enrollment, Enrollment.device_id.in_(token_devices)),
    )


def preview_token_deletion(session: Session, *, name: str) -> TokenDeletionRead:
    """What deleting token ``name`` would remove, for the confirmation; changes nothing."""
    return _tally(session, get_token(session, name=name), deleted=False)


def delete_token(session: Session, *, name: str, actor: Actor, now: datetime | None = None) -> TokenDeletionRead:
    """Delete token ``name`` and everything that is only its (see the module docstring); returns what went.

    Refused while a sync of the token holds its window (:class:`SyncWindowClosed`): the token row is locked first,
    so a sync cannot claim the window between the check and the delete, and a running one is not cut off halfway.
    The caller's transaction holds it all, with the audit event: a failure leaves everything as it was.
    """
    moment = now or utcnow()
    token_id = get_token(session, name=name).id
    token = session.get(DEPToken, token_id, with_for_update=True, populate_existing=True)
    if token is None:  # deleted by another transaction since it was read
        raise NotFound(f"There is no DEP token named {validate_name(name)!r}.", hint="`pippin dep tokens` lists them.")
    if token.sync_window_until is not None and token.sync_window_until > moment:
        raise SyncWindowClosed(token_name=token.name, retry_at=token.sync_window_until)
    removed = _tally(session, token, deleted=True)
    token_devices = select(Device.id).where(Device.token_id == token.id).scalar_subquery()
    session.execute(
        update(Enrollment)
        .where(Enrollment.device_id.in_(token_devices))
        .values(device_id=None)
        .execution_options(synchronize_session=False)
    )
    for model, column in (
        (Device, Device.token_id),
        (SyncRun, SyncRun.token_id),
        (ProfileDefinition, ProfileDefinition.token_id),
        (TokenDefaultProfile, TokenDefaultProfile.token_id),
    ):
        session.execute(delete(model).where(column == token.id).execution_options(synchronize_session=False))
    session.delete(token)
    audit.record_event(
        session,
        actor=actor,
        action=AuditAction.dep_token_delete,
        target=removed.token,
        detail={
            "server": removed.server_name,
            "devices": removed.devices,
            "sync_runs": removed.sync_runs,
            "profile_definitions": removed.profile_definitions,
            "pending_assignments": removed.pending_assignments,
            "enrollments_unlinked": removed.enrollments_unlinked,
        },
        now=moment,
    )
    logger.info("DEP token deleted", extra={"fields": {"token": removed.token, "devices": removed.devices}})
    return removed
