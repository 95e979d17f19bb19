"""Real Chromium (Debian's package, never a downloaded browser) driving the console of a real Pippin server.

Pippin serves on a free loopback port with its Apple pointed at the ``sim`` fixture's simulator, on a SQLite
database. Tests skip, saying why, where Playwright or Chromium is missing, unless ``PIPPIN_REQUIRE_BROWSER=1``
(as in CI), which turns the skip into a failure. Screenshots go to ``var/screenshots/``; the path is printed at
the end of the run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest
from cryptography.fernet import Fernet

from pippin.admin import users as user_service
from pippin.config import Settings
from pippin.store.db import transaction
from tests.actors import TEST_ACTOR
from tests.servers import build_server, quick_password_hashes, resources_of, serve_in_thread, sqlite_copy
from tests.simulator import RunningSimulator

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
ADMIN_EMAIL = "new.admin@example.com"
ADMIN_PASSWORD = "a browser-typed passphrase"

Shoot = Callable[["Page", str], Path]


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("PIPPIN_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (PIPPIN_REQUIRE_BROWSER=1 requires the browser tests)", pytrace=False)
    pytest.skip(f"{reason}; install Debian's chromium and the test extras to run the browser tests")


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One Chromium for the browser tests, stopped when they end: Playwright's synchronous API keeps an event loop
    running on the main thread while it is open, which would break every later test that runs one of its own."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed")
    if not CHROMIUM.exists():
        _unavailable(f"Chromium is not installed at {CHROMIUM}")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()


@pytest.fixture
def database_url(tmp_path: Path, sqlite_template: Path) -> str:
    """SQLite only: the browser tests check what an admin sees, not the store (tested on both databases)."""
    return sqlite_copy(tmp_path, sqlite_template)


@pytest.fixture(autouse=True)
def _quick_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    quick_password_hashes(monkeypatch)


@dataclass(frozen=True)
class RunningPippin:
    base_url: str
    settings: Settings


@pytest.fixture
def pippin(tmp_path: Path, database_url: str, sim: RunningSimulator) -> Iterator[RunningPippin]:
    """`pippin serve`'s app on a loopback port, Apple being the simulator, with one admin account."""
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key=Fernet.generate_key().decode(),
        dep_base_url=sim.base_url,
        dep_max_retries=1,
        server_url="https://mdm.example.com",
    )
    server = build_server(settings)
    with transaction(resources_of(server).session_factory) as session:
        user_service.create_user(session, email=ADMIN_EMAIL, password=ADMIN_PASSWORD, actor=TEST_ACTOR)
    with serve_in_thread(server) as base_url:
        yield RunningPippin(base_url=base_url, settings=settings)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(10_000)
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture
def shoot(request: pytest.FixtureRequest) -> Shoot:
    """Save a full-page screenshot as ``var/screenshots/NAME.png`` for a reviewer to look at; each is recorded
    as the test's ``screenshot`` property, which the run's summary counts (tests/conftest.py)."""

    def save(page: Page, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        request.node.user_properties.append(("screenshot", str(path)))
        return path

    return save
