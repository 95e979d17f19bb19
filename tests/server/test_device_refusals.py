"""Apple's 403 enrollment refusals: XML plists with exactly the keys and types of Apple's error schemas."""

from __future__ import annotations

import plistlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from pippin.device.refusals import software_update_required, unrecognized_device
from tests.conftest import FIXTURES_DIR

SCHEMAS = FIXTURES_DIR.parent / "apple-device-management" / "mdm" / "errors"
_TYPES = {"<string>": str, "<dictionary>": dict}


def _schema(name: str) -> list[dict[str, Any]]:
    path = SCHEMAS / name
    if not path.is_file():
        pytest.skip(f"Apple's schema {path} is not present (the ../shared folder is not checked out here)")
    keys: list[dict[str, Any]] = yaml.safe_load(Path(path).read_text())["payloadkeys"]
    return keys


def _conforms(body: dict[str, Any], keys: list[dict[str, Any]]) -> None:
    known = {key["key"]: key for key in keys}
    assert set(body) <= set(known)
    for name, key in known.items():
        if key.get("presence") == "required":
            assert name in body, name
        if name in body:
            assert isinstance(body[name], _TYPES[key["type"]]), name
            if "rangelist" in key:
                assert body[name] in key["rangelist"]
            if key["type"] == "<dictionary>":
                _conforms(body[name], key.get("subkeys", []))


def _body(answer: Any) -> dict[str, Any]:
    assert answer.status_code == 403 and answer.media_type == "application/xml"
    parsed: dict[str, Any] = plistlib.loads(answer.body, fmt=plistlib.FMT_XML)
    return parsed


def test_unrecognized_device_is_apples_plist() -> None:
    body = _body(unrecognized_device())
    assert body["code"] == "com.apple.unrecognized.device"
    _conforms(body, _schema("unrecognized.device.yaml"))


@pytest.mark.parametrize("build", [None, "21E236"])
def test_software_update_required_carries_the_version(build: str | None) -> None:
    body = _body(software_update_required("17.4", build))
    assert body["code"] == "com.apple.softwareupdate.required"
    assert body["details"]["OSVersion"] == "17.4" and body["details"].get("BuildVersion") == build
    _conforms(body, _schema("softwareupdate.required.yaml"))
