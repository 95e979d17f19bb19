""" "Sync now" as two steps: the sync ends at its last page; profiles follow only a run that succeeded."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import select

from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.dep import profiles
from pippin.dep.errors import DEPUnavailable, TermsNotSigned
from pippin.dep.profile_schemas import ProfileCreate
from pippin.dep.sync import sync_now
from pippin.dep.sync_and_assign import sync_and_assign_now
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import DEPToken, Device, SyncRun
from tests.actors import TEST_ACTOR
from tests.dep.test_sync import ScriptedApple, dev, page, token_name, token_row

__all__ = ["token_name"]  # the fixture, shared with test_sync


class RefusingProfilesApple(ScriptedApple):
    """Pages devices as scripted, then refuses the token when profiles are assigned."""

    def define_profile(self, profile: Any) -> Any:
        raise TermsNotSigned("Apple has published new terms and conditions.", apple_code="T_C_NOT_SIGNED", status=403)

    def assign_profile(self, *, profile_uuid: str, serials: Any) -> Any:
        raise AssertionError("nothing is assigned once Apple refused the token")


class NoProfilesApple(ScriptedApple):
    """Pages devices as scripted; any profile call fails the test."""

    def define_profile(self, profile: Any) -> Any:
        raise AssertionError("this step must not define profiles")

    def assign_profile(self, *, profile_uuid: str, serials: Any) -> Any:
        raise AssertionError("this step must not assign profiles")


class BrokenProfilesApple(ScriptedApple):
    """Pages devices as scripted; the profile step meets a bug (not one of Apple's errors)."""

    def define_profile(self, profile: Any) -> Any:
        raise ZeroDivisionError("a bug in the profile step")

    def assign_profile(self, *, profile_uuid: str, serials: Any) -> Any:
        raise AssertionError("unreachable")


@pytest.fixture
def box(settings: Settings) -> SecretBox:
    return SecretBox.from_settings(settings)


@pytest.fixture
def default_profile(session_factory: SessionFactory, settings: Settings, token_name: str) -> str:
    with transaction(session_factory) as session:
        profile = profiles.create_profile(
            session, data=ProfileCreate(name="Staff", supervised=True), settings=settings, actor=TEST_ACTOR
        )
        token = session.scalars(select(DEPToken).where(DEPToken.name == token_name)).one()
        profiles.set_default_profile(session, token_name=token.name, profile_name=profile.name, actor=TEST_ACTOR)
    return profile.name


def assignment_statuses(session_factory: SessionFactory) -> dict[str, str | None]:
    with transaction(session_factory) as session:
        return {
            serial: status for serial, status in session.execute(select(Device.serial_number, Device.assignment_status))
        }


def test_the_sync_alone_ends_at_its_last_page_and_asks_apple_for_no_profile(
    session_factory: SessionFactory, settings: Settings, token_name: str, default_profile: str, box: SecretBox
) -> None:
    apple = NoProfilesApple([("fetch", None, page("f1", dev("A"))), ("sync", "f1", page("s1"))])
    result = sync_now(session_factory, token_name=token_name, settings=settings, open_dep_client=lambda token: apple)
    assert result.outcome == "succeeded" and result.added == 1
    assert assignment_statuses(session_factory) == {"A": None}


def test_a_refusal_in_the_profile_step_outlives_the_syncs_success(
    session_factory: SessionFactory, settings: Settings, token_name: str, default_profile: str, box: SecretBox
) -> None:
    apple = RefusingProfilesApple([("fetch", None, page("f1", dev("A"))), ("sync", "f1", page("s1"))])
    result = sync_and_assign_now(
        session_factory, token_name=token_name, settings=settings, box=box, open_client=lambda t: apple
    )
    assert result.outcome == "succeeded" and result.added == 1
    refused = token_row(session_factory)
    assert refused.status == "terms_not_signed" and refused.last_error
    assert assignment_statuses(session_factory) == {"A": "pending"}, "queued, waiting for the token to be fixed"


def test_a_sync_that_failed_skips_the_profile_step(
    session_factory: SessionFactory, settings: Settings, token_name: str, default_profile: str, box: SecretBox
) -> None:
    unavailable = DEPUnavailable("Apple's DEP service did not answer.", status=503)
    apple = NoProfilesApple([("fetch", None, page("f1", dev("A"), more=True)), ("fetch", "f1", unavailable)])
    result = sync_and_assign_now(
        session_factory, token_name=token_name, settings=settings, box=box, open_client=lambda t: apple
    )
    assert result.outcome == "failed" and result.added == 1
    assert assignment_statuses(session_factory) == {"A": None}, "the next successful run gives A its profile"


def test_a_bug_in_the_profile_step_is_logged_and_raised_but_the_run_stays_succeeded(
    session_factory: SessionFactory,
    settings: Settings,
    token_name: str,
    default_profile: str,
    box: SecretBox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    apple = BrokenProfilesApple([("fetch", None, page("f1", dev("A"))), ("sync", "f1", page("s1"))])
    with caplog.at_level(logging.ERROR, logger="pippin.dep"), pytest.raises(ZeroDivisionError):
        sync_and_assign_now(
            session_factory, token_name=token_name, settings=settings, box=box, open_client=lambda t: apple
        )
    assert "profile assignment after the sync failed" in caplog.text
    with transaction(session_factory) as session:
        assert session.scalars(select(SyncRun.outcome)).one() == "succeeded", "the sync had ended before the bug"
    assert token_row(session_factory).status == "ok"
