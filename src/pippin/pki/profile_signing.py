"""Signing an enrollment profile: CMS SignedData over the plist, content attached, DER, SHA-256, with the chain.

What the reference prescribes (``apple-mdm-protocol.md`` section 1.5) and what zentral does with
``cryptography``'s ``PKCS7SignatureBuilder``: the device verifies the signature and shows the profile as
verified. The builder has no custom signed attributes and no SHA-1, neither of which a profile needs.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from pippin.pki.server_identity import ServerIdentity


def sign_profile(identity: ServerIdentity, payload: bytes) -> bytes:
    """``payload`` (the .mobileconfig plist) signed by ``identity``, as DER CMS SignedData holding the payload."""
    builder = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(payload)
        .add_signer(identity.certificate, identity.private_key, hashes.SHA256())
    )
    for certificate in identity.chain:
        builder = builder.add_certificate(certificate)
    return builder.sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
