"""The certificate authorities whose devices may enroll through ADE: ``PIPPIN_DEVICE_TRUST_ANCHORS_FILE``'s PEM bundle.

A device's MachineInfo is signed by a key Apple put in the device, certified by Apple's iPhone Device CA
(``mdm/machine_info.py``). Apple publishes that chain at https://www.apple.com/certificateauthority/, but Pippin
neither bundles it nor downloads it (reference ``apple-mdm-updates-2026.md`` section 5): the admin points this
setting at the file, and until then ADE enrollment is refused with a message saying what to download. Demos and
tests point it at the device CA of ``pippin sim apple`` instead, so the same check runs everywhere, with no bypass.

The bundle is read at the first enrollment and again only when the file changes (its modification time or size).
"""

from __future__ import annotations

import threading
from pathlib import Path

from cryptography import x509

from pippin.config import Settings, variable_name
from pippin.errors import ConfigurationError

#: Apple's three certificates are about 5 kB of PEM; this bounds what is read.
MAX_BUNDLE_BYTES = 1_000_000

_APPLE_PAGE = "https://www.apple.com/certificateauthority/"
_VARIABLE = variable_name("device_trust_anchors_file")
_WHAT_TO_DO = (
    f"Download Apple Root CA, Apple iPhone Certification Authority and Apple iPhone Device CA from {_APPLE_PAGE}, "
    "put them in one PEM file (Apple iPhone Device CA must be in it: it signs each device's own certificate; e.g. "
    f"/etc/pippin/apple-device-cas.pem, readable by Pippin) and set {_VARIABLE} to "
    f"its path; for demos with `pippin sim apple`, save its device CA from GET /factory/device-ca.pem instead."
)

_lock = threading.Lock()
_cache: dict[Path, tuple[tuple[int, int], list[x509.Certificate]]] = {}


def _unusable(problem: str) -> ConfigurationError:
    return ConfigurationError(f"ADE enrollment is refused: {problem}", hint=_WHAT_TO_DO)


def _parse_bundle(data: bytes) -> list[x509.Certificate]:
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise _unusable(f"the file {_VARIABLE} names holds no PEM certificate.")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise _unusable(f"a certificate in the file {_VARIABLE} names is damaged.") from None


def load_device_trust_anchors(settings: Settings) -> list[x509.Certificate]:
    """The certificates of ``settings.device_trust_anchors_file``; a :class:`ConfigurationError` saying what to
    download and where to put it when it is unset, unreadable or holds no certificate."""
    path = settings.device_trust_anchors_file
    if path is None:
        raise _unusable(f"{_VARIABLE} is not set, so Pippin cannot tell Apple's devices from anyone else.")
    path = path.expanduser().absolute()
    try:
        status = path.stat()
        stamp = (status.st_mtime_ns, status.st_size)
        with _lock:
            cached = _cache.get(path)
        if cached is not None and cached[0] == stamp:
            return list(cached[1])
        if status.st_size > MAX_BUNDLE_BYTES:
            raise _unusable(f"the file {_VARIABLE} names is larger than any bundle of certificates.")
        data = path.read_bytes()
    except (OSError, ValueError):  # ValueError: a path no file system takes (a NUL byte)
        raise _unusable(f"the file {_VARIABLE} names does not exist or cannot be read by this user.") from None
    anchors = _parse_bundle(data)
    with _lock:
        _cache[path] = (stamp, anchors)
    return list(anchors)
