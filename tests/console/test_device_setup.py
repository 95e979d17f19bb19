"""The console's device page shows a device waiting in Setup Assistant, and why it is stuck, escaped."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from pippin.server.resources import ServerResources
from pippin.store.db import transaction
from pippin.store.models import Device, Enrollment, EnrollmentStatus, SetupRelease


def test_the_device_page_shows_why_a_device_is_stuck(ann: TestClient, resources: ServerResources) -> None:
    started = resources.clock() - resources.settings.setup_stuck_after - timedelta(minutes=5)
    with transaction(resources.session_factory) as session:
        device = Device(serial_number="F5JM992LF193", apple_record={}, apple_status="assigned", profile_status="pushed")
        session.add(device)
        session.flush()
        session.add(
            Enrollment(
                udid="UDID-STUCK",
                serial_number="F5JM992LF193",
                device_id=device.id,
                status=EnrollmentStatus.enrolled,
                identity_fingerprint="a" * 64,
                awaiting_configuration=True,
            )
        )
        session.flush()
        steps = [{"uuid": "C-1", "request_type": "InstallProfile", "label": "<script>alert(1)</script>"}]
        session.add(SetupRelease(udid="UDID-STUCK", identity_fingerprint="a" * 64, started_at=started, steps=steps))
    page = ann.get("/console/devices/F5JM992LF193")
    assert page.status_code == 200
    assert "waiting for DeviceConfigured" in page.text and "Setup problem" in page.text
    assert "Still in Setup Assistant: step 1 (InstallProfile &lt;script&gt;" in page.text
    assert "<script>alert(1)</script>" not in page.text
