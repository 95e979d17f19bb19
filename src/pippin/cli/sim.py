"""`pippin sim apple`: serve the simulator of Apple's DEP service, Business Manager, push portal and APNs;
`pippin sim devices`: switch simulated iPhones and iPads on, to enroll into an MDM server.

The one product module allowed to import ``pippin.sim`` (it only starts it; Pippin itself meets the
simulator over HTTP, like Apple).
"""

from __future__ import annotations

import functools
import ipaddress
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pippin.cli.output import stdout
from pippin.errors import InvalidInput

if TYPE_CHECKING:
    from cryptography import x509

    from pippin.sim.state import SimState

MAX_SEED_DEVICES = 1_000_000
MAX_BOOTED_DEVICES = 100_000
MAX_CONCURRENCY = 1000
_SERIAL = re.compile(r"[A-Za-z0-9]{1,64}")
_HOST_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")

sim_app = typer.Typer(help="Simulators of Apple's side, for tests and demos.", no_args_is_help=True)


@sim_app.command("apple")
def apple(
    host: str = typer.Option(
        "127.0.0.1", help="Address to listen on (keep it on loopback: the simulator has no auth)."
    ),
    port: int = typer.Option(8081, help="TCP port, 1-65535."),
    apns_port: int = typer.Option(
        2197, help="TCP port of the simulated APNs provider API (HTTP/2 over TLS), 1-65535; 0 serves no APNs."
    ),
    apns_push_ca: Path | None = typer.Option(
        None,
        "--apns-push-ca",
        help="Also trust push certificates from the CA certificate(s) in this PEM file, besides those of the simulated "
        "Push Certificates Portal (read again for each connection).",
    ),
    data: Path = typer.Option(
        Path("./var/sim"), "--data", help="Directory of the simulator's state; kept across restarts."
    ),
    devices: int = typer.Option(0, help=f"Unassigned devices to create when DATA is new (0-{MAX_SEED_DEVICES:,})."),
    seed: int | None = typer.Option(None, help="Seed for device generation, for reproducible serials and models."),
) -> None:
    """Serve Apple's DEP API, Business Manager, the Push Certificates Portal (under /portal/) and APNs."""
    if not 1 <= port <= 65535:
        raise InvalidInput(f"--port {port} is not a TCP port.", hint="Use a number from 1 to 65535, e.g. --port 8081.")
    if not _is_host(host):
        raise InvalidInput(
            "--host is not an IP address or host name.", hint="Use an address such as 127.0.0.1, ::1 or localhost."
        )
    if not 0 <= apns_port <= 65535 or apns_port == port:
        raise InvalidInput(
            f"--apns-port {apns_port} is not a TCP port of its own.",
            hint="Use a number from 1 to 65535 other than --port (e.g. --apns-port 2197), or 0 for no APNs.",
        )
    if apns_push_ca is not None and not apns_push_ca.is_file():
        raise InvalidInput(f"--apns-push-ca {apns_push_ca} is not a file.", hint="Give a PEM file of CA certificates.")
    if not 0 <= devices <= MAX_SEED_DEVICES:
        raise InvalidInput(
            f"--devices {devices} is out of range.",
            hint=f"Use 0 to {MAX_SEED_DEVICES:,}; add more later with POST /portal/devices.",
        )
    if data.exists() and not data.is_dir():
        raise InvalidInput(f"--data {data} is a file, not a directory.", hint="Give a directory (created if missing).")
    # Imported here, not at the top: every other `pippin` command starts faster without the simulator.
    import uvicorn

    from pippin.sim.apns_background import BackgroundAPNs
    from pippin.sim.apns_delivery import APNsDelivery
    from pippin.sim.apns_server import APNsServer
    from pippin.sim.apns_tls import issue_server_certificate
    from pippin.sim.app import create_app
    from pippin.sim.state import open_state

    is_new = not (data / "sim.db").exists()
    try:
        state = open_state(data)
    except OSError as exc:
        raise InvalidInput(
            f"cannot use {data} for the simulator's state: {exc.strerror}.", hint="Check the path and its permissions."
        ) from None
    rng = random.Random(seed)
    if devices and is_new:
        _seed_devices(state, rng, devices)
    elif devices:
        stdout.print(f"{data} already holds a simulator's state; --devices {devices} ignored (state is kept).")
    apns = APNsDelivery(state)
    app = create_app(state, apns=apns)
    app.state.device_rng = rng
    shown_host = host if ":" not in host else f"[{host}]"
    base_url = f"http://{shown_host}:{port}"
    background: BackgroundAPNs | None = None
    try:
        if apns_port:
            tls = issue_server_certificate(state.data_dir, [host])
            trusted = functools.partial(_trusted_push_cas, state, apns_push_ca)
            apns_server = APNsServer(state=state, delivery=apns, tls=tls, trusted_push_cas=trusted)
            try:
                background = BackgroundAPNs(apns_server, host, apns_port)
            except OSError as exc:
                raise InvalidInput(
                    f"cannot serve APNs on {shown_host}:{apns_port}: {exc.strerror or exc}.",
                    hint="Choose a free port with --apns-port (or 0 for no APNs).",
                ) from None
        stdout.print(f"Apple simulator, state in {data.resolve()}")
        stdout.print(f"  Business Manager pages: {base_url}/portal/")
        stdout.print(f"  Push Certificates:      {base_url}/portal/pages/push")
        stdout.print(f"  portal JSON API:        {base_url}/portal/docs")
        stdout.print(f"  DEP base URL:           {base_url}   (PIPPIN_DEP_BASE_URL={base_url})")
        if background is not None:
            stdout.print(f"  APNs provider API:      https://{shown_host}:{apns_port}   (HTTP/2, push certificate)")
            stdout.print(f"  APNs TLS CA to trust:   {tls.ca_path}   (also GET {base_url}/apns/ca.pem)")
            stdout.print(f"  APNs device side:       {base_url}/apns/tokens")
        stdout.print("Press Ctrl-C to stop.")
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        if background is not None:
            background.stop()
        state.engine.dispose()


