"""The command queue with a long history: a device's next command with 1,000,000 finished commands in the table,
and what a pruning pass leaves.

1. next command: ``mdm/connect.py``'s ``next_command_query`` timed for a device with a few waiting commands and for
   one with none, first with no history at all, then with ``--finished`` finished commands spread over every
   device (written by COPY on PostgreSQL, executemany on SQLite), as median and 95th percentile per query and as
   the ratio of the two runs (the query reads the partial index of waiting commands: the ratio should stay near 1);
2. pruning: ``mdm/command_upkeep.py``'s ``prune_commands`` run once with ``PIPPIN_COMMAND_RETENTION`` (30 days) over
   a history whose ends are spread over ``--history-days``; its time, rows deleted per second, and the rows per
   device before and after (the waiting commands stay);
3. expiry: ``expire_commands`` over waiting commands past their expiry, timed the same way;
4. acknowledged: ``--ack-devices`` devices enrolled the way iPhones enroll (an identity issued by Pippin's own SCEP
   CA against a challenge, then signed Authenticate and TokenUpdate check-ins), DeviceInformation queued to all of
   them in one bulk batch, and the time until every one is acknowledged, each device sending signed
   (``Mdm-Signature``) Idle and Acknowledged reports to the ServerURL, one device after another, in this process
   (the server is the real ASGI app, over Starlette's test client: no network, no push).

SQLite (a file in a temporary directory) by default; a PostgreSQL URL gets a private schema, dropped at the end.
Both tables are ANALYZEd after the history is written, as a database in service would be. Prints a line per stage
and, last, one JSON line with every figure. Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import base64
import json
import plistlib
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine, func, insert, select
from starlette.testclient import TestClient
from world import private_schema

from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.mdm.command_queue import QueuedCommand, enqueue_bulk
from pippin.mdm.command_upkeep import expire_commands, prune_commands
from pippin.mdm.connect import next_command_query
from pippin.pki.authority import ensure_authority
from pippin.pki.challenges import EnrollmentBinding, issue_challenge, redeem_challenge
from pippin.pki.issued import issue_device_certificate
from pippin.server.app import create_server
from pippin.store.db import SessionFactory, create_db_engine, create_session_factory, read_transaction, transaction
from pippin.store.migrate import upgrade_to_head
from pippin.store.models import (
    PUSH_CERTIFICATE_ID,
    Command,
    CommandStatus,
    Enrollment,
    EnrollmentStatus,
    PushCertificate,
)

NOW = datetime.now(UTC).replace(microsecond=0)
CHUNK = 20_000
COLUMNS = (
    "command_uuid", "udid", "request_type", "priority", "status", "created_at", "expires_at", "finished_at",
    "body_encrypted", "deliveries", "not_now_count",
)  # fmt: skip
#: A sealed DeviceInformation command is a few hundred bytes: the history's rows are that size, like real ones.
BODY = bytes(random.Random(1).randbytes(400))


def udid_of(index: int) -> str:
    return f"BENCH{index:08d}-000A1B2C3D4E5F60"


def enroll(factory: SessionFactory, devices: int) -> None:
    rows = [
        {
            "udid": udid_of(n),
            "status": EnrollmentStatus.enrolled,
            "first_contact_at": NOW,
            "enrolled_at": NOW,
            "last_seen_at": NOW,
            "push_token": f"{n:064x}",
            "push_magic": f"MAGIC-{n}",
        }
        for n in range(devices)
    ]
    with transaction(factory) as session:
        session.execute(insert(Enrollment), rows)


def waiting(factory: SessionFactory, *, devices: int, past_expiry: int = 0) -> None:
    """Three waiting commands for device 0 (the one timed) and one for each of a hundred others; or, given
    ``past_expiry``, that many spread over the fleet and already past their expiry (for the expiry stage)."""
    rows: list[tuple[str, str, str]] = []
    if not past_expiry:
        rows += [(udid_of(0), f"wait-0-{k}", status) for k, status in enumerate(("queued", "sent", "not_now"))]
        rows += [(udid_of(n), f"wait-{n}", "queued") for n in range(2, min(devices, 102))]
    late = [(udid_of(n % devices), f"late-{n}", "queued") for n in range(past_expiry)]
    values = [
        {
            "command_uuid": name,
            "udid": udid,
            "request_type": "DeviceInformation",
            "priority": 0,
            "status": CommandStatus(status),
            "created_at": NOW - timedelta(hours=1),
            "expires_at": NOW + timedelta(days=30) if not name.startswith("late") else NOW - timedelta(minutes=1),
            "body_encrypted": BODY,
            "deliveries": 1 if status != "queued" else 0,
            "not_now_count": 0,
        }
        for udid, name, status in rows + late
    ]
    for start in range(0, len(values), CHUNK):
        with transaction(factory) as session:
            session.execute(insert(Command), values[start : start + CHUNK])


def history_rows(finished: int, devices: int, days: int) -> Iterator[tuple[Any, ...]]:
    """Finished commands, device by device in turn (device 1 gets its share; device 0 too), ending uniformly over
    the last ``days`` days. Naive UTC, as ``UTCDateTime`` stores them."""
    rng = random.Random(7)
    base = NOW.replace(tzinfo=None)
    for n in range(finished):
        ended = base - timedelta(seconds=rng.randrange(days * 86_400))
        status = "acknowledged" if n % 10 else "error"
        yield (f"done-{n}", udid_of(n % devices), "DeviceInformation", 0, status, ended - timedelta(minutes=5),
               ended + timedelta(days=30), ended, BODY, 1, 0)  # fmt: skip


def write_history(engine: Engine, finished: int, devices: int, days: int) -> float:
    """Write the history fast: COPY on PostgreSQL, executemany in chunks on SQLite; the seconds it took."""
    started = time.perf_counter()
    rows = history_rows(finished, devices, days)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "postgresql":
            with cursor.copy(f"COPY commands ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            sql = f"INSERT INTO commands ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"  # noqa: S608
            chunk: list[tuple[Any, ...]] = []
            for row in rows:
                # SQLite's DateTime as SQLAlchemy writes it.
                chunk.append(tuple(v.isoformat(sep=" ", timespec="microseconds") if isinstance(v, datetime) else v
                                   for v in row))  # fmt: skip
                if len(chunk) >= CHUNK:
                    cursor.executemany(sql, chunk)
                    chunk = []
            if chunk:
                cursor.executemany(sql, chunk)
        raw.commit()
    finally:
        raw.close()
    return time.perf_counter() - started


def analyze(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")


def time_next_command(factory: SessionFactory, udid: str, repeat: int) -> dict[str, float]:
    """Median and 95th percentile, in microseconds, of the next-command query for ``udid``, on one session."""
    times: list[float] = []
    with read_transaction(factory) as session:
        for _ in range(max(repeat // 10, 10)):  # warm: statement cache, pages in memory
            session.scalars(next_command_query(udid=udid)).first()
        for _ in range(repeat):
            started = time.perf_counter()
            session.scalars(next_command_query(udid=udid)).first()
            times.append(time.perf_counter() - started)
    times.sort()
    return {"median_us": statistics.median(times) * 1e6, "p95_us": times[int(len(times) * 0.95)] * 1e6}


def rows_per_device(factory: SessionFactory, devices: int) -> dict[str, float]:
    with read_transaction(factory) as session:
        total = session.scalar(select(func.count()).select_from(Command)) or 0
        counts = select(func.count().label("n")).select_from(Command).group_by(Command.udid).subquery()
        most = session.scalar(select(func.max(counts.c.n)))
    return {"rows": int(total), "per_device": total / devices, "max_per_device": int(most or 0)}


TOPIC = "com.apple.mgmt.External.2b7a4a3e-1c11-4c8e-8a63-0123456789ab"
CHECKIN = {"Content-Type": "application/x-apple-aspen-mdm-checkin"}
INFO = QueuedCommand("DeviceInformation", {"RequestType": "DeviceInformation", "Queries": ["DeviceName", "OSVersion"]})


class Device:
    """One device with an identity issued by Pippin's SCEP CA, signing its bodies as iOS does."""

    def __init__(self, udid: str, key: rsa.RSAPrivateKey, certificate: x509.Certificate) -> None:
        self.udid, self.key, self.certificate = udid, key, certificate

    def put(self, client: TestClient, path: str, document: dict[str, Any]) -> bytes:
        body = plistlib.dumps(document)
        signature = (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(body)
            .add_signer(self.certificate, self.key, hashes.SHA256())
            .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary])
        )
        headers = {**CHECKIN, "Mdm-Signature": base64.b64encode(signature).decode()}
        answer = client.put(f"/mdm/{path}", content=body, headers=headers)
        if answer.status_code != 200:
            raise SystemExit(f"{path} answered {answer.status_code}: {answer.text[:200]}")
        return answer.content


