"""10,000 MDM pushes over HTTP/2 and TLS: pushes per second, and Pippin's CPU per push.

By default starts `pippin sim apple --apns-port PORT` as its own process (its simulated APNs speaks HTTP/2 over
TLS, and asks for the push certificate), registers one device token per push with the simulator
(``POST /apns/tokens`` ``{"topic": ...}`` answers ``{"token": ...}``), and then measures two stages:

1. client: Pippin's APNs client alone sends every push (one HTTP/2 connection, PIPPIN_APNS_MAX_IN_FLIGHT at once);
2. delivery: the same number of enrolled devices in a database, each asked for a push, and the push sender
   (claims, send after commit, outcomes written and counted) run until none is due.

The push certificate is issued the way an admin gets one: a test MDM vendor certificate from the simulated Push
Certificates Portal signs Pippin's request, and the portal issues the certificate (the simulated APNs trusts only
the portal's certificates). ``--apns-url`` and ``--ca-file`` point at an APNs already running instead (tokens are
then random hex, and the certificate is ``--cert``/``--key``, PEM). Pippin's CPU is this process's own
(``time.process_time``); the simulator's, which shares the machine, is read from ``/proc`` for the same span and
printed beside it. Prints a line per stage and, last, one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from world import free_port, private_schema

from pippin.config import Settings
from pippin.crypto.pem import fingerprint
from pippin.push.apns import APNsClient, Notification
from pippin.push.certificate import topic_of
from pippin.push.delivery import request_pushes, send_due_pushes
from pippin.push.identity import PushIdentity
from pippin.push.request import build_csr, build_signed_request
from pippin.store.db import create_db_engine, create_session_factory, transaction
from pippin.store.migrate import upgrade_to_head
from pippin.store.models import Enrollment, EnrollmentStatus, PushResult

REQUEST_CHUNK = 1000


def portal_identity(sim_url: str) -> PushIdentity:
    """A push certificate from the simulated Push Certificates Portal, for a request signed by its test vendor."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with httpx.Client(base_url=sim_url, timeout=60) as portal:
        vendor = portal.post("/portal/push/vendor-certificates", json={"vendor_name": "bench"})
        vendor.raise_for_status()
        vendor_key = serialization.load_pem_private_key(vendor.json()["private_key_pem"].encode(), password=None)
        assert isinstance(vendor_key, rsa.RSAPrivateKey)
        request = build_signed_request(build_csr(key), vendor_key=vendor_key, chain_pem=vendor.json()["chain_pem"])
        issued = portal.post(
            "/portal/push/certificates", json={"apple_id": "bench@example.com", "request": request.decode()}
        )
        issued.raise_for_status()
    certificate = x509.load_pem_x509_certificate(issued.json()["certificate_pem"].encode())
    return _identity(certificate, key.private_bytes(_PEM, serialization.PrivateFormat.PKCS8, _NO_ENCRYPTION))


def process_cpu_seconds(process: subprocess.Popen[bytes] | None) -> float:
    """User and system CPU the process has used so far (Linux ``/proc``); 0 without one."""
    if process is None:
        return 0.0
    fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_PEM = serialization.Encoding.PEM
_NO_ENCRYPTION = serialization.NoEncryption()


def _identity(certificate: x509.Certificate, key_pem: bytes) -> PushIdentity:
    return PushIdentity(
        topic=topic_of(certificate) or "",
        certificate_pem=certificate.public_bytes(_PEM),
        private_key_pem=key_pem,
        not_after=certificate.not_valid_after_utc,
        fingerprint=fingerprint(certificate),
    )


def identity_from_files(cert: Path, key: Path) -> PushIdentity:
    return _identity(x509.load_pem_x509_certificate(cert.read_bytes()), key.read_bytes())


