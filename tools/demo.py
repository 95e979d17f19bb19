"""`make demo`: walk the seed's steps 1 to 8 on one machine, then leave Pippin running to look at.

Each step is a function below, in the order an admin takes them:
0. start `pippin sim apple` (the simulated Apple: DEP service, Business Manager, Push Certificates Portal, APNs)
   with sample devices;
1. the push certificate: a test MDM vendor certificate from the simulated portal (`pippin push vendor import`),
   `pippin push csr`, the portal issues the certificate, `pippin push upload-cert`, `pippin push status`; then a
   renewal that keeps the topic, and `pippin push test` to a device token waiting on the simulated APNs;
2. `pippin dep keypair`: the encryption key (.pem) Apple needs;
3. at the simulated Business Manager: add an MDM server with that .pem, download its server token (.p7m);
4. `pippin dep upload-token` with the Apple ID;
5. `pippin profiles create` with some Setup Assistant panes hidden, and `set-default` for the token;
6. at the simulated Business Manager: assign devices to the server the seed's three ways (serials, an order
   number, a CSV file);
7. `pippin dep sync`, then `pippin devices list`: the devices are "Not contacted", with the profile assigned;
8. start `pippin serve` (REST API, admin console and the device endpoints) with a demo admin and an organisation
   user, switch simulated devices on with `pippin sim devices` (three enroll directly, one through the user-affinity
   sign-in as that user), `pippin devices list --state enrolled`; then one device stays on (`--stay`), is
   renamed with a Settings command and answers DeviceInformation (`pippin devices commands SERIAL --answers`,
   `pippin devices show SERIAL`); then print where to look and run until Ctrl-C.

The demo starts from nothing each time: its state lives in var/demo/ and is cleared first. With --check (what the
tests run) it verifies every step and exits instead of serving.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DEVICES = 500
SAMPLE_SEED = 2024
TOKEN_NAME = "demo"  # noqa: S105 - a name, not a secret
APPLE_ID = "it-admin@example.com"
PROFILE_NAME = "Corporate iPhones"
HIDDEN_PANES = ("Siri", "Diagnostics", "ScreenTime", "AppleID", "Privacy")
DEMO_ADMIN = "admin@example.com"
STAFF_PROFILE_NAME = "Staff iPhones"
DEMO_USER = "alice"
DIRECT_DEVICES = 3
#: The name the demo gives a device with a Settings command (Apple's Settings item DeviceName).
DEMO_RENAME = [{"Item": "DeviceName", "DeviceName": "Reception iPhone"}]


@dataclass
class Demo:
    """What the steps share: where things live and the processes started (stopped in reverse order)."""

    data_dir: Path
    sim_port: int
    server_port: int
    apns_port: int
    check: bool
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    server_uuid: str = ""
    admin_password: str = ""
    user_password: str = ""
    #: The devices switched on at step 8: enrolled directly, and through the sign-in as the demo user.
    direct_serials: list[str] = field(default_factory=list)
    staff_serial: str = ""

    @property
    def sim_url(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    @property
    def server_url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    @property
    def device_ca_path(self) -> Path:
        return self.data_dir / "device-ca.pem"

    @property
    def environment(self) -> dict[str, str]:
        """Pippin's settings for the demo: its own data directory, the simulated Apple."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("PIPPIN_")}
        env["PIPPIN_DATA_DIR"] = str(self.data_dir / "pippin")
        env["PIPPIN_DEP_BASE_URL"] = self.sim_url
        env["PIPPIN_SERVER_URL"] = self.server_url
        # The simulated APNs, whose TLS certificate comes from the simulator's own CA (kept in its data folder).
        env["PIPPIN_APNS_BASE_URL"] = f"https://127.0.0.1:{self.apns_port}"
        env["PIPPIN_APNS_CA_FILE"] = str(self.data_dir / "sim" / "apns-tls-ca.pem")
        # The simulated factory's device CA stands in for Apple's: it signs the devices' MachineInfo.
        env["PIPPIN_DEVICE_TRUST_ANCHORS_FILE"] = str(self.device_ca_path)
        # The commands' output is captured, not a terminal: keep tables as wide as the demo's own terminal.
        env["COLUMNS"] = str(max(shutil.get_terminal_size((160, 40)).columns, 120))
        return env


