"""Idle check-ins against a real `pippin serve`: how many a second, and Pippin's CPU per check-in.

An enrolled device with nothing to do sends ``PUT /mdm/connect`` with ``Status: Idle``, signed with its identity
(``Mdm-Signature``), and gets an empty 200. That is the request a fleet sends most, so its cost bounds how many
devices one Pippin serves. The benchmark sets up what ``enroll.py`` does (the simulated Apple, a push certificate,
a default profile, a sync), starts `pippin serve` as its own process, enrolls ``--devices`` simulated devices
through Setup Assistant, and empties their queues (each answers what it was sent, as the simulated device does).

Then each device's Idle report is signed once, as the device would sign it, and a load generator in its own
process (``--connections`` HTTP/1.1 keep-alive connections over raw sockets, one request in flight on each) replays
the pre-signed requests round-robin for ``--seconds``. Replaying costs the generator almost nothing, so what is
measured is Pippin: check-ins per second (wall clock) and Pippin's CPU per check-in (utime + stime of the
`pippin serve` process and any children, from /proc, just before and after). Every answer must be an empty 200,
or the benchmark fails.

The machine is usually shared, so the figure is also given as a multiple of one RSA-2048 verification (the
signature check no server can skip), timed in this process in the same run. The reference is nanomdm on this
machine: about 5,700 idle check-ins a second, 0.26-0.43 ms of CPU each.

    .venv/bin/python bench/checkin.py [--devices 50] [--connections 8] [--seconds 20] [--database-url ...]

SQLite (a temporary file) by default. Prints a line per stage and, last, one JSON object.
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing
import plistlib
import selectors
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509

sys.path.insert(0, str(Path(__file__).resolve().parent))
from enroll import boot_fleet, prepare_enrollment, process_cpu_seconds, rsa_costs_ms
from world import connected_world, free_port, pippin_env, start_pippin_serve

from pippin.sim.iphone.checkin_client import MDMClient
from pippin.sim.iphone.cms import sign_detached
from pippin.sim.iphone.device import SimulatedDevice
from pippin.sim.iphone.device_state import StateDirectory
from pippin.sim.iphone.fleet import assigned_serials
from pippin.sim.iphone.profiles import MDM_TYPE

TOKEN_NAME = "bench-checkin"  # noqa: S105 - a name, not a secret
#: nanomdm's idle check-ins on this machine, the reference the issue gives.
NANOMDM_PER_SECOND = 5700
NANOMDM_CPU_MS = (0.26, 0.43)
COMMAND_TYPE = "application/x-apple-aspen-mdm"


def tree_cpu_seconds(pid: int) -> float:
    """CPU of process ``pid`` and every process below it (a server's workers), from /proc."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            total += process_cpu_seconds(current)
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
        except FileNotFoundError:
            continue  # a process that ended meanwhile
    return total


def idle_request(device: SimulatedDevice, host: str) -> bytes:
    """The device's ``PUT /mdm/connect`` with Status Idle, signed as the device signs it, as raw HTTP/1.1 bytes."""
    identity, facts = device.state.mdm_identity, device.state.facts
    assert identity is not None and facts is not None, "the device enrolled"
    body = plistlib.dumps({"Status": "Idle", "UDID": facts.udid}, fmt=plistlib.FMT_XML)
    signature = base64.b64encode(sign_detached(body, key=identity.key, certificate=identity.certificate))
    head = (
        f"PUT /mdm/connect HTTP/1.1\r\nHost: {host}\r\nUser-Agent: MDM/1.0\r\nContent-Type: {COMMAND_TYPE}\r\n"
        f"Content-Length: {len(body)}\r\nMdm-Signature: {signature.decode('ascii')}\r\n\r\n"
    )
    return head.encode("ascii") + body


def empty_queue(device: SimulatedDevice, client: httpx.Client) -> int:
    """Answer whatever the server has for ``device`` until it has nothing; the commands it had."""
    profile = device.profiles.mdm_profile()
    assert profile is not None and device.state.mdm_identity is not None and device.state.facts is not None
    payload = profile.payload_of(MDM_TYPE)
    assert payload is not None
    mdm = MDMClient(client, mdm_payload=payload, identity=device.state.mdm_identity, facts=device.state.facts)
    return mdm.connect()


def _read_response(buffer: bytearray) -> tuple[int, int] | None:
    """(status, body length) of one whole response at the start of ``buffer``, removed from it; None if partial."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    status = int(head[0].split(" ", 2)[1])
    length = 0
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if len(buffer) < end + 4 + length:
        return None
    del buffer[: end + 4 + length]
    return status, length


def generate_load(
    port: int, requests: list[bytes], connections: int, seconds: float, ready: Any, start: Any, results: Any
) -> None:
    """The load generator (its own process): ``connections`` keep-alive connections replaying ``requests``."""
    selector = selectors.DefaultSelector()
    buffers: dict[socket.socket, bytearray] = {}
    for _ in range(connections):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffers[sock] = bytearray()
    ready.set()
    start.wait()
    cpu_before, began = time.process_time(), time.perf_counter()
    deadline = began + seconds
    sent = answered = failed = 0
    for sock in buffers:
        sock.sendall(requests[sent % len(requests)])
        sent += 1
        selector.register(sock, selectors.EVENT_READ)
    open_connections = len(buffers)
    while open_connections:
        for key, _ in selector.select(timeout=5):
            connection = key.fileobj
            assert isinstance(connection, socket.socket)
            chunk = connection.recv(65536)
            if not chunk:
                raise SystemExit("pippin serve closed a connection")
            buffer = buffers[connection]
            buffer += chunk
            while (response := _read_response(buffer)) is not None:
                answered += 1
                if response != (200, 0):
                    failed += 1
                if time.perf_counter() < deadline:
                    connection.sendall(requests[sent % len(requests)])
                    sent += 1
                else:
                    selector.unregister(connection)
                    open_connections -= 1
    elapsed = time.perf_counter() - began
    results.put({"answered": answered, "failed": failed, "seconds": elapsed, "cpu": time.process_time() - cpu_before})
    for sock in buffers:
        sock.close()


def run(
    devices: int, connections: int, seconds: float, concurrency: int, database_url: str | None, work: Path
) -> dict[str, Any]:
    port = free_port()
    with connected_world(devices, database_url, work, token_name=TOKEN_NAME) as world:
        device_ca = work / "device-ca.pem"
        device_ca.write_bytes(world.portal.get("/factory/device-ca.pem").raise_for_status().content)
        env = pippin_env(world) | {
            "PIPPIN_SERVER_URL": f"http://127.0.0.1:{port}",
            "PIPPIN_DEVICE_TRUST_ANCHORS_FILE": str(device_ca),
            "PIPPIN_LOG_LEVEL": "INFO",
        }
        prepare_enrollment(world, env, work, token_name=TOKEN_NAME)
        serials = assigned_serials(world.portal, devices)
        server, base_url = start_pippin_serve(env, work, port=port)
        try:
            ca = httpx.get(f"{base_url}/mdm/scep", params={"operation": "GetCACert"}, timeout=30)
            trust = [x509.load_der_x509_certificate(ca.raise_for_status().content)]
            states, sim_url = StateDirectory(None), str(world.portal.base_url).rstrip("/")
            fleet = [SimulatedDevice(sim_url=sim_url, serial_number=s, states=states, trust=trust) for s in serials]
            began = time.perf_counter()
            boot_fleet(fleet, concurrency)
            print(f"{len(fleet):,} devices enrolled in {time.perf_counter() - began:.1f} s", flush=True)
            with httpx.Client(timeout=30) as client:
                commands = sum(empty_queue(device, client) for device in fleet)
            print(f"queues empty ({commands} commands answered first)", flush=True)
            requests = [idle_request(device, f"127.0.0.1:{port}") for device in fleet]
            context = multiprocessing.get_context("spawn")
            ready, start, results = context.Event(), context.Event(), context.Queue()
            # A short untimed round first: connections accepted, every device's certificate seen once.
            for duration, timed in ((2.0, False), (seconds, True)):
                ready.clear()
                start.clear()
                generator = context.Process(
                    target=generate_load, args=(port, requests, connections, duration, ready, start, results)
                )
                generator.start()
                ready.wait(timeout=60)
                pippin_before = tree_cpu_seconds(server.pid)
                start.set()
                outcome = results.get(timeout=duration + 120)
                pippin_cpu = tree_cpu_seconds(server.pid) - pippin_before
                generator.join(timeout=60)
                if outcome["failed"]:
                    raise SystemExit(f"{outcome['failed']} of {outcome['answered']} check-ins were not an empty 200")
                if timed:
                    break
            sign_ms, verify_ms = rsa_costs_ms()
        finally:
            server.terminate()
            server.wait(timeout=60)
        dialect = world.engine.dialect.name
    per_checkin_ms = pippin_cpu / outcome["answered"] * 1000
    figures: dict[str, Any] = {
        "database": dialect,
        "devices": devices,
        "connections": connections,
        "seconds": round(outcome["seconds"], 2),
        "checkins": outcome["answered"],
        "checkins_per_second": round(outcome["answered"] / outcome["seconds"], 1),
        "pippin_cpu_seconds": round(pippin_cpu, 2),
        "pippin_cpu_ms_per_checkin": round(per_checkin_ms, 3),
        "pippin_cpu_per_rsa_verify": round(per_checkin_ms / verify_ms, 1),
        "generator_cpu_ms_per_checkin": round(outcome["cpu"] / outcome["answered"] * 1000, 3),
        "rsa_verify_ms": round(verify_ms, 4),
        "rsa_sign_ms": round(sign_ms, 3),
        "workers": 1,
        "nanomdm_checkins_per_second": NANOMDM_PER_SECOND,
        "nanomdm_cpu_ms_per_checkin": list(NANOMDM_CPU_MS),
    }
    print(
        f"{outcome['answered']:,} idle check-ins in {outcome['seconds']:.1f} s over {connections} connections: "
        f"{figures['checkins_per_second']:,} a second (nanomdm: about {NANOMDM_PER_SECOND:,})\n"
        f"Pippin's CPU: {pippin_cpu:.2f} s = {per_checkin_ms:.3f} ms per check-in "
        f"({figures['pippin_cpu_per_rsa_verify']} RSA-2048 verifications of {verify_ms * 1000:.0f} µs; nanomdm "
        f"{NANOMDM_CPU_MS[0]}-{NANOMDM_CPU_MS[1]} ms); the generator's: "
        f"{figures['generator_cpu_ms_per_checkin']} ms per check-in",
        flush=True,
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=50, help="enrolled devices whose requests replay (default 50)")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections (default 8)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds of load (default 20)")
    parser.add_argument("--concurrency", type=int, default=8, help="devices enrolling at once first (default 8)")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL; default a temporary SQLite file")
    args = parser.parse_args()
    if args.devices < 1 or args.connections < 1 or args.seconds <= 0 or args.concurrency < 1:
        parser.error("--devices, --connections, --concurrency must be at least 1, --seconds above 0")
    with tempfile.TemporaryDirectory(prefix="pippin-bench-checkin-") as scratch:
        figures = run(args.devices, args.connections, args.seconds, args.concurrency, args.database_url, Path(scratch))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
