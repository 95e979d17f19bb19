"""The Push Certificates Portal's pages: they list, upload, renew and link downloads like the JSON API."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import func, select

from pippin.sim.models import SimPushCertificate
from tests.sim.push_client import csr_der, get_vendor, signed_request
from tests.simulator import RunningSimulator

APPLE_ID = "pages@example.com"


def _count(sim: RunningSimulator) -> int:
    with sim.state.transaction() as session:
        return session.scalar(select(func.count()).select_from(SimPushCertificate)) or 0


def _file(request: str) -> dict[str, tuple[str, bytes, str]]:
    return {"request": ("PushCertificateRequest.txt", request.encode(), "text/plain")}


def test_upload_renew_and_download_through_the_pages(sim: RunningSimulator) -> None:
    empty = sim.portal.get("/portal/pages/push")
    assert empty.status_code == 200 and empty.headers["content-type"].startswith("text/html")
    assert 'name="apple_id"' in empty.text and "Push certificates" in empty.text
    vendor = get_vendor(sim.portal)

    created = sim.portal.post("/portal/pages/push", data={"apple_id": APPLE_ID}, files=_file(signed_request(vendor)))
    assert created.status_code == 303, created.text
    location = urlsplit(created.headers["location"])
    assert location.path == "/portal/pages/push" and parse_qs(location.query)["apple_id"] == [APPLE_ID]
    (certificate,) = sim.portal.get("/portal/push/certificates", params={"apple_id": APPLE_ID}).json()["certificates"]
    page = sim.portal.get(created.headers["location"]).text
    assert certificate["topic"] in page and "Created a push certificate" in page
    assert f"/portal/push/certificates/{certificate['serial']}/pem?apple_id=pages%40example.com" in page

    renewed = sim.portal.post(
        f"/portal/pages/push/{certificate['serial']}/renew",
        data={"apple_id": APPLE_ID},
        files=_file(signed_request(vendor)),
    )
    assert renewed.status_code == 303 and "kept" in parse_qs(urlsplit(renewed.headers["location"]).query)["notice"][0]
    listed = sim.portal.get("/portal/push/certificates", params={"apple_id": APPLE_ID}).json()["certificates"]
    assert [item["topic"] for item in listed] == [certificate["topic"]] * 2
    assert [item["status"] for item in listed] == ["active", "renewed"]
    assert "renewed" in sim.portal.get("/portal/pages/push", params={"apple_id": APPLE_ID}).text


def test_refusals_render_an_error_page_and_store_nothing(sim: RunningSimulator) -> None:
    vendor = get_vendor(sim.portal)
    bare = base64.b64encode(csr_der()).decode()
    cases = [
        ("/portal/pages/push", {"apple_id": APPLE_ID}, _file(bare), 400, "bare CSR"),
        ("/portal/pages/push", {"apple_id": APPLE_ID}, None, 400, "Choose the signed request"),
        ("/portal/pages/push", {"apple_id": "nobody"}, _file(signed_request(vendor)), 400, "Apple Account"),
        ("/portal/pages/push/abc/renew", {"apple_id": APPLE_ID}, _file(signed_request(vendor)), 404, "Apple ID"),
    ]
    for path, data, files, status, text in cases:
        response = sim.portal.post(path, data=data, files=files)
        assert response.status_code == status, (path, response.text)
        assert response.headers["content-type"].startswith("text/html") and text in response.text
        assert "Nothing was changed" in response.text
    binary = {"request": ("request.bin", b"bplist00\xff\x00\x01garbage", "application/octet-stream")}
    response = sim.portal.post("/portal/pages/push", data={"apple_id": APPLE_ID}, files=binary)
    assert response.status_code == 400 and "XML plist" in response.text
    assert sim.portal.get("/portal/pages/push", params={"apple_id": "not an id"}).status_code == 400
    assert _count(sim) == 0
