"""Pippin's ORM classes, one concept per module, re-exported here."""

from pippin.store.models.admin_session import AdminSession
from pippin.store.models.admin_user import AdminRole, AdminUser
from pippin.store.models.api_token import AdminAPIToken, APITokenScope
from pippin.store.models.audit_event import AuditEvent
from pippin.store.models.base import MAX_STORED_INTEGER, Base, UTCDateTime, utcnow
from pippin.store.models.checkin_message import CheckinMessage
from pippin.store.models.command import WAITING, WAITING_SQL, Command, CommandStatus, waiting_clause
from pippin.store.models.command_approval import ApprovalStatus, CommandApproval, CommandApprovalTarget
from pippin.store.models.dep_profile import (
    AssignmentStatus,
    DEPProfile,
    ProfileDefinition,
    TokenDefaultProfile,
    UserAffinity,
)
from pippin.store.models.dep_token import CursorKind, DEPToken, TokenStatus
from pippin.store.models.device import AppleStatus, Device, ProfileStatus
from pippin.store.models.device_state_count import DeviceStateCount
from pippin.store.models.directory_user import DirectoryUser
from pippin.store.models.enrollment import Enrollment, EnrollmentStatus
from pippin.store.models.enrollment_challenge import EnrollmentChallenge
from pippin.store.models.enrollment_link import EnrollmentLink
from pippin.store.models.enrollment_web_state import EnrollmentWebState
from pippin.store.models.issued_certificate import IssuedCertificate
from pippin.store.models.master_key import MASTER_KEY_CHECK_ID, MasterKeyCheck, SigningKey
from pippin.store.models.pki_authority import PKI_AUTHORITY_ID, PKIAuthority
from pippin.store.models.push_certificate import PUSH_CERTIFICATE_ID, PushCertificate
from pippin.store.models.push_delivery import PushDelivery, PushResult
from pippin.store.models.push_vendor_certificate import PUSH_VENDOR_CERTIFICATE_ID, PushVendorCertificate
from pippin.store.models.setup_command import SetupCommand, SetupCommandKind, SetupRelease
from pippin.store.models.sign_in_throttle import SignInThrottle, ThrottleScope
from pippin.store.models.sync_run import SyncKind, SyncOutcome, SyncRun, SyncTrigger
from pippin.store.models.webhook_event import WebhookEvent, WebhookEventStatus

__all__ = [
    "MASTER_KEY_CHECK_ID",
    "MAX_STORED_INTEGER",
    "PKI_AUTHORITY_ID",
    "PUSH_CERTIFICATE_ID",
    "PUSH_VENDOR_CERTIFICATE_ID",
    "WAITING",
    "WAITING_SQL",
    "APITokenScope",
    "AdminAPIToken",
    "AdminRole",
    "AdminSession",
    "AdminUser",
    "AppleStatus",
    "ApprovalStatus",
    "AssignmentStatus",
    "AuditEvent",
    "Base",
    "CheckinMessage",
    "Command",
    "CommandApproval",
    "CommandApprovalTarget",
    "CommandStatus",
    "CursorKind",
    "DEPProfile",
    "DEPToken",
    "Device",
    "DeviceStateCount",
    "DirectoryUser",
    "Enrollment",
    "EnrollmentChallenge",
    "EnrollmentLink",
    "EnrollmentStatus",
    "EnrollmentWebState",
    "IssuedCertificate",
    "MasterKeyCheck",
    "PKIAuthority",
    "ProfileDefinition",
    "ProfileStatus",
    "PushCertificate",
    "PushDelivery",
    "PushResult",
    "PushVendorCertificate",
    "SetupCommand",
    "SetupCommandKind",
    "SetupRelease",
    "SignInThrottle",
    "SigningKey",
    "SyncKind",
    "SyncOutcome",
    "SyncRun",
    "SyncTrigger",
    "ThrottleScope",
    "TokenDefaultProfile",
    "TokenStatus",
    "UTCDateTime",
    "UserAffinity",
    "WebhookEvent",
    "WebhookEventStatus",
    "utcnow",
    "waiting_clause",
]
