"""Fetch speed of the simulated DEP service: 10,000 and then 200,000 assigned devices, in 1000-device pages.

Runs `pippin sim apple` as its own process on a free port with a fresh state directory, then does what an
admin and a DEP client do, over HTTP only:
1. add an MDM server with a new RSA-2048 certificate, download its token, decrypt it (cryptography);
2. create the devices and assign them in bulk through the portal (timed: seconds, not minutes);
3. open an OAuth 1.0a session (oauthlib, HMAC-SHA1) and fetch every device with POST /server/devices,
   limit 1000, following the cursor until more_to_follow is false.
Pages per second should be about equal for both sizes (a page's cost must not grow with the server's size).
Prints a line per stage and, last, one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, Client

PAGE = 1000
BATCH = 100_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def key_and_certificate() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench-depserver")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=10))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def token_credentials(
    portal: httpx.Client, server_uuid: str, key: rsa.RSAPrivateKey, cert: x509.Certificate
) -> dict[str, str]:
    """Download the server token and decrypt it as an MDM does (reference 1.2-1.3)."""
    p7m = portal.get(f"/portal/mdm-servers/{server_uuid}/token").raise_for_status().content
    message = pkcs7.pkcs7_decrypt_smime(p7m, cert, key, [])
    line = message.split(b"-----BEGIN MESSAGE-----")[1].split(b"-----END MESSAGE-----")[0]
    credentials: dict[str, str] = json.loads(line)
    return credentials


def setup_server(portal: httpx.Client, name: str, count: int) -> tuple[str, dict[str, str], dict[str, float]]:
    """An MDM server with ``count`` freshly created devices assigned; returns its uuid, token and timings."""
    key, cert = key_and_certificate()
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    server_uuid = (
        portal.post(
            "/portal/mdm-servers", json={"name": name, "public_key_pem": pem, "admin_apple_id": "bench@example.com"}
        )
        .raise_for_status()
        .json()["server_uuid"]
    )
    credentials = token_credentials(portal, server_uuid, key, cert)
    started = time.perf_counter()
    serials: list[str] = []
    while len(serials) < count:
        batch = min(BATCH, count - len(serials))
        serials += portal.post("/portal/devices", json={"count": batch}).raise_for_status().json()["serials"]
    created = time.perf_counter()
    for start in range(0, count, BATCH):
        chunk = serials[start : start + BATCH]
        portal.post("/portal/assignments", json={"server_uuid": server_uuid, "serials": chunk}).raise_for_status()
    assigned = time.perf_counter()
    return server_uuid, credentials, {"create_s": created - started, "assign_s": assigned - created}


def open_session(base_url: str, credentials: dict[str, str], http: httpx.Client) -> str:
    client = Client(
        credentials["consumer_key"],
        client_secret=credentials["consumer_secret"],
        resource_owner_key=credentials["access_token"],
        resource_owner_secret=credentials["access_secret"],
        signature_method=SIGNATURE_HMAC_SHA1,
        realm="ADM",
    )
    _, headers, _ = client.sign(f"{base_url}/session", http_method="GET")
    response = http.get("/session", headers={"Authorization": headers["Authorization"]}).raise_for_status()
    token: str = response.json()["auth_session_token"]
    return token


def fetch_all(base_url: str, credentials: dict[str, str]) -> dict[str, Any]:
    """Every device of the token's server through POST /server/devices; pages per second."""
    headers = {"User-Agent": "pippin-bench/1.0", "X-Server-Protocol-Version": "10"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as http:
        session_token = open_session(base_url, credentials, http)
        cursor: str | None = None
        pages = devices = 0
        page_times: list[float] = []
        started = time.perf_counter()
        while True:
            body: dict[str, Any] = {"limit": PAGE} | ({"cursor": cursor} if cursor else {})
            page_started = time.perf_counter()
            response = http.post("/server/devices", json=body, headers={"X-ADM-Auth-Session": session_token})
            page_times.append(time.perf_counter() - page_started)
            if response.status_code == 401:  # session expired mid-fetch: renew, as a client does
                session_token = open_session(base_url, credentials, http)
                continue
            page = response.raise_for_status().json()
            session_token = response.headers.get("X-ADM-Auth-Session", session_token)
            pages, devices, cursor = pages + 1, devices + len(page["devices"]), page["cursor"]
            if not page["more_to_follow"]:
                break
        elapsed = time.perf_counter() - started
    # The median page is what a page costs; the total also carries whatever else the shared machine did.
    median = statistics.median(page_times)
    return {
        "pages": pages,
        "devices": devices,
        "fetch_s": elapsed,
        "pages_per_s": pages / elapsed,
        "median_page_ms": median * 1000,
        "pages_per_s_at_median": 1 / median,
    }


def wait_until_answering(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit("pippin sim apple exited during start-up")
        try:
            if httpx.get(f"{base_url}/portal/terms", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    sys.exit("pippin sim apple did not answer within 60 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="10000,200000", help="comma-separated device counts (default 10000,200000)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    pippin = str(Path(sys.executable).with_name("pippin"))
    results: dict[str, Any] = {"bench": "sim_fetch", "page_size": PAGE, "runs": []}
    with tempfile.TemporaryDirectory(prefix="pippin-bench-sim-") as data:
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        process = subprocess.Popen(
            [pippin, "sim", "apple", "--port", str(port), "--data", data, "--apns-port", "0"], stdout=subprocess.DEVNULL
        )
        try:
            wait_until_answering(base_url, process)
            with httpx.Client(base_url=base_url, timeout=600) as portal:
                for size in sizes:
                    _, credentials, setup = setup_server(portal, f"bench-{size}", size)
                    print(
                        f"{size:>7} devices: created in {setup['create_s']:.1f} s, "
                        f"assigned in {setup['assign_s']:.1f} s"
                    )
                    fetched = fetch_all(base_url, credentials)
                    if fetched["devices"] != size:
                        sys.exit(f"fetched {fetched['devices']} devices of {size}")
                    print(
                        f"{size:>7} devices: fetched {fetched['pages']} pages in {fetched['fetch_s']:.1f} s "
                        f"= {fetched['pages_per_s']:.1f} pages/s (median page {fetched['median_page_ms']:.0f} ms "
                        f"= {fetched['pages_per_s_at_median']:.1f} pages/s)"
                    )
                    results["runs"].append({"devices": size, **setup, **fetched})
        finally:
            process.terminate()
            process.wait(timeout=30)
    runs = results["runs"]
    if len(runs) >= 2:
        results["pages_per_s_ratio_last_to_first"] = runs[-1]["pages_per_s"] / runs[0]["pages_per_s"]
        results["median_page_ratio_last_to_first"] = runs[-1]["median_page_ms"] / runs[0]["median_page_ms"]
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
