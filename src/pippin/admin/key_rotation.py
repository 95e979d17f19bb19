"""Master key rotation: every sealed secret opened with the old key and sealed with the new, in one transaction.

The secrets are every value of ``store/sealed.py``'s columns: the DEP tokens' private keys (current and pending)
and OAuth credentials, and the signing keys. The signing keys keep their value, so the enrollment URLs Apple
holds still verify after a rotation and no profile has to be defined again. The check value changes in the
same transaction, so the database is all old key or all new: a failure at any point before the commit leaves
the old key working and nothing changed. What the CLI does with the key file around this is in
``cli/secrets.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from pippin.admin import audit
from pippin.admin.actor import Actor, AuditAction
from pippin.admin.master_key import mismatch
from pippin.crypto.secrets import SecretBox
from pippin.errors import ConfigurationError, InvalidInput, PippinError
from pippin.store.models import MASTER_KEY_CHECK_ID, MasterKeyCheck, utcnow
from pippin.store.sealed import SEALED_COLUMNS


@dataclass(frozen=True)
class Rotation:
    """What a rotation did: from which key to which (fingerprints), and how many secrets it sealed again."""

    old_fingerprint: str
    new_fingerprint: str
    secrets: int


def rotate_master_key(
    session: Session,
    *,
    box: SecretBox,
    new_box: SecretBox,
    actor: Actor,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> Rotation:
    """Seal every secret with ``new_box`` instead of ``box`` and record the new key's check value, in the
    caller's transaction, with its audit event for ``actor``. ``progress`` is told the count after each secret.

    The check row is locked first, so a process sealing a secret at the same moment (``confirm_master_key``)
    either finishes before or finds the new key recorded and stores nothing.
    """
    check = session.scalars(
        select(MasterKeyCheck).where(MasterKeyCheck.id == MASTER_KEY_CHECK_ID).with_for_update()
    ).one_or_none()
    if check is None:
        raise ConfigurationError(
            "No master key is recorded for this database yet.", hint="Run any `pippin dep` command first."
        )
    if not box.matches(check.check_value):
        raise mismatch(stored_fingerprint=check.fingerprint, box=box, source="this process")
    if new_box.matches(check.check_value):
        raise InvalidInput(
            "The new master key is the key in use; nothing was changed.",
            hint="Make a new one with the command in the README, or leave out --new-key-stdin.",
        )
    count = 0
    for column in SEALED_COLUMNS:
        entity = column.class_
        for row in session.scalars(select(entity).where(column.is_not(None)).with_for_update()):
            sealed = getattr(row, column.key)
            try:
                plaintext = box.decrypt(sealed)
            except PippinError as error:
                where = f"{entity.__tablename__}.{column.key} of row {inspect(row).identity}"
                raise ConfigurationError(
                    f"{error.message} ({where}); the rotation was rolled back and the old key still works.",
                    hint=error.hint,
                ) from None
            setattr(row, column.key, new_box.encrypt(plaintext))
            count += 1
            if progress is not None:
                progress(count)
    old_fingerprint = check.fingerprint
    check.fingerprint, check.check_value, check.rotated_at = new_box.fingerprint, new_box.check_value(), now or utcnow()
    audit.record_event(
        session,
        actor=actor,
        action=AuditAction.master_key_rotate,
        detail={"old_fingerprint": old_fingerprint, "new_fingerprint": new_box.fingerprint, "secrets": count},
        now=now,
    )
    session.flush()
    return Rotation(old_fingerprint=old_fingerprint, new_fingerprint=new_box.fingerprint, secrets=count)
