"""RFC 8894 messages as they come: a real device's PKIOperation, and damaged or hostile ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from asn1crypto import cms as asn1_cms
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pippin.crypto.ber_bounds import HostileEncoding
from pippin.crypto.secrets import SecretBox
from pippin.pki.authority import Authority
from pippin.pki.scep_messages import (
    FailInfo,
    MalformedPKIMessage,
    MessageType,
    SCEPRefusal,
    open_envelope,
    read_pki_message,
)
from pippin.store.models import IssuedCertificate
from tests.conftest import fixture_path
from tests.pki.conftest import answer
from tests.pki.scep_client import SCEPClient


def _mdmclient_request() -> bytes:
    """macOS mdmclient's PKCSReq, captured by commandment: SHA-512, a 3DES envelope to a Windows CA's certificate."""
    return fixture_path("commandment", "mdmclient-PKIOperation.der").read_bytes()


def test_a_real_device_request_reads_and_its_signature_verifies() -> None:
    message = read_pki_message(_mdmclient_request())

    assert message.message_type == MessageType.pkcs_req
    assert message.transaction_id == "140BC832976B3D0300BE8F5C2E35CEDF66E73D7B"
    assert message.sender_nonce == bytes.fromhex("fac5e2eda5d97d64")
    assert message.digest_algorithm == "sha512"
    assert message.signer_certificate.subject.rfc4514_string() == "C=AU,CN=MDM SCEP SIGNER"
    assert message.integrity_problem is None  # messageDigest matches and the RSA signature holds


def test_a_real_device_request_to_another_ca_cannot_be_opened(authority: Authority) -> None:
    message = read_pki_message(_mdmclient_request())
    with pytest.raises(SCEPRefusal) as refused:
        open_envelope(message, private_key=authority.private_key, certificate=authority.certificate)
    assert refused.value.fail_info == FailInfo.bad_message_check


def test_pippin_answers_the_real_request_with_failure_bad_message_check(
    session: Session, box: SecretBox, authority: Authority, tmp_path: Path
) -> None:
    result = answer(session, box, _mdmclient_request())

    # Read with the tests' client, which checks the CA's signature and the messageDigest.
    reply = SCEPClient(key=authority.private_key, ca=authority.certificate, workdir=tmp_path, digest="sha512")
    rep = reply.read(result.message)
    assert (rep.message_type, rep.status, rep.fail_info, rep.certificate) == ("3", "2", "1", None)
    assert rep.transaction_id == "140BC832976B3D0300BE8F5C2E35CEDF66E73D7B"
    assert rep.recipient_nonce == bytes.fromhex("fac5e2eda5d97d64")
    assert rep.digest == "sha512"
    signed = asn1_cms.ContentInfo.load(result.message)["content"]
    assert signed["certificates"][0].chosen.dump() == authority.certificate_der
    assert session.execute(select(func.count()).select_from(IssuedCertificate)).scalar_one() == 0


def test_an_altered_content_fails_the_message_digest() -> None:
    data = bytearray(_mdmclient_request())
    # A byte inside the encapsulated EnvelopedData's encrypted content, far from any length.
    data[1500] ^= 0x40
    message = read_pki_message(bytes(data))
    assert message.integrity_problem is not None
    assert message.integrity_problem.fail_info == FailInfo.bad_message_check


def _without_attribute(oid: str) -> bytes:
    info = asn1_cms.ContentInfo.load(_mdmclient_request())
    signer = info["content"]["signer_infos"][0]
    kept = [attribute for attribute in signer["signed_attrs"] if attribute["type"].dotted != oid]
    signer["signed_attrs"] = asn1_cms.CMSAttributes(kept)
    rebuilt: bytes = info.dump(force=True)
    return rebuilt


@pytest.mark.parametrize(
    "oid",
    ["2.16.840.1.113733.1.9.7", "2.16.840.1.113733.1.9.5", "2.16.840.1.113733.1.9.2"],
    ids=["tid", "nonce", "type"],
)
def test_a_request_without_its_scep_fields_cannot_be_answered(oid: str) -> None:
    with pytest.raises(MalformedPKIMessage):
        read_pki_message(_without_attribute(oid))


def _nested_sequences(depth: int) -> bytes:
    """``depth`` definite-length SEQUENCEs, each holding the next: well-formed, and deeper than any message."""
    value = b"\x05\x00"
    for _ in range(depth):
        length = len(value)
        header = bytes([length]) if length < 0x80 else b"\x82" + length.to_bytes(2, "big")
        value = b"\x30" + header + value
    return value


HOSTILE = {
    "empty": b"",
    "garbage": b"this is not a PKIMessage at all" * 10,
    "ber bomb": b"\x30\x80" * 50_000,
    "deep definite": _nested_sequences(200),
    "huge length": b"\x30\x84\x7f\xff\xff\xff\x00",
    "a certificate": None,
    "trailing bytes": None,
    "truncated": None,
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_messages_are_refused_as_malformed(case: str, authority: Authority) -> None:
    real = _mdmclient_request()
    data = HOSTILE[case]
    if case == "a certificate":
        data = authority.certificate_der
    elif case == "trailing bytes":
        data = real + b"\x00"
    elif case == "truncated":
        data = real[: len(real) // 2]
    assert data is not None
    with pytest.raises((MalformedPKIMessage, HostileEncoding)):
        read_pki_message(data)
