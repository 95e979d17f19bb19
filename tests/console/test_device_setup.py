"""The console's device page shows a device waiting in Setup Assistant, and why it is stuck, escaped."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from pippin.server.resources import ServerResources
from pippin.store.db import transaction
from tests.mdm.enrollment_setup import stuck_in_setup_assistant


def test_the_device_page_shows_why_a_device_is_stuck(ann: TestClient, resources: ServerResources) -> None:
    started = resources.clock() - resources.settings.setup_stuck_after - timedelta(minutes=5)
    steps = [{"uuid": "C-1", "request_type": "InstallProfile", "label": "<script>alert(1)</script>"}]
    with transaction(resources.session_factory) as session:
        stuck_in_setup_assistant(session, started=started, steps=steps)
    page = ann.get("/console/devices/F5JM992LF193")
    assert page.status_code == 200
    assert "waiting for DeviceConfigured" in page.text and "Setup problem" in page.text
    assert "Still in Setup Assistant: step 1 (InstallProfile &lt;script&gt;" in page.text
    assert "<script>alert(1)</script>" not in page.text