def issue_devices(factory: SessionFactory, box: SecretBox, count: int) -> list[Device]:
    """``count`` identities from Pippin's SCEP CA, each against its own challenge, as SCEP would issue them (one key
    shared: its generation is not what is measured)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    devices = []
    with transaction(factory) as session:
        session.merge(PushCertificate(id=PUSH_CERTIFICATE_ID, topic=TOPIC))
        authority = ensure_authority(
            session, box=box, generate_key=lambda: rsa.generate_private_key(65537, 2048), now=NOW
        )
        for n in range(count):
            udid = f"ACK{n:08d}-0000000000000000"
            challenge = issue_challenge(
                session,
                binding=EnrollmentBinding(serial_number=f"ACK{n:06d}"),
                uses=1,
                expires_at=NOW + timedelta(hours=1),
            )
            row = redeem_challenge(session, challenge, now=NOW)
            csr = (
                x509.CertificateSigningRequestBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, udid)]))
                .sign(key, hashes.SHA256())
            )
            certificate, _ = issue_device_certificate(
                session, csr, authority=authority, challenge_id=row.id, now=NOW, valid_days=30
            )
            devices.append(Device(udid, key, certificate))
    return devices


def acknowledge_stage(
    client: TestClient, factory: SessionFactory, box: SecretBox, settings: Settings, count: int
) -> dict[str, float]:
    devices = issue_devices(factory, box, count)
    started = time.perf_counter()
    for n, device in enumerate(devices):
        device.put(client, "checkin", {"MessageType": "Authenticate", "UDID": device.udid, "Topic": TOPIC,
                                       "SerialNumber": f"ACK{n:06d}", "OSVersion": "18.1", "BuildVersion": "22B83",
                                       "ProductName": "iPhone16,2"})  # fmt: skip
        device.put(client, "checkin", {"MessageType": "TokenUpdate", "UDID": device.udid, "Topic": TOPIC,
                                       "Token": bytes.fromhex(f"{n:064x}"), "PushMagic": f"MAGIC-{n}"})  # fmt: skip
    enrolled = time.perf_counter() - started
    with transaction(factory) as session:
        report = enqueue_bulk(
            session, udids=[d.udid for d in devices], queued=INFO, box=box, settings=settings, now=NOW, actor=None
        )
    if len(report.queued) != count:
        raise SystemExit(f"only {len(report.queued)} of {count} devices got the command")
    started = time.perf_counter()
    for device in devices:
        command = plistlib.loads(device.put(client, "connect", {"Status": "Idle", "UDID": device.udid}))
        answer = {"Status": "Acknowledged", "UDID": device.udid, "CommandUUID": command["CommandUUID"],
                  "QueryResponses": {"DeviceName": "Bench iPhone", "OSVersion": "18.1"}}  # fmt: skip
        if device.put(client, "connect", answer) != b"":
            raise SystemExit("a device was handed a second command")
    acknowledged = time.perf_counter() - started
    with read_transaction(factory) as session:
        done = session.scalar(
            select(func.count())
            .select_from(Command)
            .where(Command.udid.like("ACK%"), Command.status == CommandStatus.acknowledged)
        )
    if done != count:
        raise SystemExit(f"{done} of {count} commands acknowledged")
    return {"enroll_s": enrolled, "acknowledged_s": acknowledged, "per_device_ms": acknowledged / count * 1000}


def run(args: argparse.Namespace, url: str, work: Path) -> dict[str, Any]:
    engine = create_db_engine(url)
    upgrade_to_head(engine)
    factory = create_session_factory(engine)
    settings = Settings(data_dir=work / "data", database_url=url, secret_key=Fernet.generate_key().decode())
    box = SecretBox.from_settings(settings)
    # Built first: the server registers the master key, before anything sealed is written.
    server = create_server(settings, engine=engine)
    database = engine.dialect.name
    try:
        enroll(factory, args.devices)
        waiting(factory, devices=args.devices)
        analyze(engine)
        empty = {
            "waiting": time_next_command(factory, udid_of(0), args.repeat),
            "idle": time_next_command(factory, udid_of(1), args.repeat),
        }
        print(
            f"[{database}] next command, empty history: {empty['waiting']['median_us']:.0f} µs median "
            f"(p95 {empty['waiting']['p95_us']:.0f}); "
            f"a device with nothing waiting {empty['idle']['median_us']:.0f} µs",
            flush=True,
        )
        written = write_history(engine, args.finished, args.devices, args.history_days)
        print(
            f"[{database}] {args.finished:,} finished commands written in {written:.1f} s "
            f"({args.finished / written:,.0f} rows/s)",
            flush=True,
        )
        analyze(engine)
        full = {
            "waiting": time_next_command(factory, udid_of(0), args.repeat),
            "idle": time_next_command(factory, udid_of(1), args.repeat),
        }
        ratio = full["waiting"]["median_us"] / empty["waiting"]["median_us"]
        idle_ratio = full["idle"]["median_us"] / empty["idle"]["median_us"]
        print(
            f"[{database}] next command, {args.finished:,} finished: {full['waiting']['median_us']:.0f} µs median "
            f"(p95 {full['waiting']['p95_us']:.0f}), {ratio:.2f}x the empty history; a device with nothing waiting "
            f"and {args.finished // args.devices:,} finished {full['idle']['median_us']:.0f} µs ({idle_ratio:.2f}x)",
            flush=True,
        )
        before = rows_per_device(factory, args.devices)
        started = time.perf_counter()
        pruned = prune_commands(factory, settings=settings, clock=lambda: NOW)
        prune_seconds = time.perf_counter() - started
        after = rows_per_device(factory, args.devices)
        print(
            f"[{database}] pruned {pruned:,} finished commands (retention {settings.command_retention.days} days) in "
            f"{prune_seconds:.1f} s ({pruned / max(prune_seconds, 1e-9):,.0f} rows/s); rows per device "
            f"{before['per_device']:.0f} -> {after['per_device']:.0f} (at most {after['max_per_device']})",
            flush=True,
        )
        waiting(factory, devices=args.devices, past_expiry=args.expiring)
        started = time.perf_counter()
        expired = expire_commands(factory, clock=lambda: NOW)
        expire_seconds = time.perf_counter() - started
        print(
            f"[{database}] expired {expired:,} waiting commands in {expire_seconds:.2f} s "
            f"({expired / max(expire_seconds, 1e-9):,.0f} rows/s)",
            flush=True,
        )
        with TestClient(server) as client:
            acked = acknowledge_stage(client, factory, box, settings, args.ack_devices)
        print(
            f"[{database}] {args.ack_devices} devices enrolled (Authenticate, TokenUpdate) "
            f"in {acked['enroll_s']:.1f} s; "
            f"DeviceInformation acknowledged by all in {acked['acknowledged_s']:.2f} s "
            f"({acked['per_device_ms']:.1f} ms per device: a signed Idle, then a signed answer)",
            flush=True,
        )
        return {
            "database": database,
            "devices": args.devices,
            "finished": args.finished,
            "history_write_s": round(written, 2),
            "next_command_empty_us": round(empty["waiting"]["median_us"], 1),
            "next_command_full_us": round(full["waiting"]["median_us"], 1),
            "next_command_full_p95_us": round(full["waiting"]["p95_us"], 1),
            "next_command_ratio": round(ratio, 3),
            "next_command_idle_empty_us": round(empty["idle"]["median_us"], 1),
            "next_command_idle_full_us": round(full["idle"]["median_us"], 1),
            "next_command_idle_ratio": round(idle_ratio, 3),
            "pruned": pruned,
            "prune_s": round(prune_seconds, 2),
            "rows_per_device_before": round(before["per_device"], 1),
            "rows_per_device_after": round(after["per_device"], 1),
            "max_rows_per_device_after": after["max_per_device"],
            "expired": expired,
            "expire_s": round(expire_seconds, 3),
            "ack_devices": args.ack_devices,
            "ack_all_s": round(acked["acknowledged_s"], 2),
            "ack_per_device_ms": round(acked["per_device_ms"], 2),
        }
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--finished", type=int, default=1_000_000, help="finished commands (default 1,000,000)")
    parser.add_argument("--devices", type=int, default=1000, help="enrolled devices they belong to (default 1000)")
    parser.add_argument("--history-days", type=int, default=60, help="the history's ends spread over (default 60)")
    parser.add_argument("--expiring", type=int, default=10_000, help="waiting commands past expiry (default 10,000)")
    parser.add_argument("--repeat", type=int, default=2000, help="next-command queries timed per case")
    parser.add_argument("--ack-devices", type=int, default=200, help="devices acknowledging DeviceInformation")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL; default a temporary SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pippin-bench-commands-") as temporary:
        work = Path(temporary)
        url = args.database_url or f"sqlite:///{work / 'pippin.db'}"
        schema = plain = None
        if url.startswith("postgresql"):
            url, schema, plain = private_schema(url)
        try:
            figures = run(args, url, work)
        finally:
            if schema and plain:
                import psycopg

                with psycopg.connect(plain, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
