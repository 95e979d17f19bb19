"""Push speed of the simulated APNs: pushes per second over one HTTP/2 connection, and delivery to waiting devices.

Runs `pippin sim apple` as its own process with a push CA made here (RSA-2048 push certificate, as Apple issues),
then, over the network only:
1. registers TOKENS device tokens (``POST /apns/tokens``);
2. pushes one at a time over one HTTP/2 connection, then with 100 in flight on the same connection; beside it the
   rate of pushes refused at once (``400 BadDeviceToken``), the cost of HTTP/2 and TLS alone;
3. starts DEVICES long polls (``GET /apns/tokens/{token}/next``), pushes once to each and times until every
   device has its notification.
Prints a line per stage and, last, one JSON line with every figure and the simulator's ``/apns/stats``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

BODY = b'{"mdm":"00000000-0000-0000-0000-000000000000"}'
FOREVER = "4102444800"  # apns-expiration in 2100: stored if the device is offline


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def push_credentials(work: Path) -> tuple[Path, Path, Path, str]:
    """A push CA (file for --apns-push-ca) and an RSA-2048 push certificate with its key; and its topic."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bench Push CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    topic = f"com.apple.mgmt.External.{uuid.uuid4()}"
    subject = x509.Name([x509.NameAttribute(NameOID.USER_ID, topic), x509.NameAttribute(NameOID.COMMON_NAME, "APSP")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(ca_key, hashes.SHA256())
    )
    paths = work / "push-ca.pem", work / "push.pem", work / "push.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return *paths, topic


def start_simulator(work: Path, port: int, apns_port: int, push_ca: Path) -> subprocess.Popen[bytes]:
    pippin = Path(sys.executable).with_name("pippin")
    command = [str(pippin), "sim", "apple", "--port", str(port), "--apns-port", str(apns_port)]
    command += ["--apns-push-ca", str(push_ca), "--data", str(work / "sim")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the simulator exited before it served")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/apns/stats", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit("the simulator did not start")


async def pushes(client: httpx.AsyncClient, tokens: list[str], in_flight: int) -> float:
    """Pushes per second, ``in_flight`` at a time on the client's one connection."""
    gate = asyncio.Semaphore(in_flight)

    async def one(token: str) -> int:
        async with gate:
            answer = await client.post(f"/3/device/{token}", content=BODY, headers={"apns-expiration": FOREVER})
            return answer.status_code

    started = time.perf_counter()
    statuses = await asyncio.gather(*(one(token) for token in tokens))
    elapsed = time.perf_counter() - started
    if len(set(statuses)) != 1:
        raise SystemExit(f"mixed answers: {sorted(set(statuses))}")
    return len(tokens) / elapsed


async def delivery(client: httpx.AsyncClient, portal: httpx.AsyncClient, tokens: list[str]) -> float:
    """Seconds from the first push to the last device holding its notification, every device waiting first."""
    waits = [asyncio.ensure_future(portal.get(f"/apns/tokens/{t}/next", params={"timeout": "120"})) for t in tokens]
    deadline = time.monotonic() + 120
    while (await portal.get("/apns/stats")).json()["waiting"] < len(tokens):
        if time.monotonic() > deadline:
            raise SystemExit("the devices did not all start waiting within 120 s")
        await asyncio.sleep(0.05)
    started = time.perf_counter()
    await asyncio.gather(*(client.post(f"/3/device/{token}", content=BODY) for token in tokens))
    answers = await asyncio.gather(*waits)
    elapsed = time.perf_counter() - started
    if {answer.status_code for answer in answers} != {200}:
        raise SystemExit("a waiting device got no notification")
    return elapsed


async def run(port: int, apns_port: int, work: Path, topic: str, count: int, devices: int) -> dict[str, Any]:
    base = f"http://127.0.0.1:{port}"
    limits = httpx.Limits(max_connections=devices + 10)
    async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as portal:
        tokens = [(await portal.post("/apns/tokens", json={"topic": topic})).json()["token"] for _ in range(count)]
        (work / "tls-ca.pem").write_bytes((await portal.get("/apns/ca.pem")).content)
        context = ssl.create_default_context(cafile=str(work / "tls-ca.pem"))
        context.load_cert_chain(work / "push.pem", work / "push.key")
        figures: dict[str, Any] = {"tokens": count, "devices": devices}
        async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{apns_port}", verify=context, http2=True) as apns:
            await apns.post(f"/3/device/{tokens[0]}", content=BODY)  # the TLS handshake, out of the timings
            figures["sequential_per_s"] = await pushes(apns, tokens, 1)
            print(f"one at a time:  {figures['sequential_per_s']:,.0f} pushes/s", flush=True)
            figures["in_flight_100_per_s"] = await pushes(apns, tokens, 100)
            print(f"100 in flight:  {figures['in_flight_100_per_s']:,.0f} pushes/s", flush=True)
            figures["refused_per_s"] = await pushes(apns, ["0" * 64] * count, 100)
            print(f"refused (400):  {figures['refused_per_s']:,.0f} pushes/s (HTTP/2 + TLS alone)", flush=True)
            # Tokens of their own: the ones above hold a stored push, which a wait would get at once.
            fresh = [(await portal.post("/apns/tokens", json={"topic": topic})).json()["token"] for _ in range(devices)]
            figures["delivery_seconds"] = await delivery(apns, portal, fresh)
            print(f"{devices} waiting devices served in {figures['delivery_seconds']:.2f} s", flush=True)
        figures["stats"] = (await portal.get("/apns/stats")).json()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tokens", type=int, default=2000, help="device tokens pushed to (default 2000)")
    parser.add_argument("--devices", type=int, default=200, help="devices waiting at once (default 200)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pippin-bench-apns-") as directory:
        work = Path(directory)
        push_ca, _cert, _key, topic = push_credentials(work)
        port, apns_port = free_port(), free_port()
        process = start_simulator(work, port, apns_port, push_ca)
        try:
            figures = asyncio.run(run(port, apns_port, work, topic, args.tokens, min(args.devices, args.tokens)))
        finally:
            process.terminate()
            process.wait(timeout=30)
    print(json.dumps({"bench": "apns_push", **figures}))


if __name__ == "__main__":
    main()
