"""A small HTTP/2 server over TLS that asks for a client certificate, to test the APNs client on a real wire.

Not a model of APNs (the simulator is that): it checks what only a real connection shows, that the client
negotiates HTTP/2 by ALPN, presents the push certificate, reuses one connection, and reads a refused handshake
for what it is. Each request is answered by ``answer(path, headers, body)``; every connection and request is kept.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path
from types import TracebackType

import h2.config
import h2.connection
import h2.events
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

#: (status, extra headers, body) for one request.
Answer = tuple[int, list[tuple[str, str]], bytes]
Responder = Callable[[str, dict[str, str], bytes], Answer]


def _ok(_path: str, _headers: dict[str, str], _body: bytes) -> Answer:
    return 200, [("apns-id", "00000000-0000-4000-8000-000000000001")], b""


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    connection: int
    client_certificate: bytes | None


@dataclass
class _State:
    connections: int = 0
    refused_handshakes: int = 0
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _server_certificate(folder: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate it signed for 127.0.0.1; returns (CA file, certificate file, key file)."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test APNs CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_file, cert_file, key_file


class TLSAPNs:
    """Serves on 127.0.0.1 until closed; trusts only the client certificates in ``trusted_clients`` (PEM)."""

    def __init__(self, folder: Path, *, trusted_clients: bytes, answer: Responder = _ok) -> None:
        self.ca_file, cert_file, key_file = _server_certificate(folder)
        self.answer = answer
        self.state = _State()
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert_file, key_file)
        self._context.set_alpn_protocols(["h2"])
        self._context.verify_mode = ssl.CERT_REQUIRED
        self._context.load_verify_locations(cadata=trusted_clients.decode())
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.base_url = f"https://127.0.0.1:{self._listener.getsockname()[1]}"
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    @property
    def connections(self) -> int:
        return self.state.connections

    @property
    def received(self) -> list[Received]:
        with self.state.lock:
            return list(self.state.received)

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(raw,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            tls = self._context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            with self.state.lock:
                self.state.refused_handshakes += 1
            raw.close()
            return
        with self.state.lock:
            self.state.connections += 1
            number = self.state.connections
        peer = tls.getpeercert(binary_form=True)
        connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        connection.initiate_connection()
        streams: dict[int, tuple[dict[str, str], bytearray]] = {}
        try:
            tls.sendall(connection.data_to_send())
            while not self._closing.is_set():
                data = tls.recv(65536)
                if not data:
                    return
                for event in connection.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        streams[event.stream_id] = ({str(k): str(v) for k, v in event.headers or []}, bytearray())
                    elif isinstance(event, h2.events.DataReceived):
                        streams[event.stream_id][1].extend(event.data or b"")
                        connection.acknowledge_received_data(event.flow_controlled_length or 0, event.stream_id)
                    elif isinstance(event, h2.events.StreamEnded):
                        headers, body = streams.pop(event.stream_id or 0)
                        self._respond(connection, event.stream_id or 0, headers, bytes(body), number, peer)
                    elif isinstance(event, h2.events.ConnectionTerminated):
                        return
                tls.sendall(connection.data_to_send())
        except (OSError, ssl.SSLError):
            return
        finally:
            tls.close()

    def _respond(
        self,
        connection: h2.connection.H2Connection,
        stream: int,
        headers: dict[str, str],
        body: bytes,
        number: int,
        peer: bytes | None,
    ) -> None:
        path = headers.get(":path", "")
        with self.state.lock:
            self.state.received.append(Received(path, headers, body, number, peer))
        status, extra, content = self.answer(path, headers, body)
        response = [(":status", str(status)), ("content-length", str(len(content))), *extra]
        connection.send_headers(stream, response, end_stream=not content)
        if content:
            connection.send_data(stream, content, end_stream=True)

    def close(self) -> None:
        self._closing.set()
        self._listener.close()

    def __enter__(self) -> TLSAPNs:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
