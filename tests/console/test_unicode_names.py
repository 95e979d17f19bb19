"""Names in any script through the console, as the API takes them: an MDM server named at Apple, profiles
created, edited, assigned and made a token's default. Each action's one-time notice (which names them) shows on
the next page, and a notice the server did not write is never shown.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import select

from pippin.config import Settings
from pippin.console.notice import NOTICE_COOKIE
from pippin.server.resources import ServerResources
from pippin.store.db import transaction
from pippin.store.models import AuditEvent, DEPProfile, DEPToken
from tests.console.conftest import csrf_of
from tests.e2e.apple import ADMIN, add_devices, connect_token
from tests.simulator import RunningSimulator

SERVER_NAME = "Büro \u2013 iPads 東京"
PROFILE_NAME = "Équipe \u2013 Paris"
EMOJI_NAME = "📱 Équipe Ünïcødé 🚀"
#: Characters that mean something in a URL or a cookie, in a profile name.
PUNCTUATED_NAME = 'Q&A 1; "quoted", 100% ok!'


@pytest.fixture
def settings(tmp_path: Path, database_url: str, sim: RunningSimulator) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key=Fernet.generate_key().decode(),
        dep_base_url=sim.base_url,
        dep_max_retries=1,
    )


def _post(client: TestClient, page: str, action: str, **data: object) -> object:
    return client.post(action, data={**data, "csrf_token": csrf_of(client.get(page).text)})


def _followed(client: TestClient, answer: object) -> str:
    """The page a form's 303 leads to, as the browser shows it next."""
    assert getattr(answer, "status_code", None) == 303, getattr(answer, "text", "")[:500]
    page = client.get(answer.headers["location"])  # type: ignore[attr-defined]
    assert page.status_code == 200, page.text[:500]
    return html.unescape(page.text)


def test_a_token_whose_mdm_server_has_a_name_in_any_script_is_uploaded(
    ann: TestClient, sim: RunningSimulator, resources: ServerResources
) -> None:
    assert _post(ann, "/console/tokens/new", "/console/tokens/new", name="acme").status_code == 303  # type: ignore[attr-defined]
    steps = ann.get("/console/tokens/acme/connect")
    pem = ann.get("/console/tokens/acme/public-key.pem").text
    server = sim.portal.post(
        "/portal/mdm-servers", json={"name": SERVER_NAME, "public_key_pem": pem, "admin_apple_id": ADMIN}
    ).json()
    p7m = sim.portal.get(f"/portal/mdm-servers/{server['server_uuid']}/token").content
    uploaded = ann.post(
        "/console/tokens/acme/upload",
        data={"apple_id": ADMIN, "csrf_token": csrf_of(steps.text)},
        files={"token": ("acme_smime.p7m", p7m, "application/pkcs7-mime")},
    )
    shown = _followed(ann, uploaded)
    assert f"DEP token acme is connected to {SERVER_NAME}." in shown
    assert f"is connected to {SERVER_NAME}" not in ann.get("/console/tokens/acme").text, "a notice shows once"
    with transaction(resources.session_factory) as session:
        assert session.scalars(select(DEPToken.server_name)).one() == SERVER_NAME


@pytest.mark.parametrize("name", [PROFILE_NAME, EMOJI_NAME, PUNCTUATED_NAME])
def test_a_profile_named_in_any_script_is_created_edited_made_default_and_assigned(
    ann: TestClient, sim: RunningSimulator, resources: ServerResources, name: str
) -> None:
    server_uuid = connect_token(resources.session_factory, resources.settings, sim, generate_key=resources.generate_key)
    add_devices(sim, server_uuid, 2)
    assert _post(ann, "/console/tokens/acme", "/console/tokens/acme/sync").status_code == 303  # type: ignore[attr-defined]
    page = f"/console/profiles/{quote(name, safe='')}"

    created = _post(ann, "/console/profiles/new", "/console/profiles/new", name=name, description="phones")
    assert f"Profile {name} is saved." in _followed(ann, created)
    edited = _post(ann, f"{page}/edit", f"{page}/edit", name=name, description="tablets")
    assert f"Profile {name} is saved." in _followed(ann, edited)
    defaulted = _post(ann, "/console/tokens/acme", "/console/tokens/acme/default-profile", profile=name)
    shown = _followed(ann, defaulted)
    assert f"New devices of acme get profile {name}." in shown
    assigned = _post(ann, page, f"{page}/assign", which="token", token="acme")
    assert f"queued for {name}" in _followed(ann, assigned)

    with transaction(resources.session_factory) as session:
        profile = session.scalars(select(DEPProfile)).one()
        assert (profile.name, profile.description) == (name, "tablets")
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.actor == "ann@example.com").order_by(AuditEvent.id)
        ).all()
    assert actions[-4:] == ["profile.create", "profile.update", "profile.set_default", "profile.assign"]


@pytest.mark.parametrize(
    "forged",
    [
        "Your DEP token was revoked: upload it again at https://evil.example",
        "WW91ciBERVAgdG9rZW4gd2FzIHJldm9rZWQ",
        "WW91ciBERVAgdG9rZW4gd2FzIHJldm9rZWQ.AAAA",
        "\\303\\251",
        "." * 400,
    ],
)
def test_a_notice_the_server_did_not_write_is_not_shown(ann: TestClient, forged: str) -> None:
    ann.cookies.set(NOTICE_COOKIE, forged, path="/console")
    page = ann.get("/console/")
    assert page.status_code == 200
    assert 'class="notice"' not in page.text
    assert "evil.example" not in page.text and "Your DEP token was revoked" not in page.text


def test_the_notice_cookie_is_plain_ascii_and_an_edited_one_is_not_shown(ann: TestClient) -> None:
    answer = _post(ann, "/console/profiles/new", "/console/profiles/new", name=PROFILE_NAME)
    assert getattr(answer, "status_code", None) == 303
    notice = ann.cookies.get(NOTICE_COOKIE)
    assert notice and re.fullmatch(r"[A-Za-z0-9_.-]+", notice), notice
    edited = notice[:4] + ("B" if notice[4] == "A" else "A") + notice[5:]
    ann.cookies.delete(NOTICE_COOKIE)
    ann.cookies.set(NOTICE_COOKIE, edited, path="/console")
    page = ann.get("/console/profiles")
    assert page.status_code == 200 and 'class="notice"' not in page.text