def _is_host(host: str) -> bool:
    """An IP address, or a DNS name the server certificate can carry (letters, digits, '-', dots)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return len(host) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in host.split("."))
    return True


def _trusted_push_cas(state: SimState, path: Path | None) -> Sequence[x509.Certificate]:
    """What APNs trusts as push certificates: those the simulated Push Certificates Portal issues, and those of
    the CAs in ``--apns-push-ca`` (another project's test CA), read at each connection."""
    from cryptography import x509

    from pippin.sim.push_ca import push_ca_certificates

    extra: list[x509.Certificate] = []
    if path is not None:
        try:
            extra = x509.load_pem_x509_certificates(path.read_bytes())
        except (OSError, ValueError):
            extra = []  # unreadable now: trust the portal's alone rather than stop the server
    return [*push_ca_certificates(state), *extra]


def _seed_devices(state: SimState, rng: random.Random, count: int) -> None:
    from pippin.sim.inventory import MAX_DEVICES_PER_CALL, create_devices

    remaining = count
    while remaining:
        batch = min(remaining, MAX_DEVICES_PER_CALL)
        with state.transaction() as session:
            create_devices(session, rng, count=batch, now=state.clock.now())
        remaining -= batch
    stdout.print(f"Created {count:,} unassigned devices.")


@sim_app.command("devices")
def devices(
    sim_url: str = typer.Option(..., "--sim-url", help="URL of the simulated Apple (`pippin sim apple`)."),
    serial: list[str] = typer.Option([], "--serial", help="Serial number of a device to switch on (repeatable)."),
    count: int | None = typer.Option(
        None, "--count", help="Switch on this many of the simulator's devices that have a DEP profile assigned."
    ),
    concurrency: int = typer.Option(8, help=f"Devices in Setup Assistant at once, 1-{MAX_CONCURRENCY}."),
    user: str | None = typer.Option(None, "--user", help="User who signs in when the enrollment asks (user affinity)."),
    password: str | None = typer.Option(None, "--password", help="That user's password."),
    trust_ca: Path | None = typer.Option(
        None, "--trust-ca", help="PEM file of CA certificates the devices trust (the MDM server's TLS and profile CA)."
    ),
    state_dir: Path | None = typer.Option(
        None, "--state-dir", help="Directory keeping each device's state, so a stopped device can boot again."
    ),
    stay: bool = typer.Option(False, "--stay", help="Keep enrolled devices on, waiting for pushes, until Ctrl-C."),
    not_now_rate: float = typer.Option(
        0.0, "--not-now-rate", help="Fraction of commands (0-1) first answered NotNow, then run when sent again."
    ),
    error_rate: float = typer.Option(0.0, "--error-rate", help="Fraction of commands (0-1) answered with an Error."),
    seed: int = typer.Option(0, "--seed", help="Seed of the commands the rates pick (same seed, same picks)."),
) -> None:
    """Switch simulated iPhones and iPads on: each enrolls as in Setup Assistant, into the MDM server Apple names."""
    import threading

    import httpx

    from pippin.sim.iphone.answer_rates import AnswerRates
    from pippin.sim.iphone.device import SimulatedDevice
    from pippin.sim.iphone.device_state import StateDirectory
    from pippin.sim.iphone.errors import SetupFailed
    from pippin.sim.iphone.fleet import BootResult, assigned_serials, boot_devices

    base_url = _http_url(sim_url)
    if bool(serial) == (count is not None):
        raise InvalidInput("give either --serial (one or more) or --count.", hint="e.g. --count 10 or --serial C02X1")
    if count is not None and not 1 <= count <= MAX_BOOTED_DEVICES:
        raise InvalidInput(f"--count {count} is out of range.", hint=f"Use 1 to {MAX_BOOTED_DEVICES:,}.")
    for value in serial:
        if not _SERIAL.fullmatch(value):
            raise InvalidInput("a --serial is not a serial number.", hint="Serial numbers are letters and digits.")
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise InvalidInput(f"--concurrency {concurrency} is out of range.", hint=f"Use 1 to {MAX_CONCURRENCY}.")
    for flag, rate in (("--not-now-rate", not_now_rate), ("--error-rate", error_rate)):
        if not 0.0 <= rate <= 1.0:  # also refuses nan
            raise InvalidInput(f"{flag} {rate} is out of range.", hint="Give a fraction from 0 to 1, e.g. 0.1.")
    if not 0 <= seed < 2**63:
        raise InvalidInput(f"--seed {seed} is out of range.", hint="Give a whole number from 0.")
    rates = AnswerRates(not_now_rate=not_now_rate, error_rate=error_rate, seed=seed)
    if (user is None) != (password is None):
        raise InvalidInput("give --user and --password together.", hint="Both are the directory user's sign-in.")
    trust = _trusted_cas(trust_ca)
    if state_dir is not None and state_dir.exists() and not state_dir.is_dir():
        raise InvalidInput(f"--state-dir {state_dir} is a file, not a directory.", hint="Give a directory.")
    if count is not None:
        try:
            with httpx.Client(base_url=base_url, timeout=30) as sim:
                serials = assigned_serials(sim, count)
        except SetupFailed as exc:
            raise InvalidInput(f"cannot list the simulator's devices: {exc.reason}.", hint="Check --sim-url.") from None
        if len(serials) < count:
            raise InvalidInput(
                f"the simulator has {len(serials)} devices with a DEP profile assigned, fewer than --count {count}.",
                hint="Assign a profile to more devices (the MDM server's DEP sync does), or ask for fewer.",
            )
    else:
        serials = list(dict.fromkeys(serial))
    states = StateDirectory(state_dir)
    lock = threading.Lock()

    def progress(device_serial: str, text: str) -> None:
        with lock:
            stdout.print(f"{device_serial}: {text}")

    def report(result: BootResult) -> None:
        if not result.enrolled:
            progress(result.serial_number, f"FAILED at {result.step}: {result.reason}")

    booted = []
    for device_serial in serials:
        try:
            booted.append(
                SimulatedDevice(
                    sim_url=base_url,
                    serial_number=device_serial,
                    states=states,
                    trust=trust,
                    user=user,
                    password=password,
                    progress=progress,
                    rates=rates,
                )
            )
        except SetupFailed as exc:
            raise InvalidInput(f"{device_serial}: {exc.reason}.", hint="Check --state-dir.") from None
    stop = threading.Event()
    results: list[BootResult] = []
    runner = threading.Thread(
        target=lambda: results.extend(
            boot_devices(booted, concurrency=concurrency, stay=stop if stay else None, on_result=report)
        ),
        daemon=True,
    )
    runner.start()
    try:
        while runner.is_alive():
            runner.join(0.5)
    except KeyboardInterrupt:
        stop.set()
        stdout.print("Stopping: devices finish what they are doing.")
        runner.join()
    _summarise(results, total=len(booted))


def _summarise(results: Sequence[object], *, total: int) -> None:
    from pippin.sim.iphone.fleet import BootResult

    done = [r for r in results if isinstance(r, BootResult)]
    failed = [r for r in done if not r.enrolled]
    stdout.print(f"{len(done) - len(failed)} of {total} devices enrolled, {len(failed)} failed.")
    reasons: dict[str, int] = {}
    for result in failed:
        key = f"{result.step}: {result.reason}"
        reasons[key] = reasons.get(key, 0) + 1
    for reason, times in sorted(reasons.items(), key=lambda item: -item[1]):
        stdout.print(f"  {times} x {reason}")
    if failed or len(done) < total:
        raise typer.Exit(1)


def _http_url(value: str) -> str:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.query
        _ = parts.port  # raises for a port that is not a number
    except ValueError:
        valid = False
    if not valid:
        raise InvalidInput(
            "--sim-url is not an http(s) URL.", hint="Give the simulator's URL, e.g. --sim-url http://127.0.0.1:8081"
        )
    return value.rstrip("/")


def _trusted_cas(path: Path | None) -> list[x509.Certificate]:
    from cryptography import x509

    if path is None:
        return []
    try:
        found = x509.load_pem_x509_certificates(path.read_bytes())
    except OSError as exc:
        raise InvalidInput(f"cannot read --trust-ca {path}: {exc.strerror}.", hint="Give a PEM file.") from None
    except ValueError:
        raise InvalidInput(
            f"--trust-ca {path} holds no PEM certificate.", hint="Give a PEM file of CA certificates."
        ) from None
    return found
