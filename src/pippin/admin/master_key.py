"""One master key for every process: the secret box a process may use, checked against the database first.

The first process to use a database writes its key's check value (``store/models/master_key.py``); every
other process compares its own before it touches a secret, and refuses to start with another key: two keys on
one database would seal secrets that the other processes cannot open (a DEP token's syncs failing in every
process but the one that uploaded it). The check also stops a process whose data directory has no key file
from making a new key for a database that already has one: nothing is written when the check fails.

The first process to write the check value makes sure every secret already stored is sealed with its key
(a database from before the check existed), so it cannot claim a database whose secrets another key sealed.

A crash of `pippin secrets rotate` (``admin/key_rotation.py``) after its commit but before its new key file
took the old one's place leaves ``master.key.new`` holding the database's key: :func:`open_secret_box` finds
it there and completes the swap.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pippin.config import Settings
from pippin.crypto.secrets import (
    KEY_FILE_NAME,
    NEW_KEY_FILE_NAME,
    SIGNING_PURPOSES,
    SecretBox,
    create_key_file,
    parse_master_key,
    promote_new_key_file,
    read_key_file,
)
from pippin.errors import ConfigurationError
from pippin.store.db import SessionFactory, read_transaction, transaction
from pippin.store.models import MASTER_KEY_CHECK_ID, MasterKeyCheck, SigningKey, utcnow
from pippin.store.sealed import SEALED_COLUMNS

SHARE_KEY_HINT = (
    "Every Pippin process that shares a database must use the same master key: set PIPPIN_SECRET_KEY to it "
    "everywhere, or give each data directory a copy of the same master.key file (mode 0600). `pippin doctor` "
    "shows each process's key fingerprint and whether it matches the database."
)


class MasterKeyMismatch(ConfigurationError):
    """This process's master key is not the one the database's secrets are sealed with; nothing was written."""

    code = "master_key_mismatch"


def key_source(settings: Settings) -> str:
    """Where this process's master key comes from, as messages name it."""
    return "PIPPIN_SECRET_KEY" if settings.secret_key is not None else str(settings.data_dir / KEY_FILE_NAME)


def read_master_key(settings: Settings) -> bytes | None:
    """This process's master key, or None when it would come from a key file that does not exist yet."""
    if settings.secret_key is not None:
        return parse_master_key(settings.secret_key.get_secret_value(), source="PIPPIN_SECRET_KEY")
    path = settings.data_dir / KEY_FILE_NAME
    if not path.exists():
        return None
    return read_key_file(path)


def mismatch(*, stored_fingerprint: str, box: SecretBox | None, source: str) -> MasterKeyMismatch:
    mine = "does not exist" if box is None else f"holds the key with fingerprint {box.fingerprint}"
    return MasterKeyMismatch(
        f"This database's secrets are sealed with the master key with fingerprint {stored_fingerprint}, but "
        f"{source} {mine}; Pippin did not start, and changed nothing.",
        hint=SHARE_KEY_HINT,
    )


def find_check(session: Session) -> MasterKeyCheck | None:
    return session.get(MasterKeyCheck, MASTER_KEY_CHECK_ID)


def _signing_keys(session: Session, box: SecretBox) -> dict[str, bytes]:
    rows = session.scalars(select(SigningKey)).all()
    return {row.purpose: box.decrypt(row.key_encrypted) for row in rows}


def _missing_signing_keys(session: Session, box: SecretBox, stored: Mapping[str, bytes]) -> dict[str, bytes]:
    """Store a key for each purpose the database has none for yet (derived from the master key, see SecretBox)."""
    added: dict[str, bytes] = {}
    for purpose in SIGNING_PURPOSES:
        if purpose not in stored:
            added[purpose] = box.derive_key(purpose)
            session.add(SigningKey(purpose=purpose, key_encrypted=box.encrypt(added[purpose]), created_at=utcnow()))
    return added


def _sealed_with_another_key(session: Session, box: SecretBox) -> bool:
    for column in SEALED_COLUMNS:
        for value in session.scalars(select(column).where(column.is_not(None))):
            if value is not None and not box.sealed_by_this_key(value):
                return True
    return False


def key_left_by_rotation(settings: Settings, check_value: str) -> bytes | None:
    """The key in ``master.key.new`` if it is the database's: a rotation committed, then stopped (see module)."""
    if settings.secret_key is not None:
        return None
    try:
        new_key = read_key_file(settings.data_dir / NEW_KEY_FILE_NAME)
    except (FileNotFoundError, ConfigurationError):
        return None
    return new_key if SecretBox(new_key).matches(check_value) else None


