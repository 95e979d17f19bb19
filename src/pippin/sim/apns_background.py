"""Run the simulated APNs server from an event loop in a thread of its own, beside a blocking HTTP server.

``pippin sim apple`` runs uvicorn in the main thread and this beside it; tests do the same. The push-token
registry the two share is thread-safe (:mod:`pippin.sim.apns_delivery`).
"""

from __future__ import annotations

import asyncio
import threading

from pippin.sim.apns_server import APNsServer


class BackgroundAPNs:
    """An :class:`APNsServer` listening on ``host:port`` (0: a free port, then in :attr:`port`) until :meth:`stop`."""

    def __init__(self, server: APNsServer, host: str, port: int, *, start_timeout: float = 30.0) -> None:
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._ready = threading.Event()
        self._failure: OSError | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._run, args=(server, host, port), name="apns", daemon=True)
        self._thread.start()
        if not self._ready.wait(start_timeout):
            raise OSError(f"the APNs server did not start within {start_timeout:g} s")
        if self._failure is not None:
            self._thread.join()
            self._loop.close()
            raise self._failure

    def _run(self, server: APNsServer, host: str, port: int) -> None:
        self._loop.run_until_complete(self._serve(server, host, port))
        self._loop.run_until_complete(self._loop.shutdown_default_executor())

    async def _serve(self, server: APNsServer, host: str, port: int) -> None:
        try:
            listener = await server.start(host, port)
        except (OSError, ValueError) as error:  # UnicodeError is a ValueError: a host name no resolver takes
            self._failure = error if isinstance(error, OSError) else OSError(f"{host!r} is not an address")
            self._ready.set()
            return
        self.port = listener.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            listener.close()
            connections = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in connections:
                task.cancel()
            await asyncio.gather(*connections, return_exceptions=True)
            await listener.wait_closed()

    def stop(self, timeout: float = 30.0) -> None:
        """Close the listener and every connection, and end the thread."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout)
        if not self._thread.is_alive():
            self._loop.close()
