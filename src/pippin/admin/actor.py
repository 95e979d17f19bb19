"""Who acts on Pippin, through which interface, and the changes the audit log records them making."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

#: The actor of a sign-in attempt until it succeeds: nobody is known to be asking yet.
ANONYMOUS = "anonymous"


class Interface(StrEnum):
    """Where a change came from."""

    console = "console"
    api = "api"
    cli = "cli"
    device = "device"
    system = "system"


class AuditAction(StrEnum):
    """Every change the audit log records; the values are what the log shows and ``--action`` filters on."""

    dep_keypair_create = "dep.keypair.create"
    dep_token_upload = "dep.token.upload"  # noqa: S105 (an action's name, not a secret)
    dep_token_delete = "dep.token.delete"  # noqa: S105
    dep_sync_start = "dep.sync.start"
    #: `pippin push csr`: the organisation's request for a push certificate (not a push).
    push_request_create = "push.request.create"
    push_vendor_import = "push.vendor.import"
    push_certificate_upload = "push.certificate.upload"
    #: An admin asked for pushes to enrollments (`detail.requested` counts them).
    push_send = "push.send"
    #: `pippin push test`: one push to a raw device token with the stored certificate (`detail` has the answer).
    push_test = "push.test"
    profile_create = "profile.create"
    profile_update = "profile.update"
    profile_delete = "profile.delete"
    profile_assign = "profile.assign"
    profile_set_default = "profile.set_default"
    profile_retry_due = "profile.retry_due"
    #: An enrollment-time command added to a profile (``detail`` has its kind and label, never a payload).
    profile_setup_command_add = "profile.setup_command.add"
    profile_setup_command_remove = "profile.setup_command.remove"
    admin_sign_in = "admin.sign_in"
    #: A wrong password or an unknown address (counted by the throttle); refused attempts are not recorded.
    admin_sign_in_failed = "admin.sign_in.failed"
    #: A failed attempt that started a block of the sign-in throttle (``detail.counters`` says which).
    admin_sign_in_throttled = "admin.sign_in.throttled"
    admin_user_create = "admin.user.create"
    admin_user_disable = "admin.user.disable"
    admin_user_enable = "admin.user.enable"
    admin_user_unlock = "admin.user.unlock"
    admin_user_set_role = "admin.user.set_role"
    admin_user_reset_password = "admin.user.reset_password"  # noqa: S105
    admin_api_token_create = "admin.api_token.create"  # noqa: S105
    admin_api_token_revoke = "admin.api_token.revoke"  # noqa: S105
    master_key_rotate = "master_key.rotate"
    #: An organisation user added to the local directory (`detail.via` is ``import`` for a CSV import).
    directory_user_add = "directory.user.add"
    directory_user_disable = "directory.user.disable"
    #: An organisation user signed in on a device's enrollment page (``detail`` has the device's serial number).
    directory_sign_in = "directory.sign_in"
    #: A wrong password or an unknown user on an enrollment page (counted by the throttle).
    directory_sign_in_failed = "directory.sign_in.failed"
    #: `pippin enroll link` or `pippin enroll profile`: a profile any device may enroll with, N times.
    enrollment_link_create = "enrollment.link.create"
    #: An MDM command queued for one device (``detail`` has its request type and command UUID).
    command_send = "command.send"
    #: One command queued for many devices (``detail.devices`` counts them), or a bulk erase asked for approval.
    command_send_bulk = "command.send_bulk"
    #: A queued command canceled before the device fetched it.
    command_cancel = "command.cancel"
    #: A second admin approved a bulk erase another admin asked for; it is queued after this.
    command_approve = "command.approve"


@dataclass(frozen=True)
class Actor:
    """Who asks for a change, through which interface, and from where (a client address, or the CLI's host).

    Built by the interface (the signed-in admin, the API token, the operating-system user) and passed to the
    use case, which records it with the change.
    """

    name: str
    interface: Interface
    source: str | None = None