def _finish_interrupted_rotation(settings: Settings, check: MasterKeyCheck) -> bytes | None:
    """The key of ``master.key.new`` put in ``master.key``'s place, if it is the database's key."""
    new_key = key_left_by_rotation(settings, check.check_value)
    if new_key is not None:
        promote_new_key_file(settings.data_dir)
    return new_key


def _checked_box(session: Session, settings: Settings, check: MasterKeyCheck) -> SecretBox:
    key = read_master_key(settings)
    if key is None or not SecretBox(key).matches(check.check_value):
        key = _finish_interrupted_rotation(settings, check) or key
    box = None if key is None else SecretBox(key)
    if box is None or not box.matches(check.check_value):
        raise mismatch(stored_fingerprint=check.fingerprint, box=box, source=key_source(settings))
    return box.with_signing_keys(_signing_keys(session, box))


def _register(session_factory: SessionFactory, settings: Settings) -> SecretBox | None:
    """Write the first check value with this process's key (created if missing); None if another process did."""
    key_file = settings.data_dir / KEY_FILE_NAME
    created_file = False
    try:
        with transaction(session_factory) as session:
            if find_check(session) is not None:
                return None
            key = read_master_key(settings)
            if key is None:
                created_file = create_key_file(key_file)
                key = read_key_file(key_file)
            box = SecretBox(key)
            if _sealed_with_another_key(session, box):
                raise MasterKeyMismatch(
                    f"This database holds secrets sealed with another master key than the one in "
                    f"{key_source(settings)} (fingerprint {box.fingerprint}); Pippin did not start, and changed "
                    "nothing.",
                    hint=SHARE_KEY_HINT,
                )
            session.add(
                MasterKeyCheck(
                    id=MASTER_KEY_CHECK_ID,
                    fingerprint=box.fingerprint,
                    check_value=box.check_value(),
                    created_at=utcnow(),
                )
            )
            signing_keys = _missing_signing_keys(session, box, _signing_keys(session, box))
    except BaseException:
        if created_file:  # made a moment ago for a database it did not become the key of: take it back
            key_file.unlink(missing_ok=True)
        raise
    return box.with_signing_keys(signing_keys)


def _add_missing_signing_keys(session_factory: SessionFactory, box: SecretBox) -> SecretBox:
    with transaction(session_factory) as session:
        stored = _signing_keys(session, box)
        return box.with_signing_keys({**stored, **_missing_signing_keys(session, box, stored)})


def open_secret_box(session_factory: SessionFactory, *, settings: Settings) -> SecretBox:
    """The secret box of this process's master key, once the database confirms it is the one its secrets use.

    Raises :class:`MasterKeyMismatch` (changing nothing, creating no key file) for another key, or for a key
    file that is missing while the database already has a key. The first process on a database registers its
    key (creating ``master.key`` if it has neither that nor PIPPIN_SECRET_KEY).
    """
    for _attempt in range(2):
        with read_transaction(session_factory) as session:
            check = find_check(session)
            box = None if check is None else _checked_box(session, settings, check)
        if box is not None:
            if set(SIGNING_PURPOSES) <= box.signing_purposes:
                return box
            return _add_missing_signing_keys(session_factory, box)  # a purpose newer than the database's keys
        try:
            registered = _register(session_factory, settings)
        except IntegrityError:
            continue  # another process wrote the first check value at the same moment: compare with it
        if registered is not None:
            return registered
    raise ConfigurationError(
        "The database's master key check could not be read.", hint="Run the command again; if it persists, report it."
    )


def confirm_master_key(session: Session, box: SecretBox) -> None:
    """Inside a transaction that seals a secret: refuse if the database's master key changed since ``box`` was
    opened (a rotation while this process ran). Locks the check row (shared), so a rotation waits for it."""
    check = session.scalars(
        select(MasterKeyCheck).where(MasterKeyCheck.id == MASTER_KEY_CHECK_ID).with_for_update(read=True)
    ).one_or_none()
    if check is not None and not box.matches(check.check_value):
        raise MasterKeyMismatch(
            f"The database's master key was changed (fingerprint {check.fingerprint}) while this Pippin process "
            f"ran with the key {box.fingerprint}; nothing was stored.",
            hint="Restart every Pippin process with the new master key (`pippin secrets rotate` printed what to do).",
        )
