"""Reading an enrollment profile as a device does: its CMS signature checked with openssl, its plist against Apple's
profile schemas (``mdm/profiles/*.yaml``: every key Pippin sets must be one Apple defines, of Apple's type)."""

from __future__ import annotations

import plistlib
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.apple_schemas import APPLE_SCHEMAS, PLIST_TYPES

OPENSSL = "/usr/bin/openssl"
SCHEMAS = APPLE_SCHEMAS / "mdm" / "profiles"


def verified_content(signed: bytes, *, trusted: x509.Certificate, workdir: Path) -> bytes:
    """The content of ``signed`` once ``openssl cms -verify`` has checked its signature up to ``trusted``."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "signed.der").write_bytes(signed)
    (workdir / "trusted.pem").write_bytes(trusted.public_bytes(serialization.Encoding.PEM))
    done = subprocess.run(
        [OPENSSL, "cms", "-verify", "-inform", "DER", "-in", str(workdir / "signed.der"),
         "-CAfile", str(workdir / "trusted.pem"), "-purpose", "any"],
        capture_output=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def _schema_keys(name: str) -> list[dict[str, Any]]:
    path = SCHEMAS / name
    if not path.is_file():
        pytest.skip(f"Apple's schema {path} is not present (the ../shared folder is not checked out here)")
    keys: list[dict[str, Any]] = yaml.safe_load(path.read_text())["payloadkeys"]
    return keys


def _conforms(value: Any, key: dict[str, Any], where: str) -> None:
    expected = PLIST_TYPES[key["type"]]
    assert isinstance(value, expected), f"{where} is {type(value).__name__}, Apple's schema says {key['type']}"
    if key["type"] == "<integer>":
        assert not isinstance(value, bool), where
    if "rangelist" in key:
        assert value in key["rangelist"], where
    subkeys = key.get("subkeys") or []
    if key["type"] == "<dictionary>" and subkeys:
        conforms(value, subkeys, where)
    if key["type"] == "<array>" and subkeys:
        for index, item in enumerate(value):
            _conforms(item, subkeys[0], f"{where}[{index}]")


def conforms(payload: dict[str, Any], keys: list[dict[str, Any]], where: str = "profile") -> None:
    """Every key of ``payload`` is one of ``keys``, of its type; every required one is there."""
    known = {key["key"]: key for key in keys}
    unknown = set(payload) - set(known)
    assert not unknown, f"{where} has keys Apple's schema does not define: {sorted(unknown)}"
    for name, key in known.items():
        if key.get("presence") == "required":
            assert name in payload, f"{where} lacks the required {name}"
        if name in payload:
            _conforms(payload[name], key, f"{where}.{name}")


def payload_schema(name: str) -> list[dict[str, Any]]:
    """A payload type's own keys plus the keys every payload has."""
    own = [key for key in _schema_keys(f"{name}.yaml") if key["key"] not in ("PayloadType",)]
    common = [key for key in _schema_keys("CommonPayloadKeys.yaml") if key["key"] not in {k["key"] for k in own}]
    return [*own, *common]


def check_against_apples_schemas(profile: dict[str, Any]) -> None:
    top = [key for key in _schema_keys("TopLevel.yaml") if key["key"] != "PayloadContent"]
    conforms({k: v for k, v in profile.items() if k != "PayloadContent"}, top, "top level")
    for payload in profile["PayloadContent"]:
        conforms(payload, payload_schema(payload["PayloadType"]), payload["PayloadType"])


def read_profile(signed: bytes, *, trusted: x509.Certificate, workdir: Path) -> dict[str, Any]:
    content = verified_content(signed, trusted=trusted, workdir=workdir)
    profile: dict[str, Any] = plistlib.loads(content, fmt=plistlib.FMT_XML)
    return profile


def payloads_by_type(profile: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for payload in profile["PayloadContent"]:
        found.setdefault(payload["PayloadType"], []).append(payload)
    return found
