"""Server-side TLS over an asyncio stream pair, through memory BIOs, so that a refused handshake sends its alert.

asyncio's own ``start_tls`` drops what OpenSSL wrote when a handshake fails, so a client with an expired push
certificate would see a bare EOF; Apple's client sees a TLS alert (reference section 5: "An expired push cert
shows up as a TLS handshake error"). Driving an :class:`ssl.SSLObject` by hand keeps every byte OpenSSL produces,
the alert included, and gives ``getpeercert(binary_form=True)``: the push certificate the connection presented.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

READ_SIZE = 65536


class TLSStream:
    """One accepted connection, wrapped in TLS by :meth:`handshake`; then :meth:`read` and :meth:`write` plaintext."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, context: ssl.SSLContext) -> None:
        self._reader = reader
        self._writer = writer
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self.ssl_object = context.wrap_bio(self._incoming, self._outgoing, server_side=True)

    async def _flush(self) -> None:
        data = self._outgoing.read()
        if data:
            self._writer.write(data)
            await self._writer.drain()

    async def _fill(self) -> None:
        data = await self._reader.read(READ_SIZE)
        if data:
            self._incoming.write(data)
        else:
            self._incoming.write_eof()

    async def handshake(self, timeout: float) -> None:
        """Complete the server's handshake within ``timeout`` seconds; raises ``ssl.SSLError`` after sending the
        alert when the client's certificate (or anything else) is refused, ``TimeoutError`` for a silent client."""
        async with asyncio.timeout(timeout):
            while True:
                try:
                    self.ssl_object.do_handshake()
                except ssl.SSLWantReadError:
                    await self._flush()
                    await self._fill()
                    continue
                except ssl.SSLError:
                    with contextlib.suppress(ConnectionError, OSError):
                        await self._flush()  # the alert
                    raise
                await self._flush()
                return

    def peer_certificate(self) -> bytes | None:
        """The DER of the client's certificate, or None when it sent none."""
        return self.ssl_object.getpeercert(binary_form=True)

    def selected_protocol(self) -> str | None:
        return self.ssl_object.selected_alpn_protocol()

    async def read(self) -> bytes:
        """The next plaintext; ``b""`` once the client closed the connection (cleanly or not)."""
        while True:
            try:
                return self.ssl_object.read(READ_SIZE)
            except ssl.SSLWantReadError:
                await self._flush()
                await self._fill()
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    async def write(self, data: bytes) -> None:
        self.ssl_object.write(data)
        await self._flush()

    def abort(self) -> None:
        """Reset the connection now (no close_notify): a dropped connection as the client sees it."""
        self._writer.transport.abort()

    async def close(self) -> None:
        """Send close_notify when the connection still allows it, then close the socket."""
        with contextlib.suppress(ConnectionError, OSError, ssl.SSLError):
            with contextlib.suppress(ssl.SSLWantReadError):
                self.ssl_object.unwrap()
            await self._flush()
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()
