"""What a server holds for its whole life: settings, database, secret box, and the outside clients it uses.

Built once by :func:`build_resources` (``create_server`` calls it) and handed down: every sub-app reads them
from its state, the background jobs receive them, and the interface layer passes the clients on to the
services as keyword arguments. Services never import this module; they only see the callables.

The outside clients are injected here, not looked up by the services: production gets Apple's DEP client, the
wall clock and real key generation; a test passes its fake Apple, its frozen clock or its pool of keys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from pippin.admin import passwords as password_hashing
from pippin.admin.master_key import open_secret_box
from pippin.admin.passwords import PasswordWork
from pippin.config import Settings
from pippin.crypto.keys import KeyGenerator, generate_private_key
from pippin.crypto.secrets import SecretBox
from pippin.dep.sync_and_assign import SyncingClientFactory
from pippin.dep.token import dep_client_factory
from pippin.push import certificate as push_certificate
from pippin.push.apns import APNsClient
from pippin.push.delivery import CertificateRefusal, IdentityLoader, PushSender
from pippin.store.db import SessionFactory, create_session_factory
from pippin.store.models import utcnow

#: The time as the server sees it (UTC, aware); injected so that tests never wait on the wall clock.
Clock = Callable[[], datetime]


#: Opens a DEP client for a stored token; raises the token's refusal (expired, refused by Apple) instead.
DEPClientFactory = SyncingClientFactory


@dataclass(frozen=True)
class ServerResources:
    """Everything one server instance holds for its life; its sub-apps and background jobs share it."""

    settings: Settings
    engine: Engine
    session_factory: SessionFactory
    secret_box: SecretBox
    #: How the server reaches Apple's DEP service for a token (the sync, profile assignment, the scheduler).
    open_dep_client: DEPClientFactory
    clock: Clock
    #: How the server makes private keys (DEP key pairs; next, the SCEP CA and the push certificate request).
    generate_key: KeyGenerator
    #: Every password hash of this process goes through it: a bounded number at once (``admin/passwords.py``).
    password_work: PasswordWork
    #: How the server reaches APNs (``push/apns.py``: one HTTP/2 connection per certificate, shared by all pushes).
    apns: PushSender
    #: The push certificate in force, from the certificate store (``None``: pushes wait).
    load_push_identity: IdentityLoader
    #: Tells the certificate store that APNs refused a certificate, so it is not used again until replaced.
    record_push_certificate_refusal: CertificateRefusal


def build_resources(
    settings: Settings,
    engine: Engine,
    *,
    open_dep_client: DEPClientFactory | None = None,
    clock: Clock = utcnow,
    generate_key: KeyGenerator = generate_private_key,
    password_work: PasswordWork | None = None,
    apns: PushSender | None = None,
    load_push_identity: IdentityLoader | None = None,
    record_push_certificate_refusal: CertificateRefusal | None = None,
) -> ServerResources:
    """The resources over ``engine``; outside clients not given are the production ones (and argon2 bounded by
    this machine's cores, APNs at ``settings.apns_base_url``)."""
    session_factory = create_session_factory(engine)
    # Refuses to start with another master key than the database's (admin/master_key.py).
    box = open_secret_box(session_factory, settings=settings)
    return ServerResources(
        settings=settings,
        engine=engine,
        session_factory=session_factory,
        secret_box=box,
        open_dep_client=open_dep_client or dep_client_factory(box=box, settings=settings),
        clock=clock,
        generate_key=generate_key,
        password_work=password_work or PasswordWork(password_hashing.DEFAULT_PASSWORDS),
        apns=apns or APNsClient.from_settings(settings),
        load_push_identity=load_push_identity
        or (lambda session: push_certificate.identity_for_pushes(session, box=box, now=clock())),
        record_push_certificate_refusal=record_push_certificate_refusal
        or push_certificate.push_certificate_refused(clock=clock),
    )