def pippin_command() -> list[str]:
    """The `pippin` of this virtual environment (or the one on PATH)."""
    beside = Path(sys.executable).with_name("pippin")
    found = str(beside) if beside.exists() else shutil.which("pippin")
    if found is None:
        sys.exit("`pippin` is not installed here: run `make demo` (it installs Pippin into .venv first).")
    return [found]


def free_port(preferred: int) -> int:
    """``preferred`` when nothing listens there, else any free loopback port."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def say(demo: Demo, text: str) -> None:
    print(f"\n==> {text}", flush=True)


def pippin(demo: Demo, *args: str, stdin: str | None = None, quiet: bool = False) -> str:
    """Run one `pippin` command as an admin would; show it and its output; stop the demo if it fails."""
    command = [*pippin_command(), *args]
    if not quiet:
        print(f"$ pippin {' '.join(args)}", flush=True)
    result = subprocess.run(  # noqa: S603 - our own executable, fixed arguments
        command, env=demo.environment, input=stdin, capture_output=True, text=True, check=False
    )
    if result.stdout.strip() and not quiet:
        print(result.stdout.rstrip(), flush=True)
    if result.returncode != 0:
        raise SystemExit(f"`pippin {' '.join(args)}` failed ({result.returncode}):\n{result.stderr}")
    return result.stdout


def wait_until_answering(demo: Demo, url: str, what: str, *, timeout: float = 60.0) -> None:
    """Poll ``url`` until it answers 200; fail with the reason if a process exits or it stalls."""
    deadline = time.monotonic() + timeout
    while True:
        if any(process.poll() is not None for process in demo.processes):
            raise SystemExit(f"{what} stopped during start-up; its output above says why")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not answer on {url} within {timeout:.0f} s")
        time.sleep(0.2)


def start_simulator(demo: Demo) -> None:
    """The simulated Apple, with sample devices."""
    say(demo, f"Starting the simulated Apple with {SAMPLE_DEVICES} sample devices on {demo.sim_url}")
    command = [*pippin_command(), "sim", "apple", "--port", str(demo.sim_port), "--data", str(demo.data_dir / "sim")]
    command += ["--devices", str(SAMPLE_DEVICES), "--seed", str(SAMPLE_SEED)]
    command += ["--apns-port", str(demo.apns_port)]
    output = subprocess.DEVNULL if demo.check else None
    demo.processes.append(subprocess.Popen(command, stdout=output, stderr=output))  # noqa: S603 - fixed args
    wait_until_answering(demo, f"{demo.sim_url}/portal/terms", "the simulator")


def portal_certificate(portal: httpx.Client, request: Path, *, renew: str | None = None) -> dict[str, str]:
    """At the simulated Push Certificates Portal: upload the request (Create, or Renew the certificate ``renew``)."""
    path = "/portal/push/certificates" + (f"/{renew}/renew" if renew else "")
    answer = portal.post(path, json={"apple_id": APPLE_ID, "request": request.read_text()})
    answer.raise_for_status()
    issued: dict[str, str] = answer.json()
    return issued


def push_certificate(demo: Demo, portal: httpx.Client) -> None:
    """Step 1 (seed: "enable iOS management", the MDM push certificate): request, sign, issue, upload, renew, push."""
    say(demo, "Seed step 1: the MDM push certificate, signed with a (test) MDM vendor certificate")
    vendor = portal.post("/portal/push/vendor-certificates", json={"vendor_name": "Pippin demo"})
    vendor.raise_for_status()
    vendor_pem, vendor_key = demo.data_dir / "mdm-vendor.pem", demo.data_dir / "mdm-vendor.key"
    vendor_pem.write_text(vendor.json()["chain_pem"])
    vendor_key.write_text(vendor.json()["private_key_pem"])
    vendor_key.chmod(0o600)
    print("A test MDM vendor certificate from the simulated portal (real vendors get theirs from Apple)")
    pippin(demo, "push", "vendor", "import", "--certificate", str(vendor_pem), "--key", str(vendor_key))
    request = demo.data_dir / "push-request.b64"
    pippin(demo, "push", "csr", "-o", str(request))
    issued = portal_certificate(portal, request)
    certificate = demo.data_dir / "MDM_Pippin_Certificate.pem"
    certificate.write_text(issued["certificate_pem"])
    print(f"The simulated Push Certificates Portal issued a certificate for topic {issued['topic']}")
    pippin(demo, "push", "upload-cert", str(certificate), "--apple-id", APPLE_ID)
    pippin(demo, "push", "status")

    say(demo, "Seed step 1, a year later: renew the push certificate; the topic, and every device with it, stays")
    renewal = demo.data_dir / "push-renewal.b64"
    pippin(demo, "push", "csr", "-o", str(renewal))
    renewed = portal_certificate(portal, renewal, renew=issued["topic"])
    certificate.write_text(renewed["certificate_pem"])
    pippin(demo, "push", "upload-cert", str(certificate), "--apple-id", APPLE_ID)

    say(demo, "A push to a (simulated) device waiting on APNs")
    token = portal.post("/apns/tokens", json={"topic": issued["topic"]})
    token.raise_for_status()
    device_token = token.json()["token"]
    pippin(demo, "push", "test", device_token, "--magic", "demo-push-magic")
    arrived = portal.get(f"/apns/tokens/{device_token}/next", params={"timeout": 30})
    print(f"The device's APNs connection received: {arrived.status_code} {arrived.text}")
    if demo.check and (renewed["topic"] != issued["topic"] or arrived.json() != {"mdm": "demo-push-magic"}):
        raise SystemExit(f"expected the push at the device with the same topic, got {arrived.status_code}")


def create_keypair(demo: Demo) -> Path:
    """Step 2 (seed: "Get an encryption key")."""
    say(demo, "Seed step 2: the encryption key (.pem) to upload to Apple")
    pem = demo.data_dir / "pippin-demo.pem"
    pippin(demo, "dep", "keypair", TOKEN_NAME, "-o", str(pem))
    return pem


def download_token(demo: Demo, pem: Path, portal: httpx.Client) -> Path:
    """Step 3 (seed: add an MDM server in Apple's portal, upload the .pem, download the server token)."""
    say(demo, "Seed step 3: at (simulated) Apple Business Manager, add an MDM server and download its token")
    created = portal.post(
        "/portal/mdm-servers",
        json={"name": "Pippin demo", "public_key_pem": pem.read_text(), "admin_apple_id": APPLE_ID},
    )
    created.raise_for_status()
    demo.server_uuid = created.json()["server_uuid"]
    token = portal.get(f"/portal/mdm-servers/{demo.server_uuid}/token", params={"apple_id": APPLE_ID})
    token.raise_for_status()
    path = demo.data_dir / "pippin-demo_smime.p7m"
    path.write_bytes(token.content)
    print(f"MDM server {demo.server_uuid} created; server token saved as {path}")
    return path


def upload_token(demo: Demo, token_file: Path) -> None:
    """Step 4 (seed: "Add the DEP token" with the Apple ID)."""
    say(demo, "Seed step 4: upload the server token with the Apple ID that created it")
    pippin(demo, "dep", "upload-token", TOKEN_NAME, str(token_file), "--apple-id", APPLE_ID)


def create_profile(demo: Demo) -> None:
    """Step 5 (seed: the enrollment policy with its Setup Assistant panes), the token's default."""
    say(demo, "Seed step 5: an enrollment profile, supervised and locked, with some panes hidden")
    skips = [arg for pane in HIDDEN_PANES for arg in ("--skip", pane)]
    pippin(
        demo,
        "profiles",
        "create",
        PROFILE_NAME,
        "--description",
        "Company-owned iPhones and iPads handed to staff",
        "--supervised",
        "--locked",
        "--department",
        "IT",
        "--support-phone",
        "+46 8 123 456 00",
        *skips,
    )
    pippin(demo, "profiles", "set-default", TOKEN_NAME, PROFILE_NAME)
    say(demo, "Seed step 5, with user affinity: staff sign in during setup and become the device's primary user")
    pippin(
        demo,
        "profiles",
        "create",
        STAFF_PROFILE_NAME,
        "--description",
        "iPhones handed to one member of staff",
        "--supervised",
        "--locked",
        "--user-affinity",
        "with_user",
    )


def assign_devices(demo: Demo, portal: httpx.Client) -> int:
    """Step 6 (seed: assign devices to the server by serial number, order number or CSV upload)."""
    say(demo, "Seed step 6: at (simulated) Apple Business Manager, assign devices to the server three ways")
    listing = portal.get("/portal/devices", params={"unassigned": "true", "limit": 60})
    listing.raise_for_status()
    devices = listing.json()["devices"]
    by_serial = [device["serial_number"] for device in devices[:10]]
    by_csv = [device["serial_number"] for device in devices[10:20]]
    order = next(device["order_number"] for device in devices[20:] if device["serial_number"] not in by_serial)
    for body in (
        {"server_uuid": demo.server_uuid, "serials": by_serial},
        {"server_uuid": demo.server_uuid, "order_numbers": [order]},
    ):
        portal.post("/portal/assignments", json=body).raise_for_status()
    csv = "serial_number\n" + "\n".join(by_csv) + "\n"
    portal.post(
        "/portal/assignments/csv", params={"server_uuid": demo.server_uuid}, content=csv.encode()
    ).raise_for_status()
    assigned = portal.get("/portal/devices", params={"server_uuid": demo.server_uuid, "limit": 1}).json()["total"]
    print(f"{assigned} devices assigned: 10 by serial number, order {order}, and 10 from a CSV file")
    return int(assigned)


def sync(demo: Demo, assigned: int) -> None:
    """Step 7 (seed: "Sync now"; the devices appear as "Not contacted")."""
    say(demo, "Seed step 7: sync with Apple; the devices show as Not contacted, with the default profile")
    pippin(demo, "dep", "sync", TOKEN_NAME)
    pippin(demo, "devices", "list", "--token", TOKEN_NAME, "--limit", "15")
    devices = json.loads(
        pippin(demo, "devices", "list", "--token", TOKEN_NAME, "--json", "--limit", "1000", quiet=True)
    )
    serials = sorted(device["serial_number"] for device in devices)
    demo.direct_serials = serials[:DIRECT_DEVICES]
    demo.staff_serial = serials[DIRECT_DEVICES]
    pippin(demo, "profiles", "assign", STAFF_PROFILE_NAME, demo.staff_serial)
    if demo.check:
        devices = json.loads(
            pippin(demo, "devices", "list", "--token", TOKEN_NAME, "--json", "--limit", "1000", quiet=True)
        )
        states = {device["enrollment_state"] for device in devices}
        if len(devices) != assigned or states != {"not_contacted"}:
            raise SystemExit(f"expected {assigned} devices not contacted, got {len(devices)} in states {states}")


def start_server(demo: Demo, portal: httpx.Client) -> None:
    """The REST API, the admin console and the device endpoints, with a demo admin and an organisation user."""
    say(demo, f"Starting Pippin's server (REST API, admin console, device endpoints) on {demo.server_url}")
    demo.admin_password = secrets.token_urlsafe(12)
    pippin(demo, "admin", "user", "create", DEMO_ADMIN, "--password-stdin", stdin=demo.admin_password + "\n")
    demo.user_password = secrets.token_urlsafe(12)
    pippin(
        demo, "users", "add", DEMO_USER, "--name", "Alice Svensson", "--password-stdin", stdin=demo.user_password + "\n"
    )
    device_ca = portal.get("/factory/device-ca.pem")
    device_ca.raise_for_status()
    demo.device_ca_path.write_bytes(device_ca.content)
    command = [*pippin_command(), "serve", "--port", str(demo.server_port)]
    output = subprocess.DEVNULL if demo.check else None
    demo.processes.append(
        subprocess.Popen(command, env=demo.environment, stdout=output, stderr=output)  # noqa: S603 - fixed args
    )
    wait_until_answering(demo, f"{demo.server_url}/healthz", "pippin serve")


def switch_devices_on(demo: Demo) -> None:
    """Step 8 (seed: hand out the devices; switched on, they enroll, and their users cannot remove management)."""
    say(demo, "Seed step 8: switch devices on; each enrolls over the air in Setup Assistant")
    # The devices trust the CA that signs Pippin's enrollment profiles, as a DEP profile's anchor certificates
    # would make them (`GetCACert` hands it out).
    ca = httpx.get(f"{demo.server_url}/mdm/scep", params={"operation": "GetCACert"}, timeout=30)
    ca.raise_for_status()
    trusted = demo.data_dir / "pippin-ca.pem"
    trusted.write_bytes(x509.load_der_x509_certificate(ca.content).public_bytes(serialization.Encoding.PEM))
    common = ("--sim-url", demo.sim_url, "--trust-ca", str(trusted), "--state-dir", str(demo.data_dir / "devices"))
    pippin(demo, "sim", "devices", *common, *(arg for serial in demo.direct_serials for arg in ("--serial", serial)))
    pippin(
        demo,
        "sim",
        "devices",
        *common,
        "--serial",
        demo.staff_serial,
        "--user",
        DEMO_USER,
        "--password",
        demo.user_password,
    )
    pippin(demo, "devices", "list", "--state", "enrolled")
    if demo.check:
        enrolled = json.loads(pippin(demo, "devices", "list", "--state", "enrolled", "--json", quiet=True))
        by_serial = {device["serial_number"]: device for device in enrolled}
        expected = {*demo.direct_serials, demo.staff_serial}
        if set(by_serial) != expected:
            raise SystemExit(f"expected {sorted(expected)} enrolled, got {sorted(by_serial)}")
        if by_serial[demo.staff_serial]["primary_user_id"] is None:
            raise SystemExit(f"{demo.staff_serial} enrolled without its primary user")


def manage_a_device(demo: Demo) -> None:
    """Enrolled is not managed: one device stays on, waiting for pushes, and answers the commands sent to it."""
    serial = demo.direct_serials[0]
    say(demo, f"Managing an enrolled device: {serial} stays on; a command wakes it through APNs and it answers")
    ca = demo.data_dir / "pippin-ca.pem"
    command = [
        *pippin_command(), "sim", "devices", "--sim-url", demo.sim_url, "--trust-ca", str(ca),
        "--state-dir", str(demo.data_dir / "devices"), "--serial", serial, "--stay",
    ]  # fmt: skip
    log = (demo.data_dir / "device.log").open("ab")
    demo.processes.append(subprocess.Popen(command, env=demo.environment, stdout=log, stderr=log))  # noqa: S603
    pippin(demo, "devices", "command", serial, "Settings", "--param", f"Settings:={json.dumps(DEMO_RENAME)}")
    pippin(demo, "devices", "command", serial, "DeviceInformation")
    deadline = time.monotonic() + 120
    while True:
        listed = json.loads(pippin(demo, "devices", "commands", serial, "--json", quiet=True))
        if listed and all(entry["status"] not in ("queued", "sent", "not_now") for entry in listed):
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"{serial} did not answer its commands within 120 s (see {demo.data_dir / 'device.log'})")
        time.sleep(0.5)
    pippin(demo, "devices", "commands", serial, "--answers")
    pippin(demo, "devices", "show", serial)
    shown = json.loads(pippin(demo, "devices", "show", serial, "--json", quiet=True))
    if demo.check:
        if {entry["status"] for entry in listed} != {"acknowledged"}:
            raise SystemExit(f"expected both commands acknowledged, got {listed}")
        if shown.get("device_name") != DEMO_RENAME[0]["DeviceName"] or not shown.get("os_version"):
            raise SystemExit(f"the inventory does not show what {serial} answered: {shown}")


