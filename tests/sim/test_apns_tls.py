"""The simulated APNs' TLS: its CA (served and persisted), and push certificates judged as Apple judges them.

An expired or untrusted push certificate fails the TLS handshake, as at Apple (reference section 5). With TLS 1.2
the client sees the failure while connecting; with TLS 1.3 the client's certificate is checked after the client
has finished its half of the handshake, so the failure arrives as the server's alert on the first read.
"""

from __future__ import annotations

import socket
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from pippin.sim.apns_delivery import APNsDelivery
from pippin.sim.state import open_state
from tests.sim.apns import APNsWorld
from tests.sim.push_certs import PushCA, PushCertificate, client_context
from tests.simulator import run_apns

SETTINGS, GOAWAY = 0x4, 0x7


def frame_types(data: bytes) -> list[int]:
    """The types of the HTTP/2 frames in ``data`` (9-byte headers: length, type, flags, stream)."""
    types = []
    while len(data) >= 9:
        length = int.from_bytes(data[:3], "big")
        types.append(data[3])
        data = data[9 + length :]
    assert data == b""
    return types


def expired(world: APNsWorld) -> PushCertificate:
    now = datetime.now(UTC)
    return world.ca.issue(not_before=now - timedelta(days=400), not_after=now - timedelta(days=1))


def test_the_tls_ca_is_served_over_http_and_is_what_the_server_certificate_chains_to(apns: APNsWorld) -> None:
    response = apns.sim.portal.get("/apns/ca.pem")
    assert response.status_code == 200 and response.headers["content-type"] == "application/x-pem-file"
    assert response.content == apns.apns.ca_path.read_bytes()
    ca = x509.load_pem_x509_certificate(response.content)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    with socket.create_connection(("127.0.0.1", apns.apns.port)) as raw:
        context = ssl.create_default_context(cadata=response.text)
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.getpeercert() is not None  # verified against the served CA, hostname included
            server_cert = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True) or b"")
    assert server_cert.issuer == ca.subject
    names = server_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)


