"""`pippin push`: the commands translate (exit codes, what is printed where, files written), the services decide."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from sqlalchemy import func, select

from pippin.config import Settings
from pippin.crypto.keys import generate_private_key
from pippin.store.db import create_db_engine, create_session_factory, transaction
from pippin.store.models import AuditEvent, PushCertificate
from tests.cli.conftest import Pippin
from tests.push.apple_ca import (
    authority,
    issue_push_certificate,
    issue_vendor_certificate,
    new_topic,
    pem,
    read_signed_request,
)

VENDOR_KEY = generate_private_key()


def _files(tmp_path: Path) -> tuple[Path, Path]:
    _, root, _, intermediate = authority()
    certificate, key = tmp_path / "mdm.pem", tmp_path / "mdm.key"
    certificate.write_bytes(pem(issue_vendor_certificate(VENDOR_KEY), intermediate, root))
    key.write_bytes(
        VENDOR_KEY.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    return certificate, key


def _state(settings: Settings) -> tuple[int, tuple[object, ...] | None]:
    engine = create_db_engine(str(settings.database_url))
    try:
        with transaction(create_session_factory(engine)) as session:
            events = session.scalar(select(func.count()).select_from(AuditEvent)) or 0
            row = session.get(PushCertificate, 1)
            columns = None if row is None else (row.pending_csr_pem, row.fingerprint, row.topic, row.apple_id)
            return events, columns
    finally:
        engine.dispose()


def test_vendor_import_csr_upload_and_status(pippin: Pippin, tmp_path: Path, settings: Settings) -> None:
    certificate, key = _files(tmp_path)
    imported = pippin("push", "vendor", "import", "--certificate", str(certificate), "--key", str(key))
    assert imported.exit_code == 0, imported.output
    assert "Imported the MDM vendor certificate" in imported.output and "2 chain certificates" in imported.output

    request = tmp_path / "request.b64"
    made = pippin("push", "csr", "-o", str(request))
    assert made.exit_code == 0, made.output
    assert "signed request for identity.apple.com" in made.output and "identity.apple.com" in made.output
    csr, _ = read_signed_request(request.read_bytes())

    again = pippin("push", "csr", "-o", str(request), "--force")
    assert again.exit_code == 0 and "the request made before (same key)" in again.output
    assert read_signed_request(request.read_bytes())[0] == csr

    topic = new_topic()
    issued = tmp_path / "MDM_Pippin_Certificate.pem"
    issued.write_bytes(pem(issue_push_certificate(csr.public_bytes(serialization.Encoding.PEM), topic=topic)))
    uploaded = pippin("push", "upload-cert", str(issued), "--apple-id", "admin@example.com")
    assert uploaded.exit_code == 0, uploaded.output
    assert f"Activated the push certificate for topic {topic}" in uploaded.output
    assert "renew it before then as admin@example.com" in uploaded.output

    shown = pippin("push", "status")
    assert shown.exit_code == 0 and "active" in shown.output
    assert topic in "".join(line.strip(" │") for line in shown.output.splitlines())  # folded, never cut
    assert "admin@example.com" in shown.output and "MDM Vendor: Example Org" in shown.output
    status = json.loads(pippin("push", "status", "--json").stdout)
    assert status["status"] == "active" and status["topic"] == topic and status["vendor"]["chain_length"] == 2
    for result in (imported, made, again, uploaded, shown):
        assert "PRIVATE KEY" not in result.output
    assert "PRIVATE KEY" not in request.read_text()


def test_without_a_vendor_the_plain_csr_is_printed_and_said_so(pippin: Pippin) -> None:
    made = pippin("push", "csr")
    assert made.exit_code == 0, made.output
    assert made.stdout.startswith("-----BEGIN CERTIFICATE REQUEST-----")
    assert "No MDM vendor certificate is imported, so this is the plain CSR" in made.stderr
    status = json.loads(pippin("push", "status", "--json").stdout)
    assert status["status"] == "awaiting_certificate" and status["pending_request_at"]


def test_an_existing_output_file_is_refused_before_any_key_is_made(
    pippin: Pippin, tmp_path: Path, settings: Settings
) -> None:
    target = tmp_path / "taken.csr"
    target.write_text("keep me")
    refused = pippin("push", "csr", "-o", str(target))
    assert refused.exit_code == 4 and "already exists" in refused.output
    assert target.read_text() == "keep me" and _state(settings) == (0, None)


def test_wrong_files_exit_2_with_what_they_are_and_change_nothing(
    pippin: Pippin, tmp_path: Path, settings: Settings
) -> None:
    assert pippin("push", "csr").exit_code == 0
    before = _state(settings)
    noise = tmp_path / "noise.p7m"
    noise.write_bytes(os.urandom(600))
    csr = tmp_path / "request.csr"
    csr.write_text(pippin("push", "csr").stdout)
    before = _state(settings)
    cases = {
        str(noise): "neither a PEM nor a DER certificate",
        str(csr): "a certificate signing request (CSR)",
        str(tmp_path / "missing.pem"): "Cannot read",
        str(tmp_path): "Cannot read",
    }
    for path, words in cases.items():
        result = pippin("push", "upload-cert", path, "--apple-id", "admin@example.com")
        assert result.exit_code == 2, (path, result.output)
        assert words in result.output, path
        assert "Traceback" not in result.output
        assert _state(settings) == before, path


def test_another_topic_at_renewal_exits_4_and_replace_topic_accepts_it(pippin: Pippin, tmp_path: Path) -> None:
    first = tmp_path / "first.pem"
    first.write_bytes(pem(issue_push_certificate(pippin("push", "csr").stdout)))
    assert pippin("push", "upload-cert", str(first), "--apple-id", "admin@example.com").exit_code == 0
    renewal = pippin("push", "csr")
    assert renewal.exit_code == 0 and "the request made before" not in renewal.output
    other = tmp_path / "other.pem"
    other.write_bytes(pem(issue_push_certificate(renewal.stdout)))
    refused = pippin("push", "upload-cert", str(other), "--apple-id", "admin@example.com")
    assert refused.exit_code == 4 and "orphans every enrolled device" in " ".join(refused.output.split())
    replaced = pippin("push", "upload-cert", str(other), "--apple-id", "admin@example.com", "--replace-topic", "--json")
    assert replaced.exit_code == 0, replaced.output
    assert "The push topic was replaced" in replaced.stderr
    assert json.loads(replaced.stdout)["topic_replaced"] is True
