"""The simulated APNs provider API: HTTP/2 over TLS, authenticated by the MDM push certificate (reference 5).

Served with ``h2`` straight over ``asyncio`` and ``ssl`` (updates section 1: no ASGI server hands an app the TLS
client certificate, which is what APNs authenticates by). Each connection: TLS with a client-certificate request
(:mod:`pippin.sim.apns_tls`), the certificate's topic (:mod:`pippin.sim.apns_identity`), then HTTP/2 streams, each
one push: faults drawn as for the DEP API (:mod:`pippin.sim.faults`, endpoint ``post_apns_device``), Apple's
header rules (:mod:`pippin.sim.apns_requests`), and the token's registration and store-and-forward
(:mod:`pippin.sim.apns_delivery`).

The trusted push CAs come from a callable, read once per connection, so the CA that issues push certificates
(the Push Certificates Portal's) is owned elsewhere and can change while the server runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pippin.sim.apns_delivery import APNsDelivery, Notification
from pippin.sim.apns_identity import PushIdentity, identify
from pippin.sim.apns_requests import (
    MAX_PAYLOAD_BYTES,
    APNsRejection,
    RawRequest,
    check_push,
    check_route,
    request_id,
)
from pippin.sim.apns_tls import ServerTLS, server_context
from pippin.sim.faults import APNS_ENDPOINT, FaultDecision, decide
from pippin.sim.state import SimState
from pippin.sim.tls_stream import TLSStream

TrustedPushCAs = Callable[[], Sequence[x509.Certificate]]

HANDSHAKE_TIMEOUT_SECONDS = 10.0
#: Apple's SETTINGS_MAX_CONCURRENT_STREAMS for certificate connections.
MAX_CONCURRENT_STREAMS = 1000
MAX_HEADER_LIST_BYTES = 16 * 1024
GOAWAY_DEBUG_DATA = b'{"reason":"Shutdown"}'


@dataclass
class _Stream:
    headers: list[tuple[bytes, bytes]]
    body: bytearray = field(default_factory=bytearray)
    received: int = 0
    answered: bool = False


class APNsServer:
    """The provider API on one listening socket (:meth:`start`), sharing ``delivery`` with the device routes."""

    def __init__(
        self, *, state: SimState, delivery: APNsDelivery, tls: ServerTLS, trusted_push_cas: TrustedPushCAs
    ) -> None:
        self.state = state
        self.delivery = delivery
        self._tls = tls
        self._trusted_push_cas = trusted_push_cas
        self._contexts: dict[tuple[str, ...], ssl.SSLContext] = {}
        #: The faults revision at which the database held no fault configuration (None: not known).
        self._quiet_revision: int | None = None

    async def start(self, host: str, port: int) -> asyncio.Server:
        """Listen on ``host:port`` (0: a free port); serve until the returned server is closed."""
        return await asyncio.start_server(self._on_connection, host, port)

    def _context(self, cas: Sequence[x509.Certificate]) -> ssl.SSLContext:
        key = tuple(sorted(hashlib.sha256(ca.public_bytes(serialization.Encoding.DER)).hexdigest() for ca in cas))
        context = self._contexts.get(key)
        if context is None:
            context = server_context(self._tls, cas)
            self._contexts = {key: context}  # only the current set of CAs is kept
        return context

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._serve_connection(reader, writer)
        except asyncio.CancelledError:
            pass  # the server stops; ending quietly spares asyncio's "exception never retrieved" report
        finally:
            # Whatever ended it (the client, a fault, the server stopping): the socket is closed, never leaked.
            if not writer.transport.is_closing():
                writer.transport.abort()

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            cas = list(self._trusted_push_cas())
            context = self._context(cas)
        except Exception:  # the CAs come from elsewhere: whatever breaks there, trust no certificate
            cas = []
            context = self._context(cas)
        tls = TLSStream(reader, writer, context)
        try:
            await tls.handshake(HANDSHAKE_TIMEOUT_SECONDS)
        except (OSError, TimeoutError):  # ssl.SSLError included
            # An untrusted or expired push certificate: the client has TLS's alert; nothing more to say.
            tls.abort()
            return
        identity = identify(tls.peer_certificate(), trusted_push_cas=cas, now=self.state.clock.now())
        if identity.expired:
            # Expired on the simulator's clock (TLS judged the real one): Apple would have failed the handshake.
            tls.abort()
            return
        await _Connection(self, tls, identity).run()

    def faults_are_off(self) -> bool:
        """True while no fault configuration was set since the database was last seen without one."""
        return self._quiet_revision == self.state.faults_revision

    def draw_faults(self) -> FaultDecision:
        """This push's faults, with their progress saved (the same store and schema as the DEP API's)."""
        revision = self.state.faults_revision
        with self.state.transaction() as session:
            org = self.state.organization(session)
            stored = org.faults or {}
            if not stored.get("config"):
                self._quiet_revision = revision
                return FaultDecision()
            self._quiet_revision = None
            decision, updated = decide(stored, APNS_ENDPOINT)
            org.faults = updated
        return decision

    def accept(self, request: RawRequest, token: str, topic: str) -> str:
        """Check and deliver one push; its ``apns-id``, or :class:`APNsRejection` with Apple's reason."""
        push = check_push(request, token=token, certificate_topic=topic)
        record = self.delivery.find(push.token)
        if record is None:
            raise APNsRejection(400, "BadDeviceToken")  # never issued (or issued by another environment)
        if record.topic != push.topic:
            raise APNsRejection(400, "DeviceTokenNotForTopic")
        if record.unregistered_at is not None:
            raise APNsRejection(410, "Unregistered", timestamp=record.unregistered_at)
        notification = Notification(
            apns_id=push.apns_id,
            payload=push.payload,
            topic=push.topic,
            push_type=push.push_type,
            priority=push.priority,
            expires_at=push.expires_at,
            received_at=self.delivery.now(),
        )
        self.delivery.push(push.token, notification)
        return push.apns_id