def start_simulated_apns(data_dir: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    """`pippin sim apple` with its APNs; returns the process, its HTTP base URL and its APNs base URL."""
    port, apns_port = free_port(), free_port()
    pippin = Path(sys.executable).with_name("pippin")
    command = [str(pippin), "sim", "apple", "--port", str(port), "--apns-port", str(apns_port), "--data", str(data_dir)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the simulator exited before it served")
        try:
            if httpx.get(f"{base_url}/portal/terms", timeout=1).status_code == 200:
                return process, base_url, f"https://127.0.0.1:{apns_port}"
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit("the simulator did not start")


def register_tokens(sim_url: str, topic: str, count: int) -> list[str]:
    with httpx.Client(base_url=sim_url, timeout=30) as client:
        tokens = []
        for _ in range(count):
            answer = client.post("/apns/tokens", json={"topic": topic})
            answer.raise_for_status()
            tokens.append(str(answer.json()["token"]))
        return tokens


def bench_client(
    settings: Settings, identity: PushIdentity, tokens: list[str], simulator: subprocess.Popen[bytes] | None
) -> dict[str, Any]:
    expires = datetime.now(UTC) + settings.push_expiration
    notifications = [Notification(token, str(uuid.uuid4()), expires) for token in tokens]
    with APNsClient.from_settings(settings) as client:
        client.send(identity, notifications[0])  # the connection and TLS handshake, not measured
        cpu, wall, sim_cpu = time.process_time(), time.perf_counter(), process_cpu_seconds(simulator)
        outcomes = client.send_all(identity, notifications)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        sim_cpu = process_cpu_seconds(simulator) - sim_cpu
    results: dict[str, int] = {}
    for outcome in outcomes:
        results[outcome.result.value] = results.get(outcome.result.value, 0) + 1
    figures = {
        "pushes": len(notifications),
        "seconds": round(wall, 3),
        "pushes_per_second": round(len(notifications) / wall, 1),
        "cpu_us_per_push": round(cpu / len(notifications) * 1e6, 1),
        "simulator_cpu_us_per_push": round(sim_cpu / len(notifications) * 1e6, 1),
        "outcomes": results,
    }
    print(f"client:   {figures}", flush=True)
    return figures


def bench_delivery(
    settings: Settings,
    identity: PushIdentity,
    tokens: list[str],
    database_url: str | None,
    work: Path,
    simulator: subprocess.Popen[bytes] | None,
) -> dict[str, Any]:
    dropped_schema: tuple[str, str] | None = None
    if database_url:
        url, schema, plain = private_schema(database_url)
        dropped_schema = (schema, plain)
    else:
        url = f"sqlite:///{work / 'pippin.db'}"
    engine = create_db_engine(url)
    try:
        upgrade_to_head(engine)
        factory = create_session_factory(engine)
        now = datetime.now(UTC)
        udids = [f"BENCH-{index:08d}" for index in range(len(tokens))]
        with transaction(factory) as session:
            session.add_all(
                Enrollment(
                    udid=udid,
                    status=EnrollmentStatus.enrolled,
                    first_contact_at=now,
                    enrolled_at=now,
                    last_seen_at=now,
                    push_token=token,
                    push_magic=str(uuid.uuid4()).upper(),
                )
                for udid, token in zip(udids, tokens, strict=True)
            )
        cpu, wall, sim_cpu = time.process_time(), time.perf_counter(), process_cpu_seconds(simulator)
        for start in range(0, len(udids), REQUEST_CHUNK):
            with transaction(factory) as session:
                request_pushes(session, udids=udids[start : start + REQUEST_CHUNK], settings=settings)
        requested_wall = time.perf_counter() - wall
        with APNsClient.from_settings(settings) as client:
            report = send_due_pushes(
                factory,
                sender=client,
                load_identity=lambda _session: identity,
                record_certificate_refusal=lambda _session, _fingerprint, _reason: None,
                settings=settings,
            )
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        sim_cpu = process_cpu_seconds(simulator) - sim_cpu
    finally:
        engine.dispose()
        if dropped_schema is not None:
            import psycopg

            with psycopg.connect(dropped_schema[1], autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{dropped_schema[0]}" CASCADE')
    figures = {
        "database": "postgresql" if database_url else "sqlite",
        "pushes": report.sent,
        "request_seconds": round(requested_wall, 3),
        "seconds": round(wall, 3),
        "pushes_per_second": round(report.sent / wall, 1) if wall else 0,
        "cpu_us_per_push": round(cpu / max(1, report.sent) * 1e6, 1),
        "simulator_cpu_us_per_push": round(sim_cpu / max(1, report.sent) * 1e6, 1),
        "delivered": report.outcomes.get(PushResult.delivered, 0),
        "outcomes": {result.value: count for result, count in report.outcomes.items()},
    }
    print(f"delivery: {figures}", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pushes", type=int, default=10_000, help="pushes per stage (default 10,000)")
    parser.add_argument("--in-flight", type=int, default=20, help="PIPPIN_APNS_MAX_IN_FLIGHT (default 20)")
    parser.add_argument("--apns-url", default=None, help="an APNs already running (default: start the simulator's)")
    parser.add_argument("--ca-file", type=Path, default=None, help="PEM of the CA that signed the APNs certificate")
    parser.add_argument("--cert", type=Path, default=None, help="push certificate (PEM), with --apns-url")
    parser.add_argument("--key", type=Path, default=None, help="its private key (PEM, unencrypted)")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL; default a temporary SQLite file")
    parser.add_argument("--skip-delivery", action="store_true", help="measure the client alone")
    args = parser.parse_args()

    if args.apns_url and not (args.cert and args.key):
        parser.error("--apns-url needs the push certificate it accepts: --cert and --key")
    work = Path(tempfile.mkdtemp(prefix="pippin-bench-push-"))
    simulator: subprocess.Popen[bytes] | None = None
    try:
        if args.apns_url:
            apns_url, ca_file = args.apns_url, args.ca_file
            identity = identity_from_files(args.cert, args.key)
            tokens = [secrets.token_hex(32) for _ in range(args.pushes)]
        else:
            simulator, sim_url, apns_url = start_simulated_apns(work / "sim")
            identity = portal_identity(sim_url)
            ca_file = args.ca_file or work / "sim" / "apns-tls-ca.pem"  # the simulator's own TLS CA
            tokens = register_tokens(sim_url, identity.topic, args.pushes)
        settings = Settings(
            data_dir=work / "data",
            apns_base_url=apns_url,
            apns_ca_file=ca_file,
            apns_max_in_flight=args.in_flight,
        )
        figures: dict[str, Any] = {"pushes": args.pushes, "in_flight": args.in_flight, "apns": apns_url}
        figures["client"] = bench_client(settings, identity, tokens, simulator)
        if not args.skip_delivery:
            figures["delivery"] = bench_delivery(settings, identity, tokens, args.database_url, work, simulator)
    finally:
        if simulator is not None:
            simulator.terminate()
            simulator.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
