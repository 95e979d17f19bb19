"""Whether Pippin can wake a device: an enrollment whose current push token APNs refused for good is unreachable.

The push domain remembers the token APNs refused (``push_deliveries.refused_token``, ``store/models/push_delivery.py``)
and the device half keeps the token the device last sent (``enrollments.push_token``); the device is unreachable
while the two are equal, and reachable again, with nothing to clear, once a TokenUpdate brings another token (as
``push/device_status.py`` reads one device). These are the same rule as SQL, for the inventory's list: a join on
the push row's primary key, so a page costs the same with or without it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, case

from pippin.store.models import Enrollment, PushDelivery


def refused_token_condition() -> ColumnElement[bool]:
    """The join condition of an enrollment to its push row when APNs refused the token it has now."""
    return and_(
        PushDelivery.udid == Enrollment.udid,
        PushDelivery.refused_token.is_not(None),
        PushDelivery.refused_token == Enrollment.push_token,
    )


def unreachable_columns() -> tuple[ColumnElement[Any], ...]:
    """``unreachable``, ``unreachable_reason`` (APNs's reason) and ``unreachable_since``, for a query that
    outer-joins :class:`PushDelivery` on the enrollment's UDID."""
    refused = and_(PushDelivery.refused_token.is_not(None), PushDelivery.refused_token == Enrollment.push_token)
    return (
        case((refused, True), else_=False).label("unreachable"),
        case((refused, PushDelivery.token_refused_reason), else_=None).label("unreachable_reason"),
        case((refused, PushDelivery.token_refused_at), else_=None).label("unreachable_since"),
    )
