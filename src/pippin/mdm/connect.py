"""The ServerURL: a device's report stored, and its next command handed out, in one transaction.

Reference ``apple-mdm-protocol.md`` section 3 (after nanomdm's queue, and Apple's "Handling NotNow status
responses"). The report was read (``mdm/command_wire.py``) and its identity proven before it gets here; this runs in
the caller's transaction and never commits.

- ``Idle``: the device's next waiting command (highest priority, then oldest) is handed out and marked ``sent``;
  an empty answer when none waits.
- ``Acknowledged``, ``Error`` (with its ErrorChain), ``CommandFormatError``: the answer is stored, raw and sealed,
  with its status; the command is finished; the next command is handed out in the same response. A stored answer
  may move the device's release from Setup Assistant on (``mdm/setup_release.py``: DeviceConfigured once every
  enrollment-time command is answered).
- ``NotNow``: the device is busy. The command waits again, in its place, and nothing more is handed out in this
  session: Apple's device polls again by itself when it can, which it would not do after another command succeeded.
- An answer naming a command this server did not send to this device (unknown, or another device's) is refused,
  and changes nothing. An answer given again (a replay) changes nothing and gets the next command.

Delivery is at least once: a command marked ``sent`` whose response never reached the device (a crash, a dropped
connection) is still waiting, and is handed out again at the device's next Idle, under the same CommandUUID, which
devices use to recognise a command they already ran. A late answer to a command that expired or was canceled after
it was sent is the truth of what the device did, and is stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Select, Table, bindparam, select
from sqlalchemy.orm import Session

from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.mdm.checkin import CheckinAnswer, mark_connected
from pippin.mdm.checkin_wire import CheckinRefused
from pippin.mdm.command_answers import apply_answer
from pippin.mdm.command_wire import COMMAND_CONTENT_TYPE, CommandReport, ReportStatus, command_plist
from pippin.mdm.device_auth import AuthenticatedDevice
from pippin.mdm.identities import IdentityStore
from pippin.mdm.setup_release import note_answer
from pippin.mdm.webhooks import record_command_answer_event
from pippin.store.models import WAITING, Command, CommandStatus, Enrollment, waiting_clause

_FINAL = {
    ReportStatus.acknowledged: CommandStatus.acknowledged,
    ReportStatus.error: CommandStatus.error,
    ReportStatus.command_format_error: CommandStatus.error,
}
_MAX_REQUEST_TYPE_CHARS = 64


class UnknownCommand(CheckinRefused):
    """An answer for a command this server did not send to this device; nothing was stored."""


_COMMANDS = cast(Table, Command.__table__)
#: Built once (building a statement costs about as much as running it, and every Idle runs this one), in Core and
#: for the id alone: most Idles find nothing, the ORM's handling of a statement costs more than the query, and the
#: command is loaded only when there is one.
_NEXT_COMMAND_ID = (
    select(_COMMANDS.c.id)
    .where(_COMMANDS.c.udid == bindparam("udid"), waiting_clause())
    .order_by(_COMMANDS.c.priority.desc(), _COMMANDS.c.id)
    .limit(1)
)


def next_command_query(*, udid: str) -> Select[tuple[int]]:
    """The query of the id of the device's next waiting command: it reads the partial index of waiting commands
    (``ix_commands_next``), never the history. (A condition on the expiry here would let SQLite read the expiry
    index instead, every device's waiting commands; an expired one is caught after the read.)"""
    return _NEXT_COMMAND_ID.params(udid=udid)


def next_command(session: Session, *, udid: str, now: datetime) -> Command | None:
    """The device's next waiting command (highest priority, then oldest), or ``None``.

    One past its expiry that the expiry job has not reached yet is expired here, and the next one read.
    """
    session.flush()  # the Core read below sees only what was written
    while (found := session.connection().execute(_NEXT_COMMAND_ID, {"udid": udid}).scalar()) is not None:
        command = session.get(Command, found)
        assert command is not None  # just read, in this transaction
        if command.expires_at > now:
            return command
        command.status = CommandStatus.expired
        command.finished_at = now
        session.flush()
    return None


def _hand_out(session: Session, *, udid: str, box: SecretBox, now: datetime) -> CheckinAnswer:
    command = next_command(session, udid=udid, now=now)
    if command is None:
        return CheckinAnswer()
    command.status = CommandStatus.sent
    command.sent_at = now
    command.deliveries += 1
    session.flush()
    body = command_plist(command.command_uuid, command.body_encrypted, box=box)
    return CheckinAnswer(body=body, content_type=COMMAND_CONTENT_TYPE)


def _answered_command(session: Session, report: CommandReport) -> Command:
    command = session.scalar(select(Command).where(Command.command_uuid == report.command_uuid).with_for_update())
    # One refusal for both: a device learns nothing about other devices' commands.
    if command is None or command.udid != report.udid:
        raise UnknownCommand("The report answers a command this server did not send to this device.")
    echoed = report.fields.get("RequestType")
    if echoed is not None and echoed != command.request_type:
        raise CheckinRefused("The report's RequestType is not the command's.")
    return command


def _store(command: Command, report: CommandReport, *, box: SecretBox, now: datetime) -> None:
    command.answer_encrypted = box.encrypt(report.raw)
    command.report_status = report.status.value
    command.answered_at = now
    command.error_chain = report.error_chain


def record_answer(
    session: Session, enrollment: Enrollment, report: CommandReport, *, box: SecretBox, now: datetime
) -> bool:
    """Store the answer in ``report`` on its command; whether it changed anything (a replay does not)."""
    command = _answered_command(session, report)
    if report.status is ReportStatus.not_now:
        # Only the answer to a command handed out counts; the same NotNow again (nothing handed out since) is a replay.
        if command.status is not CommandStatus.sent:
            return False
        _store(command, report, box=box, now=now)
        command.status = CommandStatus.not_now
        command.not_now_count += 1
        session.flush()
        return True
    if command.status in (CommandStatus.acknowledged, CommandStatus.error):
        return False  # answered for good already: a replay
    if command.status not in WAITING and command.deliveries == 0:
        return False  # canceled or expired before any device could have it
    final = _FINAL[report.status]
    if final is CommandStatus.acknowledged:
        apply_answer(session, enrollment, request_type=command.request_type, report=report.fields, now=now)
    _store(command, report, box=box, now=now)
    command.status = final
    command.finished_at = now
    session.flush()
    return True


def handle_connect(
    session: Session,
    report: CommandReport,
    device: AuthenticatedDevice,
    *,
    identities: IdentityStore,
    box: SecretBox,
    settings: Settings,
    now: datetime,
) -> CheckinAnswer:
    """Do what ``report`` (from the authenticated ``device``) says, in the caller's transaction; the answer.

    Refusals (:class:`CheckinRefused`, the device authentication's) change nothing: the caller rolls back.
    """
    mark_connected(session, udid=report.udid, device=device, identities=identities, now=now)
    if report.status is not ReportStatus.idle:
        enrollment = session.get(Enrollment, report.udid)
        assert enrollment is not None  # marked seen above, in this transaction
        if record_answer(session, enrollment, report, box=box, now=now):
            note_answer(session, enrollment, command_uuid=report.command_uuid, box=box, settings=settings, now=now)
            record_command_answer_event(
                session,
                settings=settings,
                udid=report.udid,
                topic=enrollment.topic,
                command_uuid=report.command_uuid or "",
                status=report.status.value,
                raw=report.raw,
                now=now,
                box=box,
            )
        if report.status is ReportStatus.not_now:
            return CheckinAnswer()
    return _hand_out(session, udid=report.udid, box=box, now=now)
