"""The device trust anchors setting: a PEM bundle read again only when the file changes, and clear words if missing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pippin.config import Settings, load_settings
from pippin.errors import ConfigurationError
from pippin.mdm.trust_anchors import load_device_trust_anchors
from tests.mdm.device_ca import device_ca


def _settings(path: Path | None) -> Settings:
    return Settings(device_trust_anchors_file=path)


def test_the_bundle_is_read_from_the_file_the_setting_names(tmp_path: Path) -> None:
    bundle = tmp_path / "apple-device-cas.pem"
    bundle.write_bytes(device_ca().pem_bundle())
    anchors = load_device_trust_anchors(load_settings({"PIPPIN_DEVICE_TRUST_ANCHORS_FILE": str(bundle)}))
    assert anchors == device_ca().chain


def test_the_file_is_read_again_only_once_it_changes(tmp_path: Path) -> None:
    bundle = tmp_path / "anchors.pem"
    bundle.write_bytes(device_ca().pem_bundle())
    first = load_device_trust_anchors(_settings(bundle))
    stamp = bundle.stat()
    # Other bytes of the same size under the same time: still the bundle read before.
    bundle.write_bytes(b"x" * stamp.st_size)
    os.utime(bundle, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert load_device_trust_anchors(_settings(bundle)) == first
    bundle.write_bytes(device_ca("Other").pem_bundle())
    os.utime(bundle, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1_000_000_000))
    assert load_device_trust_anchors(_settings(bundle)) == device_ca("Other").chain


@pytest.mark.parametrize("case", ["unset", "missing", "folder", "empty", "not-pem", "damaged", "nul"])
def test_an_unusable_setting_says_what_to_download_and_where_to_put_it(tmp_path: Path, case: str) -> None:
    path: Path | None = tmp_path / "anchors.pem"
    assert path is not None
    if case == "unset":
        path = None
    elif case == "nul":
        path = tmp_path / "anchors\x00.pem"
    elif case == "folder":
        path = tmp_path
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "not-pem":
        path.write_bytes(b"\x30\x82\x01\x00")
    elif case == "damaged":
        path.write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigurationError) as caught:
        load_device_trust_anchors(_settings(path))
    words = str(caught.value)
    assert "ADE enrollment is refused" in words and "PIPPIN_DEVICE_TRUST_ANCHORS_FILE" in words
    assert "https://www.apple.com/certificateauthority/" in words
    for certificate in ("Apple Root CA", "Apple iPhone Certification Authority", "Apple iPhone Device CA"):
        assert certificate in words
    assert "/factory/device-ca.pem" in words


def test_an_empty_variable_means_unset() -> None:
    assert load_settings({"PIPPIN_DEVICE_TRUST_ANCHORS_FILE": ""}).device_trust_anchors_file is None
