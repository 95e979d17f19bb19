"""Store-and-forward as Apple does it: handed to a waiting device, else kept until apns-expiration, newest only.

Expiry is judged on the simulator's clock, which these tests move; no test waits on the wall clock except for a
device's bounded wait that a push (or a deletion) ends.
"""

from __future__ import annotations

import json
import socket

from pippin.sim.apns_delivery import APNsDelivery
from pippin.sim.state import open_state
from tests.sim.apns import APNsWorld, WaitingDevice


def expiring_in(world: APNsWorld, seconds: int) -> str:
    return str(int(world.sim.state.clock.now().timestamp()) + seconds)


def test_a_waiting_device_is_handed_the_push_as_the_provider_sent_it(apns: APNsWorld) -> None:
    token = apns.register()
    device = WaitingDevice(apns, token)
    apns.wait_for_device(token)
    body = b'{"mdm":"4D9E1C1A-7A5C-4B4E-9C33-8E0E7C1B2F10"}'
    with apns.client() as provider:
        sent = provider.push(token, content=body, apns_push_type="mdm", apns_priority="10")
    answer = device.result()
    assert answer.status_code == 200 and answer.content == body
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["apns-id"] == sent.headers["apns-id"]
    assert answer.headers["apns-push-type"] == "mdm" and answer.headers["apns-priority"] == "10"
    counts = apns.stats(token)
    assert (counts["received"], counts["delivered"], counts["stored"], counts["waiting"]) == (1, 1, 0, 0)


def test_a_push_to_an_offline_device_is_kept_until_it_connects(apns: APNsWorld) -> None:
    token = apns.register()
    with apns.client() as provider:
        assert provider.push(token, {"mdm": "one"}, apns_expiration=expiring_in(apns, 3600)).status_code == 200
    assert apns.stats(token)["pending"] == 1
    delivered = apns.next(token)
    assert delivered.status_code == 200 and delivered.json() == {"mdm": "one"}
    assert apns.next(token).status_code == 204  # delivered once
    counts = apns.stats(token)
    assert (counts["stored"], counts["delivered"], counts["pending"]) == (1, 1, 0)


def test_only_the_newest_push_for_an_offline_device_is_kept(apns: APNsWorld) -> None:
    token = apns.register()
    with apns.client() as provider:
        for number in range(5):
            expiration = expiring_in(apns, 3600)
            assert provider.push(token, {"mdm": f"push-{number}"}, apns_expiration=expiration).status_code == 200
    assert apns.next(token).json() == {"mdm": "push-4"}
    assert apns.next(token).status_code == 204
    counts = apns.stats(token)
    assert (counts["received"], counts["stored"], counts["coalesced"], counts["delivered"]) == (5, 5, 4, 1)


def test_a_push_without_expiration_or_with_zero_gets_one_attempt_and_is_not_kept(apns: APNsWorld) -> None:
    token = apns.register()
    with apns.client() as provider:
        assert provider.push(token, {"mdm": "kept"}, apns_expiration=expiring_in(apns, 3600)).status_code == 200
        assert provider.push(token, {"mdm": "no expiration"}).status_code == 200
        assert provider.push(token, {"mdm": "zero"}, apns_expiration="0").status_code == 200
        assert provider.push(token, {"mdm": "past"}, apns_expiration=expiring_in(apns, -10)).status_code == 200
    # The stored push stays: an undeliverable one-shot push replaces nothing.
    assert apns.next(token).json() == {"mdm": "kept"}
    assert apns.stats(token)["discarded"] == 3


def test_a_push_without_expiration_reaches_a_device_that_is_waiting(apns: APNsWorld) -> None:
    token = apns.register()
    device = WaitingDevice(apns, token)
    apns.wait_for_device(token)
    with apns.client() as provider:
        assert provider.push(token, {"mdm": "now"}, apns_expiration="0").status_code == 200
    assert device.result().json() == {"mdm": "now"}


def test_a_stored_push_expires_on_the_simulators_clock(fresh_apns: APNsWorld) -> None:
    token = fresh_apns.register()
    with fresh_apns.client() as provider:
        assert provider.push(token, apns_expiration=expiring_in(fresh_apns, 600)).status_code == 200
    # The simulator's clock also runs with the wall clock: a margin of a minute keeps a busy machine's seconds
    # between these requests from deciding the outcome.
    fresh_apns.sim.portal.post("/portal/clock", json={"advance_seconds": 540})
    assert fresh_apns.stats(token)["pending"] == 1
    fresh_apns.sim.portal.post("/portal/clock", json={"advance_seconds": 61})
    assert fresh_apns.next(token).status_code == 204
    counts = fresh_apns.stats(token)
    assert (counts["expired"], counts["delivered"], counts["pending"]) == (1, 0, 0)


