"""Enrollment profile pages: create with panes as switches, Apple's locked rule in place, edit, refusals."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pippin.server.resources import ServerResources
from pippin.store.db import transaction
from pippin.store.models import DEPProfile
from tests.console.conftest import csrf_of


def _create(client: TestClient, **fields: object) -> object:
    page = client.get("/console/profiles/new")
    return client.post("/console/profiles/new", data={**fields, "csrf_token": csrf_of(page.text)})


def _count(resources: ServerResources) -> int:
    with transaction(resources.session_factory) as session:
        return session.scalar(select(func.count()).select_from(DEPProfile)) or 0


def test_a_profile_is_created_with_hidden_panes_and_edited(ann: TestClient, resources: ServerResources) -> None:
    answer = _create(ann, name="Staff", supervised="true", locked="true", show_pane=["Passcode", "Location"])
    assert answer.status_code == 303, answer.text  # type: ignore[attr-defined]
    detail = ann.get("/console/profiles/Staff")
    assert "Shown: " in detail.text and "Hidden: " in detail.text and "yes: the user cannot remove" in detail.text
    edit = ann.get("/console/profiles/Staff/edit")
    edited = ann.post(
        "/console/profiles/Staff/edit",
        data={"name": "Staff", "description": "office phones", "csrf_token": csrf_of(edit.text)},
    )
    assert edited.status_code == 303
    assert "office phones" in ann.get("/console/profiles/Staff").text
    assert "Staff" in ann.get("/console/profiles").text


def test_locked_without_supervised_is_refused_with_apples_rule(ann: TestClient, resources: ServerResources) -> None:
    answer = _create(ann, name="Bad", locked="true")
    assert answer.status_code == 400 and 'role="alert"' in answer.text  # type: ignore[attr-defined]
    assert _count(resources) == 0


def test_hostile_profile_input_is_refused_or_escaped(ann: TestClient, resources: ServerResources) -> None:
    assert _create(ann, name="x" * 20_000).status_code == 400  # type: ignore[attr-defined]
    assert _create(ann, name="").status_code == 400  # type: ignore[attr-defined]
    assert _count(resources) == 0
    made = _create(ann, name="<script>alert(1)</script>")
    if made.status_code == 303:  # type: ignore[attr-defined]
        listed = ann.get("/console/profiles").text
        assert "<script>alert(1)</script>" not in listed and "&lt;script&gt;" in listed


def test_read_only_admins_and_forged_forms_change_no_profile(
    rita: TestClient, ann: TestClient, resources: ServerResources
) -> None:
    assert _create(rita, name="Sneaky").status_code == 403  # type: ignore[attr-defined]
    assert ann.post("/console/profiles/new", data={"name": "Forged"}).status_code == 403
    assert _count(resources) == 0


def _profile(resources: ServerResources) -> tuple[str | None, int]:
    with transaction(resources.session_factory) as session:
        profile = session.scalars(select(DEPProfile)).one()
        return profile.minimum_os_version, profile.revision


def test_the_minimum_os_version_is_set_shown_and_cleared_in_the_form(
    ann: TestClient, resources: ServerResources
) -> None:
    form = ann.get("/console/profiles/new")
    assert 'name="minimum_os_version"' in form.text and "not sent to Apple" in form.text
    assert _create(ann, name="Staff", minimum_os_version="17.4").status_code == 303  # type: ignore[attr-defined]
    assert _profile(resources) == ("17.4", 1)
    assert "<dt>Minimum OS version</dt><dd>17.4</dd>" in ann.get("/console/profiles/Staff").text
    edit = ann.get("/console/profiles/Staff/edit")
    assert 'value="17.4"' in edit.text
    cleared = ann.post(
        "/console/profiles/Staff/edit",
        data={"name": "Staff", "minimum_os_version": "", "csrf_token": csrf_of(edit.text)},
    )
    assert cleared.status_code == 303
    assert _profile(resources) == (None, 1)  # Pippin's policy alone: no new revision at Apple
    assert "<dt>Minimum OS version</dt><dd>any</dd>" in ann.get("/console/profiles/Staff").text


def test_a_bad_minimum_os_version_is_refused_by_name_and_changes_nothing(
    ann: TestClient, resources: ServerResources
) -> None:
    for value in ("17.4.1.2", "<script>alert(1)</script>", "\u0661\u0667", "9" * 20_000):
        answer = _create(ann, name="Staff", minimum_os_version=value)
        assert answer.status_code == 400 and 'role="alert"' in answer.text  # type: ignore[attr-defined]
        assert "minimum" in answer.text.lower() and "<script>alert(1)" not in answer.text  # type: ignore[attr-defined]
    assert _count(resources) == 0
    assert _create(ann, name="Staff", minimum_os_version="17").status_code == 303  # type: ignore[attr-defined]
    edit = ann.get("/console/profiles/Staff/edit")
    refused = ann.post(
        "/console/profiles/Staff/edit",
        data={"name": "Staff", "minimum_os_version": "17..4", "csrf_token": csrf_of(edit.text)},
    )
    assert refused.status_code == 400 and "minimum OS version" in refused.text
    assert _profile(resources) == ("17", 1)
