"""Business Manager's HTML pages: they render, and their forms do what the JSON portal does."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from pippin.sim.models import SimDevice, SimMDMServer
from tests.sim.portal_client import certificate_pem, create_devices, create_server, private_key_pem
from tests.simulator import RunningSimulator


def test_pages_render_as_html(sim: RunningSimulator) -> None:
    create_server(sim.portal, "Berlin <MDM>")
    create_devices(sim.portal, 3)
    for path in ("/portal/", "/portal/pages/servers", "/portal/pages/devices", "/portal/pages/terms"):
        response = sim.portal.get(path)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
        assert "<main>" in response.text and "<nav" in response.text
    servers_page = sim.portal.get("/portal/pages/servers").text
    assert "Berlin &lt;MDM&gt;" in servers_page and "Berlin <MDM>" not in servers_page
    assert 'href="/portal/mdm-servers/' in servers_page and "/token" in servers_page


def test_add_server_form_uploads_the_pem_and_redirects(sim: RunningSimulator) -> None:
    response = sim.portal.post(
        "/portal/pages/servers",
        data={"name": "Form MDM", "admin_apple_id": "it@example.com"},
        files={"public_key": ("depserver.pem", certificate_pem().encode(), "application/x-pem-file")},
    )
    assert response.status_code == 303 and response.headers["location"].startswith("/portal/pages/servers?notice=")
    page = sim.portal.get(response.headers["location"]).text
    assert "Form MDM" in page and "Added Form MDM" in page


def test_a_private_key_upload_shows_an_error_page_and_stores_nothing(sim: RunningSimulator) -> None:
    response = sim.portal.post(
        "/portal/pages/servers",
        data={"name": "Bad", "admin_apple_id": "it@example.com"},
        files={"public_key": ("key.pem", private_key_pem(), "application/x-pem-file")},
    )
    assert response.status_code == 400 and "private key" in response.text
    assert "PRIVATE KEY-----" not in response.text
    with sim.state.transaction() as session:
        assert session.scalar(select(func.count()).select_from(SimMDMServer)) == 0


def test_assignment_forms_by_serial_order_and_csv(sim: RunningSimulator) -> None:
    server = create_server(sim.portal)
    by_serial = create_devices(sim.portal, 2)
    by_order = create_devices(sim.portal, 2, order_number="W200000001")
    by_csv = create_devices(sim.portal, 2)
    forms = [
        ({"server_uuid": server, "how": "serials", "serials": "\n".join(by_serial)}, None),
        ({"server_uuid": server, "how": "orders", "order_numbers": "W200000001"}, None),
        (
            {"server_uuid": server, "how": "csv"},
            {"csv": ("devices.csv", ("serial_number\r\n" + "\r\n".join(by_csv)).encode(), "text/csv")},
        ),
    ]
    for data, files in forms:
        response = sim.portal.post("/portal/pages/assignments", data=data, files=files)
        assert response.status_code == 303, response.text
        assert "Assigned+2" in response.headers["location"]
    with sim.state.transaction() as session:
        assigned = set(session.scalars(select(SimDevice.serial_number).where(SimDevice.server_id.is_not(None))))
    assert assigned == {*by_serial, *by_order, *by_csv}
    bad = sim.portal.post(
        "/portal/pages/assignments", data={"server_uuid": server, "how": "serials", "serials": "NOPE1"}
    )
    assert bad.status_code == 400 and "NOPE1" in bad.text
    removed = sim.portal.post("/portal/pages/assignments/remove", data={"serials": by_serial[0]})
    assert removed.status_code == 303 and "Unassigned+1" in removed.headers["location"]


def test_device_search_and_add_devices_form(sim: RunningSimulator) -> None:
    (serial,) = create_devices(sim.portal, 1)
    assert serial in sim.portal.get("/portal/pages/devices", params={"serial_number": serial}).text
    response = sim.portal.post("/portal/pages/devices", data={"count": "5", "family": "iPhone"})
    assert response.status_code == 303
    page = sim.portal.get("/portal/pages/devices").text
    assert re.search(r"6 devices match", page)
    assert sim.portal.post("/portal/pages/devices", data={"count": "many"}).status_code == 400


def test_terms_form_publishes_and_accepts(sim: RunningSimulator) -> None:
    assert sim.portal.post("/portal/pages/terms", data={"action": "publish"}).status_code == 303
    assert sim.portal.get("/portal/terms").json() == {"terms_pending": True}
    assert "T_C_NOT_SIGNED" in sim.portal.get("/portal/").text
    assert sim.portal.post("/portal/pages/terms", data={"action": "accept"}).status_code == 303
    assert sim.portal.get("/portal/terms").json() == {"terms_pending": False}
    assert sim.portal.post("/portal/pages/terms", data={"action": "drop tables"}).status_code == 400
