"""create_server: one set of resources, three sub-apps at their paths, each answering in its own contract,
and the jobs started and stopped with the server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from starlette.applications import Starlette

from pippin.config import Settings
from pippin.dep.errors import DEPAuthFailure
from pippin.server.app import create_server
from pippin.server.resources import ServerResources
from pippin.store.models import DEPToken, TokenStatus
from tests.servers import build_server, mounted_app, resources_of, serve_in_thread

FROZEN = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_the_root_leads_to_the_console(server: Starlette) -> None:
    with TestClient(server, follow_redirects=False) as client:
        for path in ("/", "/console"):
            answer = client.get(path)
            assert answer.status_code in (302, 307) and answer.headers["location"] == "/console/"


def test_each_sub_app_answers_an_unknown_path_in_its_own_contract(server: Starlette) -> None:
    with TestClient(server, raise_server_exceptions=False) as client:
        api = client.get("/nowhere")
        assert api.status_code == 404 and api.json()["error"] == "not_found"
        console = client.get("/console/nowhere")
        assert console.status_code == 404 and console.headers["content-type"].startswith("text/html")
        assert "Page not found" in console.text
        device = client.get("/mdm/nowhere")
        assert device.status_code == 404 and device.headers["content-type"].startswith("text/plain")
        assert "{" not in device.text and "<" not in device.text


def test_a_path_with_a_line_break_is_answered_by_its_sub_app(server: Starlette) -> None:
    # Starlette's mount pattern stops at a line break; such a path once got Starlette's bare text 404.
    with TestClient(server, raise_server_exceptions=False) as client:
        api = client.get("/nowhere%0Aelse")
        assert api.status_code == 404 and api.json()["error"] == "not_found"
        route = client.post("/api/v1/profiles/a%0Ab/assignments", json={"all_unassigned": True})
        assert route.status_code == 401 and route.json()["error"] == "unauthorized"
        console = client.get("/console/now%0Ahere")
        assert console.status_code == 404 and console.headers["content-type"].startswith("text/html")
        device = client.get("/mdm/now%0Ahere")
        assert device.status_code == 404 and device.headers["content-type"].startswith("text/plain")
        assert "{" not in device.text and "<" not in device.text


def test_each_sub_app_refuses_an_oversized_body_in_its_own_contract(server: Starlette) -> None:
    too_big = {"Content-Length": str(64 * 1024 * 1024)}
    with TestClient(server, raise_server_exceptions=False) as client:
        api = client.post("/api/v1/dep/tokens/acme/sync", content=b"x", headers=too_big)
        assert api.status_code == 413 and api.json()["error"] == "too_large"
        console = client.post("/console/sign-in", content=b"x", headers=too_big)
        assert console.status_code == 413 and console.headers["content-type"].startswith("text/html")
        assert "Nothing was changed" in console.text
        device = client.put("/mdm/checkin", content=b"x", headers=too_big)
        assert device.status_code == 413 and device.headers["content-type"].startswith("text/plain")


def test_the_api_documents_only_its_own_routes(server: Starlette) -> None:
    with TestClient(server) as client:
        paths = client.get("/api/openapi.json").json()["paths"]
    assert "/healthz" in paths and any(path.startswith("/api/v1/") for path in paths)
    assert not any(path.startswith(("/console", "/mdm")) for path in paths)


def test_every_sub_app_shares_the_one_set_of_resources(server: Starlette) -> None:
    resources = resources_of(server)
    for path in ("", "/console", "/mdm"):
        assert mounted_app(server, path).state.resources is resources


def test_injected_clients_reach_the_resources(settings: Settings) -> None:
    def fake_apple(token: object) -> object:
        raise AssertionError("not called here")

    def fixed_key() -> object:
        raise AssertionError("not called here")

    server = create_server(
        settings,
        open_dep_client=fake_apple,  # type: ignore[arg-type]
        clock=lambda: FROZEN,
        generate_key=fixed_key,  # type: ignore[arg-type]
    )
    resources = resources_of(server)
    try:
        assert resources.open_dep_client is fake_apple and resources.generate_key is fixed_key
        assert resources.clock() == FROZEN
    finally:
        resources.engine.dispose()


def test_without_injection_the_server_reaches_apple_through_the_token_service(server: Starlette) -> None:
    """The production factory refuses a token with no server token uploaded, before any call to Apple."""
    with pytest.raises(DEPAuthFailure) as refused:
        resources_of(server).open_dep_client(DEPToken(name="acme", status=TokenStatus.awaiting_token))
    assert refused.value.token_status == TokenStatus.awaiting_token
    assert resources_of(server).clock().tzinfo is not None


class _RecordedJob:
    """A job that records what it was started with and when it stopped."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.resources: ServerResources | None = None

    @contextmanager
    def __call__(self, resources: ServerResources) -> Iterator[None]:
        self.resources = resources
        self.events.append("started")
        try:
            yield
        finally:
            self.events.append("stopped")


def test_jobs_start_with_the_server_and_stop_with_it(settings: Settings) -> None:
    first, second = _RecordedJob(), _RecordedJob()
    server = build_server(settings, jobs=[first, second])
    assert first.events == [] and second.events == []
    with TestClient(server):
        assert first.events == ["started"] and second.events == ["started"]
        assert first.resources is resources_of(server)
    assert first.events == ["started", "stopped"] and second.events == ["started", "stopped"]


def test_a_job_that_fails_to_start_stops_those_already_started(settings: Settings) -> None:
    started = _RecordedJob()

    @contextmanager
    def broken(_resources: ServerResources) -> Iterator[None]:
        raise RuntimeError("the job could not start")
        yield

    server = build_server(settings, jobs=[started, broken])
    with pytest.raises(RuntimeError, match="could not start"), TestClient(server):
        pass
    assert started.events == ["started", "stopped"]


def test_an_engine_passed_in_is_left_to_its_owner_and_an_own_one_is_disposed(
    settings: Settings, engine: Engine
) -> None:
    given = build_server(settings, engine=engine)
    pool = engine.pool
    with TestClient(given) as client:
        assert client.get("/healthz").json()["database"] == "ok"
    assert engine.pool is pool, "the caller's engine keeps its pool"
    own = build_server(settings)
    own_engine = resources_of(own).engine
    own_pool = own_engine.pool
    with TestClient(own) as client:
        assert client.get("/healthz").json()["database"] == "ok"
    assert own_engine.pool is not own_pool, "dispose() replaced the pool of the engine the server opened"


def test_the_server_answers_over_real_http_with_its_jobs_running(settings: Settings) -> None:
    """What `pippin serve` runs, on a loopback port: the browser tests and real clients meet it this way."""
    job = _RecordedJob()
    with serve_in_thread(build_server(settings, jobs=[job])) as base_url, httpx.Client(base_url=base_url) as http:
        assert job.events == ["started"]
        assert http.get("/healthz").json()["status"] == "ok"
        assert http.put("/mdm/nowhere", content=b"<plist/>").status_code == 404
        assert http.get("/", follow_redirects=False).headers["location"] == "/console/"
    assert job.events == ["started", "stopped"]