def show_where_to_look(demo: Demo) -> None:
    apns_ca = demo.environment["PIPPIN_APNS_CA_FILE"]
    print(
        f"""
Pippin demo is running (state in {demo.data_dir}, cleared at the next `make demo`).

  Admin console:                      {demo.server_url}/console/
      sign in as {DEMO_ADMIN} with password {demo.admin_password}
  REST API docs:                      {demo.server_url}/api/docs   (`pippin admin token create NAME` for a token)
  Simulated Apple Business Manager:   {demo.sim_url}/portal/
  Simulated Push Certificates Portal: {demo.sim_url}/portal/pages/push
  Simulated APNs (HTTP/2, TLS):       https://127.0.0.1:{demo.apns_port}   (device side: {demo.sim_url}/apns/tokens)
  Simulated Apple DEP service:        {demo.sim_url}

To walk the seed's steps 2 to 7 yourself by clicking, with a second token:
  2. console, DEP tokens, "Add a DEP token": name it (e.g. clicked), then download its .pem;
  3. {demo.sim_url}/portal/pages/servers: add an MDM server with that .pem, then "Download token";
  4. back in the console: upload the .p7m with the Apple ID you gave at Apple (e.g. {APPLE_ID});
  5. Enrollment profiles, "Create a profile"; on the token's page, choose it as the default profile;
  6. {demo.sim_url}/portal/pages/devices: assign unassigned devices to the new MDM server;
  7. the token's page: "Sync now" (disabled while it runs); Devices lists them as Not contacted.

The same from a shell in the repository:
  export PIPPIN_DATA_DIR={demo.data_dir / "pippin"} PIPPIN_DEP_BASE_URL={demo.sim_url} \\
         PIPPIN_APNS_BASE_URL=https://127.0.0.1:{demo.apns_port} PIPPIN_APNS_CA_FILE={apns_ca}
  .venv/bin/pippin push status
  .venv/bin/pippin dep tokens
  .venv/bin/pippin devices list
  .venv/bin/pippin profiles show "{PROFILE_NAME}"

Press Ctrl-C to stop.
"""
    )


