"""Manual enrollment links: `pippin enroll link` prints a URL whose profile allows N enrollments until it
expires, `pippin enroll profile` writes the same to a file, `pippin enroll links` counts what is left; the URL
refuses clearly once expired or used up. Both databases; the clock is the test's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.applications import Starlette

from pippin.config import Settings
from pippin.errors import InvalidInput
from pippin.mdm import enrollment_links as link_service
from pippin.mdm.enrollment_profile import NoPushCertificate
from pippin.pki.authority import load_authority
from pippin.pki.challenges import ChallengeRefused, redeem_challenge
from pippin.store.db import transaction
from pippin.store.models import AuditEvent, EnrollmentChallenge, EnrollmentLink
from tests.actors import TEST_ACTOR
from tests.clocks import Clock
from tests.mdm.enrollment_setup import NOW, activate_push_certificate
from tests.mdm.profiles import payloads_by_type, read_profile
from tests.servers import build_server, resources_of


@pytest.fixture
def server(settings: Settings) -> Iterator[tuple[Starlette, Clock]]:
    clock = Clock(NOW)
    server = build_server(settings.model_copy(update={"server_url": "https://mdm.example.com"}), clock=clock)
    with resources_of(server).session_factory() as session, session.begin():
        activate_push_certificate(session)
    yield server, clock
    resources_of(server).engine.dispose()


def _create(server: Starlette, *, uses: int = 2, lifetime: timedelta = timedelta(days=1), with_url: bool = True):  # type: ignore[no-untyped-def]
    resources = resources_of(server)
    with transaction(resources.session_factory) as session:
        return link_service.create_link(
            session, settings=resources.settings, box=resources.secret_box, generate_key=resources.generate_key,
            uses=uses, lifetime=lifetime, actor=TEST_ACTOR, with_url=with_url, now=resources.clock(),
        )  # fmt: skip


def _challenge_of(profile: dict[str, object]) -> str:
    scep = payloads_by_type(profile)["com.apple.security.scep"][0]
    return str(scep["PayloadContent"]["Challenge"])  # type: ignore[index]


def _read(server: Starlette, signed: bytes, tmp_path: Path) -> dict[str, object]:
    resources = resources_of(server)
    with resources.session_factory() as session:
        authority = load_authority(session, box=resources.secret_box)
    assert authority is not None
    return read_profile(signed, trusted=authority.certificate, workdir=tmp_path / "p")


def test_a_link_serves_the_same_challenge_until_its_uses_are_taken(
    server: tuple[Starlette, Clock], tmp_path: Path
) -> None:
    app, _clock = server
    link, url, first = _create(app, uses=2)
    assert url is not None and url.startswith("https://mdm.example.com/mdm/enroll/links/")
    token = url.rsplit("/", 1)[1]
    resources = resources_of(app)
    with resources.session_factory() as session:
        stored = session.scalars(select(EnrollmentLink)).one()
        row = session.scalars(select(EnrollmentChallenge)).one()
        event = session.scalars(select(AuditEvent)).one()
    assert token not in (stored.token_sha256 or "") and token.encode() not in stored.challenge_encrypted
    assert (row.link_id, row.uses_left, row.expires_at) == (link.id, 2, NOW + timedelta(days=1))
    assert (event.action, event.detail["uses"]) == ("enrollment.link.create", 2)
    with TestClient(app, raise_server_exceptions=False) as client:
        served = client.get(f"/mdm/enroll/links/{token}")
        assert served.status_code == 200, served.text
        assert served.headers["content-type"] == "application/x-apple-aspen-config"
        profile = _read(app, served.content, tmp_path)
        challenge = _challenge_of(profile)
        assert challenge == _challenge_of(_read(app, first, tmp_path))
        assert "PayloadRemovalDisallowed" not in profile
        for _ in range(2):
            with transaction(resources.session_factory) as session:
                redeem_challenge(session, challenge, now=NOW)
        with pytest.raises(ChallengeRefused), transaction(resources.session_factory) as session:
            redeem_challenge(session, challenge, now=NOW)
        used_up = client.get(f"/mdm/enroll/links/{token}")
        assert used_up.status_code == 410 and "used up" in used_up.text
    with resources.session_factory() as session:
        listed = link_service.list_links(session, now=NOW)
    assert [(each.kind, each.uses, each.uses_left, each.active) for each in listed] == [("link", 2, 0, False)]


def test_an_expired_or_unknown_link_is_refused_plainly(server: tuple[Starlette, Clock]) -> None:
    app, clock = server
    _, url, _ = _create(app, lifetime=timedelta(hours=1))
    assert url is not None
    path = "/mdm/enroll/links/" + url.rsplit("/", 1)[1]
    with TestClient(app, raise_server_exceptions=False) as client:
        for unknown in ("/mdm/enroll/links/" + "A" * 43, "/mdm/enroll/links/x", "/mdm/enroll/links/%3Cscript%3E"):
            answer = client.get(unknown)
            assert answer.status_code == 404 and "does not exist" in answer.text
            assert answer.headers["content-type"].startswith("text/plain")
        clock.advance(hours=1)
        expired = client.get(path)
        assert expired.status_code == 410 and "expired" in expired.text


def test_bad_uses_or_lifetimes_and_a_missing_push_certificate_store_nothing(settings: Settings) -> None:
    server = build_server(settings, clock=Clock(NOW))
    try:
        for uses, lifetime in ((0, timedelta(days=1)), (link_service.MAX_USES + 1, timedelta(days=1)),
                               (1, timedelta(seconds=5)), (1, timedelta(days=91))):  # fmt: skip
            with pytest.raises(InvalidInput):
                _create(server, uses=uses, lifetime=lifetime)
        with pytest.raises(NoPushCertificate):
            _create(server)
        with resources_of(server).session_factory() as session:
            assert session.scalars(select(EnrollmentLink)).all() == []
            assert session.scalars(select(EnrollmentChallenge)).all() == []
    finally:
        resources_of(server).engine.dispose()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("12h", timedelta(hours=12)),
        ("7D", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
    ],
)
def test_lifetimes_read_as_admins_write_them(text: str, expected: timedelta) -> None:
    assert link_service.parse_lifetime(text) == expected


@pytest.mark.parametrize("text", ["", "7", "d", "-1d", "1y", "0m", "91d", "9" * 50 + "d", "7 d", "\u0667d", "\x00"])
def test_other_lifetimes_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        link_service.parse_lifetime(text)
