"""Pippin's ORM classes, one concept per module, re-exported here."""

from pippin.store.models.api_token import AdminAPIToken
from pippin.store.models.base import Base, UTCDateTime, utcnow
from pippin.store.models.dep_token import CursorKind, DEPToken, TokenStatus
from pippin.store.models.device import Device, EnrollmentState
from pippin.store.models.profile import (
    AssignmentStatus,
    EnrollmentProfile,
    ProfileDefinition,
    TokenDefaultProfile,
    UserAffinity,
)
from pippin.store.models.sync_run import SyncKind, SyncOutcome, SyncRun

__all__ = [
    "AdminAPIToken",
    "AssignmentStatus",
    "Base",
    "CursorKind",
    "DEPToken",
    "Device",
    "EnrollmentProfile",
    "EnrollmentState",
    "ProfileDefinition",
    "SyncKind",
    "SyncOutcome",
    "SyncRun",
    "TokenDefaultProfile",
    "TokenStatus",
    "UTCDateTime",
    "UserAffinity",
    "utcnow",
]
