"""Seed step 1 end to end, as an admin does it, against the simulated Apple over HTTP and HTTP/2 only.

A test MDM vendor certificate from the simulated Push Certificates Portal is imported; `pippin push csr` writes the
signed request; the portal issues the push certificate; `pippin push upload-cert` takes it; a renewal at the
portal keeps the topic and is taken as a renewal, while a new certificate (a new topic) is refused; and a test
push made with the stored certificate reaches a device token waiting on the simulated APNs. On SQLite and
PostgreSQL, like every database test.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from pippin.cli.main import app
from pippin.config import Settings
from tests.cli.conftest import INJECTIONS, Pippin
from tests.simulator import RunningSimulator, run_simulator

APPLE_ID = "it-admin@example.com"


@pytest.fixture
def apple(tmp_path: Path) -> Iterator[RunningSimulator]:
    """The simulated Apple with its APNs, trusting the push certificates its portal issues."""
    with run_simulator(tmp_path / "sim", with_apns=True) as running:
        yield running


@pytest.fixture
def pippin(settings: Settings, apple: RunningSimulator) -> Pippin:
    """The CLI on this test's database, with the simulated APNs as Apple's (and its TLS CA trusted)."""
    assert settings.secret_key is not None and apple.apns is not None
    env = {
        "PIPPIN_DATA_DIR": str(settings.data_dir),
        "PIPPIN_DATABASE_URL": str(settings.database_url),
        "PIPPIN_SECRET_KEY": settings.secret_key.get_secret_value(),
        "PIPPIN_APNS_BASE_URL": apple.apns.url,
        "PIPPIN_APNS_CA_FILE": str(apple.apns.ca_path),
        "COLUMNS": "200",
    }

    def run(*args: str) -> Result:
        return CliRunner().invoke(app, list(args), env=env, obj=INJECTIONS)

    return run


def _ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def _portal_certificate(apple: RunningSimulator, request: Path, *, renew: str | None = None) -> dict[str, str]:
    """Upload the request at the simulated Push Certificates Portal (Create, or Renew the certificate ``renew``)."""
    path = "/portal/push/certificates" + (f"/{renew}/renew" if renew else "")
    answer = apple.portal.post(path, json={"apple_id": APPLE_ID, "request": request.read_text()})
    assert answer.status_code == 201, answer.text
    issued: dict[str, str] = answer.json()
    return issued


def test_request_sign_issue_upload_renew_and_push(pippin: Pippin, apple: RunningSimulator, tmp_path: Path) -> None:
    vendor = apple.portal.post("/portal/push/vendor-certificates", json={"vendor_name": "Pippin demo"})
    assert vendor.status_code == 201, vendor.text
    (tmp_path / "vendor.pem").write_text(vendor.json()["chain_pem"])
    (tmp_path / "vendor.key").write_text(vendor.json()["private_key_pem"])
    vendor_files = ("--certificate", str(tmp_path / "vendor.pem"), "--key", str(tmp_path / "vendor.key"))
    _ok(pippin("push", "vendor", "import", *vendor_files))

    _ok(pippin("push", "csr", "-o", str(tmp_path / "request.b64")))
    first = _portal_certificate(apple, tmp_path / "request.b64")
    (tmp_path / "push.pem").write_text(first["certificate_pem"])
    uploaded = _ok(pippin("push", "upload-cert", str(tmp_path / "push.pem"), "--apple-id", APPLE_ID))
    assert f"Activated the push certificate for topic {first['topic']}" in uploaded.output
    status = json.loads(_ok(pippin("push", "status", "--json")).stdout)
    assert (status["status"], status["topic"], status["apple_id"]) == ("active", first["topic"], APPLE_ID)
    assert status["days_left"] in (364, 365)

    # Renew at the portal with a new request: the same topic, taken as a renewal.
    _ok(pippin("push", "csr", "-o", str(tmp_path / "renewal.b64")))
    renewed = _portal_certificate(apple, tmp_path / "renewal.b64", renew=first["topic"])
    assert renewed["topic"] == first["topic"] and renewed["serial"] != first["serial"]
    (tmp_path / "renewed.pem").write_text(renewed["certificate_pem"])
    taken = _ok(pippin("push", "upload-cert", str(tmp_path / "renewed.pem"), "--apple-id", APPLE_ID))
    assert f"Renewed the push certificate for topic {first['topic']}" in taken.output
    fingerprint = json.loads(_ok(pippin("push", "status", "--json")).stdout)["fingerprint"]

    # "Create a Certificate" instead of Renew: a new topic, refused with the topic to renew, nothing changed.
    _ok(pippin("push", "csr", "-o", str(tmp_path / "mistake.b64")))
    other = _portal_certificate(apple, tmp_path / "mistake.b64")
    assert other["topic"] != first["topic"]
    (tmp_path / "other.pem").write_text(other["certificate_pem"])
    refused = pippin("push", "upload-cert", str(tmp_path / "other.pem"), "--apple-id", APPLE_ID)
    assert refused.exit_code == 4 and first["topic"] in refused.output, refused.output
    after = json.loads(_ok(pippin("push", "status", "--json")).stdout)
    assert (after["topic"], after["fingerprint"]) == (first["topic"], fingerprint)

    # A device's token on the simulated APNs, waiting; Pippin's test push reaches it.
    token = apple.portal.post("/apns/tokens", json={"topic": first["topic"]}).json()["token"]
    arrived: list[httpx.Response] = []
    waiter = threading.Thread(
        target=lambda: arrived.append(apple.portal.get(f"/apns/tokens/{token}/next", params={"timeout": 60}))
    )
    waiter.start()
    try:
        pushed = json.loads(_ok(pippin("push", "test", token, "--magic", "MAGIC-1", "--json")).stdout)
    finally:
        waiter.join(timeout=90)
    assert (pushed["result"], pushed["status"], pushed["topic"]) == ("delivered", 200, first["topic"])
    assert [(answer.status_code, answer.json()) for answer in arrived] == [(200, {"mdm": "MAGIC-1"})]

    # A token the device gave up: APNs answers 410 Unregistered, and Pippin says so.
    assert apple.portal.delete(f"/apns/tokens/{token}").status_code == 200
    gone = json.loads(_ok(pippin("push", "test", token, "--json")).stdout)
    assert (gone["status"], gone["reason"]) == (410, "Unregistered")
