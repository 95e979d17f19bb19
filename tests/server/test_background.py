"""Work started by a request and finished after the answer runs with the server's own clients and clock."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from fastapi import BackgroundTasks
from sqlalchemy import select

from pippin.config import Settings
from pippin.dep.sync import start_sync
from pippin.dep.wire import DevicePage
from pippin.server.background import run_sync_after_response
from pippin.store.db import transaction
from pippin.store.models import DEPToken, Device, SyncOutcome, SyncRun
from tests.servers import build_server, resources_of

FROZEN = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class OnePageApple:
    """Apple with one device on one page; remembers which tokens it was opened for."""

    def __init__(self) -> None:
        self.opened_for: list[str] = []

    def __call__(self, token: DEPToken) -> OnePageApple:
        self.opened_for.append(token.name)
        return self

    def fetch_devices(self, *, cursor: str | None = None, limit: int | None = None) -> DevicePage:
        return DevicePage.model_validate({"devices": [{"serial_number": "NEW1"}], "cursor": "f1"})

    def sync_devices(self, *, cursor: str, limit: int | None = None) -> DevicePage:
        return DevicePage.model_validate({"devices": [], "cursor": "s1"})

    def close(self) -> None:
        pass


def _after_the_answer(background: BackgroundTasks) -> None:
    """Run the tasks as the server does once the answer is out: on an event loop, here one of their own."""
    with ThreadPoolExecutor(max_workers=1) as worker:
        worker.submit(asyncio.run, background()).result()


def test_a_sync_after_the_answer_uses_the_injected_apple_and_clock(settings: Settings) -> None:
    apple = OnePageApple()
    server = build_server(settings, open_dep_client=apple, clock=lambda: FROZEN)
    resources = resources_of(server)
    try:
        with transaction(resources.session_factory) as session:
            session.add(DEPToken(name="acme", status="ok", credentials_encrypted=b"sealed"))
        with transaction(resources.session_factory) as session:
            started = start_sync(session, token_name="acme", settings=settings, full=True, now=FROZEN)
        background = BackgroundTasks()
        run_sync_after_response(background, resources, run_id=started.id)
        assert apple.opened_for == [], "nothing runs before the answer is sent"
        _after_the_answer(background)
        assert apple.opened_for == ["acme"]
        with transaction(resources.session_factory) as session:
            run = session.get_one(SyncRun, started.id)
            assert run.outcome == SyncOutcome.succeeded and run.finished_at == FROZEN
            device = session.scalars(select(Device).where(Device.serial_number == "NEW1")).one()
            assert device.last_synced_at == FROZEN
            token = session.scalars(select(DEPToken)).one()
            assert token.next_sync_at == FROZEN + settings.dep_sync_interval
    finally:
        resources.engine.dispose()