def test_the_tls_ca_is_kept_across_restarts_of_the_simulator(tmp_path: Path) -> None:
    directory = tmp_path
    first = open_state(directory)
    with run_apns(first, APNsDelivery(first), list) as running:
        pem = running.ca_path.read_bytes()
    first.engine.dispose()
    second = open_state(directory)
    with run_apns(second, APNsDelivery(second), list) as running:
        assert running.ca_path.read_bytes() == pem
    second.engine.dispose()
    assert oct((directory / "apns-tls-ca.key").stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_an_expired_push_certificate_fails_the_handshake(apns: APNsWorld, version: ssl.TLSVersion) -> None:
    token = apns.register()
    with apns.client(expired(apns), tls_version=version) as provider, pytest.raises(httpx.TransportError) as caught:
        provider.push(token)
    assert "CERTIFICATE_EXPIRED" in str(caught.value).upper() or version is ssl.TLSVersion.TLSv1_3
    assert apns.stats(token)["received"] == 0


def test_with_tls_1_2_the_expired_certificate_is_refused_by_an_alert_while_connecting(apns: APNsWorld) -> None:
    context = client_context(apns.apns.ca_path, expired(apns), apns.files, tls_version=ssl.TLSVersion.TLSv1_2)
    with (
        socket.create_connection(("127.0.0.1", apns.apns.port)) as raw,
        pytest.raises(ssl.SSLError, match=r"(?i)certificate expired"),
    ):
        context.wrap_socket(raw, server_hostname="127.0.0.1")


def test_a_certificate_not_yet_valid_fails_the_handshake(apns: APNsWorld) -> None:
    later = datetime.now(UTC) + timedelta(days=2)
    push = apns.ca.issue(not_before=later, not_after=later + timedelta(days=365))
    with apns.client(push, tls_version=ssl.TLSVersion.TLSv1_2) as provider, pytest.raises(httpx.ConnectError):
        provider.push(apns.register())


def test_a_certificate_from_an_untrusted_ca_fails_the_handshake(apns: APNsWorld) -> None:
    stranger = PushCA.create("Not Apple").issue(apns.push.topic)
    token = apns.register()
    with (
        apns.client(stranger, tls_version=ssl.TLSVersion.TLSv1_2) as provider,
        pytest.raises(httpx.ConnectError, match=r"(?i)unknown ca"),
    ):
        provider.push(token)
    with apns.client(stranger) as provider, pytest.raises(httpx.TransportError):
        provider.push(token)
    assert apns.stats(token)["received"] == 0


def test_the_trusted_push_cas_are_read_for_each_connection(apns: APNsWorld) -> None:
    successor = PushCA.create("Next Apple Push CA")
    push = successor.issue(apns.push.topic)
    token = apns.register()
    with apns.client(push, tls_version=ssl.TLSVersion.TLSv1_2) as provider, pytest.raises(httpx.ConnectError):
        provider.push(token)
    apns.trusted.append(successor.certificate)
    with apns.client(push) as provider:
        assert provider.push(token).status_code == 200
    apns.trusted.remove(apns.ca.certificate)
    with apns.client(tls_version=ssl.TLSVersion.TLSv1_2) as provider, pytest.raises(httpx.ConnectError):
        provider.push(token)


def test_a_certificate_that_expires_on_the_simulators_clock_is_refused_before_any_answer(
    fresh_apns: APNsWorld,
) -> None:
    token = fresh_apns.register()
    with fresh_apns.client() as provider:
        assert provider.push(token).status_code == 200
    fresh_apns.sim.state.advance_clock(366 * 24 * 3600)  # past the push certificate's not-after
    with fresh_apns.client() as provider, pytest.raises(httpx.TransportError):
        provider.push(token)
    assert fresh_apns.stats(token)["received"] == 1


def test_an_http_1_1_client_gets_no_answer_but_a_broken_connection(apns: APNsWorld) -> None:
    token = apns.register()
    context = client_context(apns.apns.ca_path, apns.push, apns.files)
    with (
        httpx.Client(base_url=apns.apns.url, verify=context, http2=False) as http1,
        pytest.raises(httpx.TransportError),
    ):
        http1.post(f"/3/device/{token}", content=b'{"mdm":"x"}')
    assert apns.stats(token)["received"] == 0


def test_garbage_instead_of_http2_closes_the_connection_and_the_server_keeps_serving(apns: APNsWorld) -> None:
    context = client_context(apns.apns.ca_path, apns.push, apns.files, alpn=["h2"])
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    data_on_stream_zero = b"\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00"
    for garbage in (b"\x00" * 100, preface + data_on_stream_zero, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"):
        with (
            socket.create_connection(("127.0.0.1", apns.apns.port)) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.settimeout(30)
            tls.sendall(garbage)
            received = b""
            while chunk := tls.recv(65536):
                received += chunk
        assert frame_types(received) == [SETTINGS, GOAWAY]
    with apns.client() as provider:
        assert provider.push(apns.register()).status_code == 200


def test_a_client_that_never_finishes_the_handshake_does_not_stop_others(apns: APNsWorld) -> None:
    with socket.create_connection(("127.0.0.1", apns.apns.port)) as silent:
        silent.sendall(b"\x16\x03\x01")  # the start of a ClientHello, then nothing
        with apns.client() as provider:
            assert provider.push(apns.register()).status_code == 200


def test_when_the_trusted_cas_cannot_be_read_no_certificate_is_trusted(apns: APNsWorld, tmp_path: Path) -> None:
    def broken() -> list[x509.Certificate]:
        raise OSError("the portal's CA file is gone")

    with run_apns(apns.sim.state, apns.apns.delivery, broken) as running:
        context = client_context(running.ca_path, apns.push, apns.files, tls_version=ssl.TLSVersion.TLSv1_2)
        with (
            httpx.Client(base_url=running.url, verify=context, http2=True) as provider,
            pytest.raises(httpx.ConnectError, match=r"(?i)unknown ca"),
        ):
            provider.post(f"/3/device/{apns.register()}", content=b'{"mdm":"x"}')
