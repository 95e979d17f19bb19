"""The server: one ASGI app assembling the three web sub-apps over one set of resources, and the jobs.

:func:`create_server` opens the database (migrating it to the newest schema), builds the resources once and
mounts, each with its own error contract and body limit:

- ``/console``: the admin console (HTML pages), ``console/app.py``;
- ``/mdm``: the device endpoints (plain text, never 401), ``device/app.py``;
- ``/enroll/web``: the enrollment sign-in page a device opens with user affinity (HTML), ``device/enrollment_web.py``;
- everything else: the REST API (JSON; ``/api/v1``, ``/api/docs``, ``/healthz``), ``api/app.py``.

Around all three, :class:`~pippin.server.proxies.TrustedProxyHeaders` believes forwarded headers from the
proxies in ``PIPPIN_TRUSTED_PROXIES`` only, and :class:`~pippin.server.security_headers.SecurityHeaders` adds the
browser-hardening headers, with a content policy per area. ``/`` leads to the console. The lifespan starts
the background jobs with the resources and stops them, then disposes the engine if the server opened it.
Nothing is global: two servers in one process share nothing.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractContextManager, ExitStack, asynccontextmanager

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from pippin.admin.passwords import PasswordWork
from pippin.api.app import create_api
from pippin.config import Settings
from pippin.console.app import create_console
from pippin.crypto.keys import KeyGenerator, generate_private_key
from pippin.device.app import create_device_app
from pippin.device.enrollment_web import create_enrollment_web_app
from pippin.private_files import secure_data_directory
from pippin.push.delivery import CertificateRefusal, IdentityLoader, PushSender
from pippin.server.proxies import TrustedProxyHeaders
from pippin.server.resources import Clock, DEPClientFactory, ServerResources, build_resources
from pippin.server.security_headers import CONSOLE_POLICY, DOCS_POLICY, SecurityHeaders
from pippin.store.db import create_db_engine
from pippin.store.migrate import check_schema
from pippin.store.models import utcnow

#: Work that runs beside the server for its lifetime: entering the context starts it, leaving stops it.
ServerJob = Callable[[ServerResources], AbstractContextManager[object]]


def _to_console(_request: Request) -> Response:
    return RedirectResponse("/console/")


def _mount(path: str, app: ASGIApp) -> Mount:
    """``Mount(path, app)`` that also takes a path with a line break in it (``%0A`` in the URL).

    Starlette matches a mount's rest of path with ``.*``, which stops at a line break: such a path would match
    no mount, not even the API's catch-all, and get Starlette's bare plain-text 404 instead of the contract of
    the area it is in. The sub-app then decides, as for any other path it does not know.
    """
    mount = Mount(path, app=app)
    mount.path_regex = re.compile(mount.path_regex.pattern, re.DOTALL)
    return mount


def create_server(
    settings: Settings,
    *,
    engine: Engine | None = None,
    jobs: Sequence[ServerJob] = (),
    open_dep_client: DEPClientFactory | None = None,
    clock: Clock = utcnow,
    generate_key: KeyGenerator = generate_private_key,
    password_work: PasswordWork | None = None,
    apns: PushSender | None = None,
    load_push_identity: IdentityLoader | None = None,
    record_push_certificate_refusal: CertificateRefusal | None = None,
) -> Starlette:
    """The server for ``settings``; its database is ``engine`` if given (the caller then disposes it).

    The outside clients default to the production ones (Apple's DEP service at ``settings.dep_base_url``, the
    wall clock, real key generation, bounded argon2); tests pass their own. The resources are at
    ``server.state.resources``.
    """
    secure_data_directory(settings.data_dir)
    owns_engine = engine is None
    if engine is None:
        # hide_parameters: a failed statement's message would otherwise carry its values into the log.
        engine = create_db_engine(settings.resolved_database_url, hide_parameters=True)
    try:
        check_schema(engine)
        resources = build_resources(
            settings,
            engine,
            open_dep_client=open_dep_client,
            clock=clock,
            generate_key=generate_key,
            password_work=password_work,
            apns=apns,
            load_push_identity=load_push_identity,
            record_push_certificate_refusal=record_push_certificate_refusal,
        )
    except BaseException:
        # Refused before it served (a schema behind, another master key): its connections end here.
        if owns_engine:
            engine.dispose()
        raise
    started_jobs = tuple(jobs)
    owns_apns = apns is None

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            with ExitStack() as running_jobs:
                for job in started_jobs:
                    running_jobs.enter_context(job(resources))
                yield
        finally:
            if owns_apns:
                resources.apns.close()
            if owns_engine:
                resources.engine.dispose()

    server = Starlette(
        routes=[
            Route("/", _to_console, include_in_schema=False),
            Route("/console", _to_console, include_in_schema=False),
            _mount("/console", create_console(resources)),
            _mount("/mdm", create_device_app(resources)),
            _mount("/enroll/web", create_enrollment_web_app(resources)),
            # Last: the API answers every other path, so an unknown one gets the API's JSON 404.
            _mount("", create_api(resources)),
        ],
        middleware=[
            # Outermost: every layer below sees the forwarded client and scheme, or the peer's own.
            Middleware(TrustedProxyHeaders, trusted=settings.trusted_proxies),
            Middleware(
                SecurityHeaders,
                policies=(("/console", CONSOLE_POLICY), ("/enroll/web", CONSOLE_POLICY), ("/api/docs", DOCS_POLICY)),
            ),
        ],
        lifespan=lifespan,
    )
    server.state.resources = resources
    return server
