"""When a profile's minimum OS refuses a device: only a device that says it can update first, and only if older."""

from __future__ import annotations

import pytest

from pippin.mdm.ade_enrollment import minimum_os_version, required_update
from pippin.mdm.machine_info import MachineInfo
from pippin.store.models import DEPProfile


def _info(os_version: str | None, *, can_update: bool = True) -> MachineInfo:
    return MachineInfo(
        udid="U", serial_number="S", product="iPhone14,5", version="21A329", os_version=os_version, imei=None,
        meid=None, language=None, can_request_software_update=can_update, raw=b"",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("current", "minimum", "required"),
    [
        ("17.0", "17.4", "17.4"),
        ("17.3.1", "17.4", "17.4"),
        ("16.7", "17", "17"),
        ("17.4", "17.4", None),
        ("17.4.0", "17.4", None),
        ("18.0", "17.4", None),
        ("17.10", "17.9", None),  # versions compare as numbers, not as text
        ("17.0", None, None),
        ("17.0", "seventeen", None),
        ("beta", "17.4", None),
    ],
)
def test_an_older_device_that_can_update_is_asked_to(current: str, minimum: str | None, required: str | None) -> None:
    assert required_update(_info(current), minimum_os_version=minimum) == required


def test_a_device_that_cannot_be_asked_to_update_is_never_refused() -> None:
    assert required_update(_info("16.0", can_update=False), minimum_os_version="17.4") is None
    assert required_update(_info(None), minimum_os_version="17.4") is None


def test_the_gate_reads_the_profile_s_minimum_os_version() -> None:
    assert minimum_os_version(DEPProfile(name="Staff")) is None
    assert minimum_os_version(DEPProfile(name="Staff", minimum_os_version="17.4")) == "17.4"