def test_expiry_is_counted_without_the_device_connecting(fresh_apns: APNsWorld) -> None:
    tokens = [fresh_apns.register() for _ in range(3)]
    with fresh_apns.client() as provider:
        for token in tokens:
            assert provider.push(token, apns_expiration=expiring_in(fresh_apns, 60)).status_code == 200
    assert fresh_apns.stats()["pending"] == 3
    fresh_apns.sim.state.advance_clock(61)
    totals = fresh_apns.stats()
    assert (totals["expired"], totals["pending"]) == (3, 0)


def test_a_wait_ends_with_204_when_nothing_comes(apns: APNsWorld) -> None:
    token = apns.register()
    assert apns.next(token, timeout=0).status_code == 204
    assert apns.next(token, timeout=0.01).status_code == 204


def test_deleting_a_token_ends_its_wait_and_drops_what_was_stored(apns: APNsWorld) -> None:
    token = apns.register()
    with apns.client() as provider:
        assert provider.push(token, apns_expiration=expiring_in(apns, 3600)).status_code == 200
    other = apns.register()
    device = WaitingDevice(apns, other, timeout=300)
    apns.wait_for_device(other)
    assert apns.sim.portal.delete(f"/apns/tokens/{other}").status_code == 200
    assert device.result().status_code == 204
    assert apns.sim.portal.delete(f"/apns/tokens/{token}").status_code == 200
    assert apns.stats(token)["pending"] == 0
    gone = apns.next(token)
    assert gone.status_code == 410 and gone.json()["error"] == "unregistered"


def test_two_waiting_devices_on_one_token_get_one_push_each(apns: APNsWorld) -> None:
    token = apns.register()
    first, second = WaitingDevice(apns, token), WaitingDevice(apns, token)
    apns.wait_for_device(token, count=2)
    with apns.client() as provider:
        assert provider.push(token, {"mdm": "a"}).status_code == 200
        assert provider.push(token, {"mdm": "b"}).status_code == 200
    assert sorted(json.loads(device.result().content)["mdm"] for device in (first, second)) == ["a", "b"]


def test_tokens_and_deletions_outlive_a_restart_and_stored_pushes_do_not(fresh_apns: APNsWorld) -> None:
    kept, deleted = fresh_apns.register(), fresh_apns.register()
    fresh_apns.sim.portal.delete(f"/apns/tokens/{deleted}")
    with fresh_apns.client() as provider:
        assert provider.push(kept, apns_expiration=expiring_in(fresh_apns, 3600)).status_code == 200
    reopened = open_state(fresh_apns.sim.state.data_dir)
    try:
        delivery = APNsDelivery(reopened)
        kept_record, deleted_record = delivery.find(kept), delivery.find(deleted)
        assert kept_record is not None and kept_record.topic == fresh_apns.push.topic
        assert kept_record.unregistered_at is None
        assert deleted_record is not None and deleted_record.unregistered_at is not None
        assert delivery.stats(kept)["pending"] == 0
    finally:
        reopened.engine.dispose()


def test_the_global_counts_add_up_the_tokens_and_name_the_reasons_of_refusals(fresh_apns: APNsWorld) -> None:
    tokens = [fresh_apns.register() for _ in range(4)]
    with fresh_apns.client() as provider:
        for token in tokens:
            provider.push(token, apns_expiration=expiring_in(fresh_apns, 3600))
        provider.push("00" * 32)
        provider.push(tokens[0], apns_priority="3")
    totals = fresh_apns.stats()
    assert (totals["tokens"], totals["received"], totals["stored"], totals["pending"]) == (4, 4, 4, 4)
    assert totals["rejected"] == {"BadDeviceToken": 1, "BadPriority": 1}


def test_a_push_to_a_device_that_hung_up_is_stored_for_its_next_wait(apns: APNsWorld) -> None:
    token = apns.register()
    host, port = apns.sim.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as device:
        device.sendall(f"GET /apns/tokens/{token}/next?timeout=300 HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        apns.wait_for_device(token)
    apns.wait_for_device(token, count=0, fewer=True)  # the simulator noticed the device leave
    with apns.client() as provider:
        assert provider.push(token, {"mdm": "later"}, apns_expiration=expiring_in(apns, 3600)).status_code == 200
    assert apns.stats(token)["pending"] == 1
    assert apns.next(token).json() == {"mdm": "later"}
