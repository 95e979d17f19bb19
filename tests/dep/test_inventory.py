"""Listing, searching, paging and showing the corporate-owned devices, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from pippin.dep.inventory import decode_cursor, encode_cursor, get_device, list_devices
from pippin.errors import InvalidInput, NotFound
from pippin.store.models import DEPToken, Device

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def fleet(session: Session) -> None:
    acme, other = DEPToken(name="acme"), DEPToken(name="other")
    session.add_all([acme, other])
    session.flush()
    rows = [
        ("C02A", acme, "iPhone 15", "TAG-1", "IPHONE 15 BLACK", "not_contacted"),
        ("C02B", acme, "iPad Air", None, "IPAD AIR 100%_BLUE", "enrolled"),
        ("DX9", other, "iPhone 14", "tag-2", None, "removed"),
        ("F00", None, "iPad mini", None, "IPAD MINI", "not_contacted"),
    ]
    for serial, token, model, tag, description, state in rows:
        session.add(
            Device(
                serial_number=serial,
                token_id=token.id if token else None,
                model=model,
                asset_tag=tag,
                description=description,
                enrollment_state=state,
                first_seen_at=NOW,
                last_synced_at=NOW,
                apple_record={"serial_number": serial},
            )
        )
    session.flush()


def serials(page: object) -> list[str]:
    return [device.serial_number for device in page.devices]  # type: ignore[attr-defined]


def test_devices_are_listed_in_serial_order_with_their_token(session: Session, fleet: None) -> None:
    page = list_devices(session)
    assert serials(page) == ["C02A", "C02B", "DX9", "F00"] and page.next_cursor is None
    assert page.devices[0].token == "acme" and page.devices[3].token is None
    assert page.devices[0].enrollment_state == "not_contacted"


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"state": "not_contacted"}, ["C02A", "F00"]),
        ({"token": "acme"}, ["C02A", "C02B"]),
        ({"token": "nobody"}, []),
        ({"search": "ipad"}, ["C02B", "F00"]),
        ({"search": "TAG-"}, ["C02A", "DX9"]),
        ({"search": "c02"}, ["C02A", "C02B"]),
        ({"search": "100%_"}, ["C02B"]),
        ({"search": "%"}, ["C02B"]),
        ({"search": "_"}, ["C02B"]),
        ({"state": "enrolled", "token": "acme", "search": "air"}, ["C02B"]),
    ],
)
def test_filters_combine_and_search_treats_wildcards_literally(
    session: Session, fleet: None, filters: dict[str, str], expected: list[str]
) -> None:
    assert serials(list_devices(session, **filters)) == expected  # type: ignore[arg-type]


def test_keyset_paging_visits_every_device_once(session: Session, fleet: None) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        page = list_devices(session, limit=3, cursor=cursor)
        seen += serials(page)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ["C02A", "C02B", "DX9", "F00"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"limit": 0},
        {"limit": 501},
        {"state": "lost"},
        {"search": "x" * 129},
        {"cursor": "not base64!"},
        {"cursor": ""},
        {"cursor": "A" * 500},
        {"cursor": encode_cursor("C") + "x"},
    ],
)
def test_bad_queries_are_refused_with_a_clear_error(session: Session, fleet: None, kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        list_devices(session, **kwargs)  # type: ignore[arg-type]


def test_cursors_round_trip_any_serial() -> None:
    for serial in ["C02A", "é/+=", "x" * 64]:
        assert decode_cursor(encode_cursor(serial)) == serial


def test_show_finds_one_device_case_sensitively(session: Session, fleet: None) -> None:
    assert get_device(session, serial="DX9").token == "other"
    with pytest.raises(NotFound, match="c02a"):
        get_device(session, serial="c02a")
    with pytest.raises(NotFound):
        get_device(session, serial="x" * 10_000)
