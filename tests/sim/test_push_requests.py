"""Damaged push certificate requests, at every layer: refused with a PortalError, never anything else."""

from __future__ import annotations

import base64
import random
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pippin.sim import push_ca, stored_authorities
from pippin.sim.portal_errors import PortalError
from pippin.sim.push_requests import verify_request
from tests.sim.push_client import Vendor, csr_der, request_plist, sign
from tests.simulator import RunningSimulator

ROUNDS = 300


def _mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        position = rng.randrange(len(out))
        choice = rng.random()
        if choice < 0.5:
            out[position] = rng.randrange(256)
        elif choice < 0.75:
            del out[position : position + rng.randint(1, 40)]
        else:
            out[position:position] = rng.randbytes(rng.randint(1, 8))
        if not out:
            out = bytearray(b"\x30")
    return bytes(out)


@pytest.fixture(scope="module")
def world(shared_sim: RunningSimulator) -> tuple[push_ca.Authorities, Vendor]:
    state = shared_sim.state
    with state.transaction() as session:
        authorities = push_ca.load_authorities(session, now=state.clock.now())
    issued = push_ca.issue_vendor_certificate(authorities, vendor_name="Fuzz", now=state.clock.now())
    chain = "".join(stored_authorities.certificate_pem(cert) for cert in [issued.certificate, *issued.chain])
    return authorities, Vendor(certificate=issued.certificate, key=issued.private_key, chain_pem=chain)


def _layers(vendor: Vendor) -> dict[str, Callable[[random.Random], bytes]]:
    csr = csr_der()
    signature = sign(vendor, csr)
    vendor_der = vendor.certificate.public_bytes(serialization.Encoding.DER)
    rest = vendor.chain_pem.split("-----END CERTIFICATE-----\n", 1)[1]
    plist = request_plist(csr, chain_pem=vendor.chain_pem, signature=signature)

    def vendor_pem(der: bytes) -> str:
        body = base64.encodebytes(der).decode()
        return f"-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n{rest}"

    return {
        "plist": lambda rng: base64.b64encode(_mutate(plist, rng)),
        "csr": lambda rng: base64.b64encode(
            request_plist(_mutate(csr, rng), chain_pem=vendor.chain_pem, signature=signature)
        ),
        "signature": lambda rng: base64.b64encode(
            request_plist(csr, chain_pem=vendor.chain_pem, signature=_mutate(signature, rng))
        ),
        "vendor certificate": lambda rng: base64.b64encode(
            request_plist(csr, chain_pem=vendor_pem(_mutate(vendor_der, rng)), signature=signature)
        ),
    }


@pytest.mark.parametrize("layer", ["plist", "csr", "signature", "vendor certificate"])
def test_damage_at_any_layer_is_refused_as_a_portal_error(
    world: tuple[push_ca.Authorities, Vendor], shared_sim: RunningSimulator, layer: str
) -> None:
    authorities, vendor = world
    build = _layers(vendor)[layer]
    rng = random.Random(f"push-request-{layer}")
    now = shared_sim.state.clock.now()
    refused = 0
    for _ in range(ROUNDS):
        try:
            verify_request(build(rng), authorities=authorities, now=now)
        except PortalError as error:
            assert 400 <= error.status < 500 and error.detail
            refused += 1
    # A mutation can leave the bytes that matter intact (e.g. one in ignored plist whitespace); almost none do.
    assert refused >= ROUNDS * 0.9


def test_the_undamaged_request_is_accepted(
    world: tuple[push_ca.Authorities, Vendor], shared_sim: RunningSimulator
) -> None:
    authorities, vendor = world
    csr = csr_der()
    upload = base64.b64encode(request_plist(csr, chain_pem=vendor.chain_pem, signature=sign(vendor, csr)))
    verified = verify_request(upload, authorities=authorities, now=shared_sim.state.clock.now())
    assert verified.csr == x509.load_der_x509_csr(csr) and verified.vendor == vendor.certificate


def test_unknown_algorithms_are_refused(
    world: tuple[push_ca.Authorities, Vendor], shared_sim: RunningSimulator
) -> None:
    """A CSR for an unknown key type, a vendor certificate with an unknown signature algorithm."""
    authorities, vendor = world
    now = shared_sim.state.clock.now()
    rsa_encryption = bytes.fromhex("06092a864886f70d010101")
    sha256_with_rsa = bytes.fromhex("06092a864886f70d01010b")
    csr = csr_der()
    odd_csr = csr.replace(rsa_encryption, rsa_encryption[:-1] + b"\x7f")
    vendor_der = vendor.certificate.public_bytes(serialization.Encoding.DER)
    odd_vendor = vendor_der.replace(sha256_with_rsa, sha256_with_rsa[:-1] + b"\x7f")
    assert odd_csr != csr and odd_vendor != vendor_der
    rest = vendor.chain_pem.split("-----END CERTIFICATE-----\n", 1)[1]
    odd_chain = (
        f"-----BEGIN CERTIFICATE-----\n{base64.encodebytes(odd_vendor).decode()}-----END CERTIFICATE-----\n{rest}"
    )
    cases = [
        (request_plist(odd_csr, chain_pem=vendor.chain_pem, signature=sign(vendor, odd_csr)), "bad_csr"),
        (request_plist(csr, chain_pem=odd_chain, signature=sign(vendor, csr)), "foreign_chain"),
    ]
    for plist, code in cases:
        with pytest.raises(PortalError) as refused:
            verify_request(base64.b64encode(plist), authorities=authorities, now=now)
        assert refused.value.code == code
