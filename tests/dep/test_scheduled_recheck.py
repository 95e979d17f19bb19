"""Tokens Apple refused for a fixable reason come back by themselves once the admin fixes it at Apple."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pippin.config import Settings
from pippin.crypto.secrets import SecretBox
from pippin.dep import token as token_service
from pippin.dep.errors import TermsNotSigned
from pippin.dep.scheduled import due_token_names, recheck_refused_tokens
from pippin.store.db import SessionFactory, transaction
from pippin.store.models import TokenStatus, utcnow
from tests.crypto.openssl_tokens import pooled_key_generator
from tests.dep.test_token_sim import connect, token_service_read
from tests.simulator import RunningSimulator


@pytest.fixture
def online(settings: Settings, sim: RunningSimulator) -> Settings:
    return settings.model_copy(update={"dep_base_url": sim.base_url, "dep_max_retries": 1, "dep_timeout": 10.0})


@pytest.fixture(autouse=True)
def _pooled_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(token_service, "generate_private_key", pooled_key_generator())


def _refuse_for_terms(factory: SessionFactory, box: SecretBox, settings: Settings, sim: RunningSimulator) -> None:
    connect(factory, box, settings, sim)
    assert sim.portal.post("/portal/terms").status_code == 200
    with pytest.raises(TermsNotSigned):
        token_service.fetch_account(factory, name="acme", box=box, settings=settings)
    assert token_service_read(factory).status == TokenStatus.terms_not_signed


def test_accepted_terms_bring_the_token_back_at_the_next_recheck(
    session_factory: SessionFactory, settings: Settings, online: Settings, sim: RunningSimulator
) -> None:
    box = SecretBox.from_settings(settings)
    _refuse_for_terms(session_factory, box, online, sim)
    later = utcnow() + online.dep_sync_interval
    with transaction(session_factory) as session:
        assert due_token_names(session, now=later) == []  # refused tokens are not synced
    assert sim.portal.post("/portal/terms/accept").status_code == 200

    assert recheck_refused_tokens(session_factory, settings=online, box=box, now=later) == ["acme"]
    assert token_service_read(session_factory).status == TokenStatus.ok
    with transaction(session_factory) as session:
        assert due_token_names(session, now=later) == ["acme"]


def test_a_token_still_refused_is_asked_again_only_after_an_interval(
    session_factory: SessionFactory, settings: Settings, online: Settings, sim: RunningSimulator
) -> None:
    box = SecretBox.from_settings(settings)
    _refuse_for_terms(session_factory, box, online, sim)
    # Just refused: not asked again yet.
    assert recheck_refused_tokens(session_factory, settings=online, box=box) == []
    first_error_at = token_service_read(session_factory).last_error_at

    later = utcnow() + online.dep_sync_interval + timedelta(seconds=1)
    assert recheck_refused_tokens(session_factory, settings=online, box=box, now=later) == []
    read = token_service_read(session_factory)
    assert read.status == TokenStatus.terms_not_signed
    assert read.last_error_at is not None and first_error_at is not None
    assert read.last_error_at >= first_error_at  # the refusal was recorded and committed