class _Connection:
    """One provider connection: an HTTP/2 server state machine fed from the socket, a task per push."""

    def __init__(self, server: APNsServer, tls: TLSStream, identity: PushIdentity) -> None:
        self.server = server
        self.tls = tls
        self.identity = identity
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.h2 = h2.connection.H2Connection(config=config)
        self.streams: dict[int, _Stream] = {}
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.unsent: dict[int, bytes] = {}
        self.closing = False

    async def run(self) -> None:
        self.h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: MAX_CONCURRENT_STREAMS,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST_BYTES,
            },
        )
        self.h2.initiate_connection()
        try:
            await self._flush()
            while not self.closing:
                data = await self.tls.read()
                if not data:
                    break
                try:
                    events = self.h2.receive_data(data)
                except h2.exceptions.ProtocolError as error:
                    # Not HTTP/2 (an HTTP/1.1 client) or a broken frame: GOAWAY with the error, then close.
                    if self.h2.state_machine.state is not h2.connection.ConnectionState.CLOSED:
                        self.h2.close_connection(error_code=error.error_code)  # h2 has not sent one itself
                    await self._flush()
                    break
                for event in events:
                    self._on_event(event)
                await self._flush()
        except (ConnectionError, OSError):  # ssl.SSLError included: the client broke the connection
            pass
        finally:
            for task in list(self.tasks.values()):
                task.cancel()
            await self.tls.close()

    def _on_event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived) and event.stream_id is not None:
            # A request without a body ends its stream in the same frame: h2 reports StreamEnded next.
            self.streams[event.stream_id] = _Stream(headers=[(bytes(k), bytes(v)) for k, v in event.headers or []])
        elif isinstance(event, h2.events.DataReceived) and event.stream_id is not None:
            self._on_data(event.stream_id, event.data or b"", event.flow_controlled_length or 0)
        elif isinstance(event, h2.events.StreamEnded) and event.stream_id is not None:
            self._start(event.stream_id)
        elif isinstance(event, h2.events.StreamReset) and event.stream_id is not None:
            self.streams.pop(event.stream_id, None)
            self.unsent.pop(event.stream_id, None)
            task = self.tasks.pop(event.stream_id, None)
            if task is not None:
                task.cancel()
        elif isinstance(event, h2.events.WindowUpdated):
            self._send_unsent()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.closing = True

    def _on_data(self, stream_id: int, data: bytes, flow_controlled: int) -> None:
        if flow_controlled:
            self.h2.acknowledge_received_data(flow_controlled, stream_id)
        stream = self.streams.get(stream_id)
        if stream is None or stream.answered:
            return
        stream.received += len(data)
        if stream.received <= MAX_PAYLOAD_BYTES:
            stream.body += data
            return
        # Past the limit: answer now, and read the rest only to throw it away (flow control keeps that cheap), so
        # that a client which sends its whole body before reading hears 413, not a reset.
        self.server.delivery.record_rejection("PayloadTooLarge")
        self._respond(stream_id, APNsRejection(413, "PayloadTooLarge"), request_id(RawRequest(stream.headers, b"")))

    def _start(self, stream_id: int) -> None:
        stream = self.streams.get(stream_id)
        if stream is None or stream.answered or stream_id in self.tasks:
            return
        request = RawRequest(stream.headers, bytes(stream.body), too_large=stream.received > MAX_PAYLOAD_BYTES)
        self.tasks[stream_id] = asyncio.create_task(self._answer(stream_id, request))

    async def _answer(self, stream_id: int, request: RawRequest) -> None:
        apns_id = request_id(request)
        try:
            token = check_route(request)
            if self.identity.refusal is not None or self.identity.topic is None:
                raise APNsRejection(403, self.identity.refusal or "BadCertificate")
            off = self.server.faults_are_off()
            decision = FaultDecision() if off else await asyncio.to_thread(self.server.draw_faults)
            if decision.delay_seconds:
                await asyncio.sleep(decision.delay_seconds)
            if decision.drop_connection:
                self.closing = True
                self.tls.abort()
                return
            if decision.goaway:
                await self._go_away(stream_id)
                return
            if decision.error is not None:
                raise APNsRejection(decision.error.status, decision.error.code)
            apns_id = self.server.accept(request, token, self.identity.topic)
            self._respond(stream_id, None, apns_id)
        except APNsRejection as rejection:
            self.server.delivery.record_rejection(rejection.reason)
            self._respond(stream_id, rejection, apns_id)
        finally:
            self.tasks.pop(stream_id, None)
        with contextlib.suppress(ConnectionError, OSError):
            await self._flush()

    def _respond(self, stream_id: int, rejection: APNsRejection | None, apns_id: str) -> None:
        stream = self.streams.get(stream_id)
        if stream is None or stream.answered or self.closing:
            return
        stream.answered = True
        body = b"" if rejection is None else rejection.body()
        headers = [(":status", str(200 if rejection is None else rejection.status)), ("apns-id", apns_id)]
        if body:
            headers += [("content-type", "application/json"), ("content-length", str(len(body)))]
        try:
            self.h2.send_headers(stream_id, headers, end_stream=not body)
        except h2.exceptions.StreamClosedError:
            self.streams.pop(stream_id, None)
            return
        if body:
            self.unsent[stream_id] = body
            self._send_unsent()
        else:
            self.streams.pop(stream_id, None)

    def _send_unsent(self) -> None:
        """Send waiting bodies as far as the client's flow-control windows allow (a hostile client may shut them)."""
        for stream_id, body in list(self.unsent.items()):
            try:
                window = self.h2.local_flow_control_window(stream_id)
                if window < len(body) or self.h2.max_outbound_frame_size < len(body):
                    continue
                self.h2.send_data(stream_id, body, end_stream=True)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                pass
            self.unsent.pop(stream_id, None)
            self.streams.pop(stream_id, None)

    async def _go_away(self, stream_id: int) -> None:
        """End the connection as Apple does when it shuts a server down: GOAWAY, this push not processed."""
        self.closing = True
        self.h2.close_connection(additional_data=GOAWAY_DEBUG_DATA, last_stream_id=max(stream_id - 2, 0))
        with contextlib.suppress(ConnectionError, OSError):
            await self._flush()
        await self.tls.close()

    async def _flush(self) -> None:
        data = self.h2.data_to_send()
        if data:
            await self.tls.write(data)