def stop(demo: Demo) -> None:
    for process in reversed(demo.processes):
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    for process in reversed(demo.processes):
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="verify every step, then exit instead of serving")
    parser.add_argument("--data", type=Path, default=ROOT / "var" / "demo", help="state directory (default var/demo)")
    parser.add_argument("--sim-port", type=int, default=8081, help="simulator port; a free one when it is taken")
    parser.add_argument("--port", type=int, default=8000, help="Pippin's port; a free one when it is taken")
    args = parser.parse_args(argv)
    # A polite stop (kill, a closing terminal) stops the servers too, exactly like Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    data_dir = args.data.resolve()
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    demo = Demo(data_dir=data_dir, sim_port=free_port(args.sim_port), server_port=0, apns_port=0, check=args.check)
    demo.server_port = free_port(args.port if args.port != demo.sim_port else 0)
    # Apple's port for the APNs provider API, unless taken.
    demo.apns_port = free_port(2197 if 2197 not in (demo.sim_port, demo.server_port) else 0)
    try:
        start_simulator(demo)
        with httpx.Client(base_url=demo.sim_url, timeout=60) as portal:
            push_certificate(demo, portal)
            token_file = download_token(demo, create_keypair(demo), portal)
            upload_token(demo, token_file)
            create_profile(demo)
            assigned = assign_devices(demo, portal)
            sync(demo, assigned)
            start_server(demo, portal)
        switch_devices_on(demo)
        manage_a_device(demo)
        if demo.check:
            print(
                f"\ndemo check passed: push certificate renewed with its topic and a push delivered, {assigned} "
                f"devices synced, {DIRECT_DEVICES + 1} enrolled over the air (one with its primary user), a device "
                f"renamed and its information read by MDM commands, server answering on {demo.server_url}"
            )
            return 0
        show_where_to_look(demo)
        while all(process.poll() is None for process in demo.processes):
            time.sleep(0.5)
        return 1
    except KeyboardInterrupt:
        print("\nstopping the demo")
        return 0
    finally:
        stop(demo)


if __name__ == "__main__":
    sys.exit(main())
