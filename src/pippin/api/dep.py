"""``/api/v1/dep/tokens``: DEP key pairs and server tokens, the REST face of ``pippin.dep.token``.

Each route parses, calls one service function and returns its schema; statuses for errors come from
``api/errors.py``. Secrets (private keys, the token's OAuth values) never leave the service layer.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, File, Form, Query, Response, UploadFile

from pippin.api.audit import APIChanger
from pippin.api.deps import AdminRoute
from pippin.api.errors import DEP_RESPONSES, ErrorRead
from pippin.dep import sync as sync_service
from pippin.dep import sync_runs as sync_run_service
from pippin.dep import token as token_service
from pippin.dep import token_deletion as token_deletion_service
from pippin.dep.schemas import DEPTokenRead, TokenDeletionRead, TokenUploadResult
from pippin.dep.sync_schemas import SyncRunRead
from pippin.dep.wire import Account
from pippin.server.background import run_sync_after_response
from pippin.server.deps import AppSettings, DBSession, Resources
from pippin.server.errors import RequestTooLarge
from pippin.server.integers import WHOLE_NUMBER
from pippin.text import Line

router = APIRouter(prefix="/dep/tokens", tags=["dep tokens"], route_class=AdminRoute)

_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorRead, "description": "No DEP token has this name."}}
_BAD_NAME: dict[int | str, dict[str, Any]] = {400: {"model": ErrorRead, "description": "A value is not valid."}}


@router.get("", response_model=list[DEPTokenRead])
def list_dep_tokens(session: DBSession, settings: AppSettings) -> list[DEPTokenRead]:
    """Every DEP token with its Apple MDM server, expiry, status and sync health."""
    return sync_run_service.with_sync_health(session, tokens=token_service.list_tokens(session), settings=settings)


@router.get("/{name}", response_model=DEPTokenRead, responses={**_BAD_NAME, **_NOT_FOUND})
def read_dep_token(name: str, session: DBSession, settings: AppSettings) -> DEPTokenRead:
    """One DEP token: its Apple MDM server, expiry, status and sync health."""
    token = token_service.read_token(session, name=token_service.validate_existing_name(name))
    return sync_run_service.with_sync_health(session, tokens=[token], settings=settings)[0]


@router.get("/{name}/deletion", response_model=TokenDeletionRead, responses={**_BAD_NAME, **_NOT_FOUND})
def preview_dep_token_deletion(name: str, session: DBSession) -> TokenDeletionRead:
    """What deleting the token would remove (``deleted`` false): its devices' records, sync runs, profile
    definitions and queued assignments, and how many enrollments would be unlinked. Changes nothing."""
    return token_deletion_service.preview_token_deletion(session, name=name)


@router.delete(
    "/{name}",
    response_model=TokenDeletionRead,
    responses={
        **_BAD_NAME,
        **_NOT_FOUND,
        409: {"model": ErrorRead, "description": "A sync of the token is running; `Retry-After` says when to retry."},
    },
)
def delete_dep_token(name: str, session: DBSession, actor: APIChanger) -> TokenDeletionRead:
    """Delete the token and what is only its, in one transaction; answers with what was removed.

    Enrollments are kept (unlinked from the deleted records). Nothing is sent to Apple: the devices stay assigned
    to this MDM server at Apple until they are released in Apple Business Manager.
    """
    return token_deletion_service.delete_token(session, name=name, actor=actor)


@router.post(
    "/{name}/keypair",
    response_class=Response,
    responses={
        200: {
            "content": {"application/x-pem-file": {}},
            "description": "The certificate to upload to the MDM server in Apple Business Manager.",
        },
        **_BAD_NAME,
    },
)
def create_dep_keypair(name: str, session: DBSession, resources: Resources, actor: APIChanger) -> Response:
    """Create the key pair for token ``name`` (and the token, awaiting Apple's file, if new); returns the .pem.

    Asking again returns the same certificate while it is well within its validity, so a .pem already uploaded
    to Apple stays the one Apple encrypts to.
    """
    certificate_pem = token_service.create_keypair(
        session, name=name, box=resources.secret_box, actor=actor, generate_key=resources.generate_key
    )
    # The service accepted the name, so it holds only letters, digits, '.', '_' and '-': safe in the header.
    return Response(
        certificate_pem,
        media_type="application/x-pem-file",
        headers={"Content-Disposition": f'attachment; filename="pippin-dep-{name}.pem"'},
    )


@router.put(
    "/{name}",
    response_model=TokenUploadResult,
    responses={
        **_BAD_NAME,
        **_NOT_FOUND,
        409: {"model": ErrorRead, "description": "The token belongs to another Apple MDM server."},
        **DEP_RESPONSES,
    },
)
def upload_dep_token(
    name: str,
    token: Annotated[UploadFile, File(description="The server token downloaded from Apple (*_smime.p7m).")],
    apple_id: Annotated[Line, Form(max_length=320, description="The Apple ID that downloaded the token.")],
    session: DBSession,
    resources: Resources,
    actor: APIChanger,
    force: Annotated[bool, Form(description="Relink the name to a different Apple MDM server.")] = False,
) -> TokenUploadResult:
    """Upload (or renew) the server token for ``name``: decrypted, proven with Apple, stored encrypted."""
    limit = token_service.MAX_TOKEN_FILE_BYTES
    p7m = token.file.read(limit + 1)
    if len(p7m) > limit:
        raise RequestTooLarge(
            f"The token file is larger than {limit:,} bytes; a DEP server token is a few kilobytes.",
            hint="Upload the *_smime.p7m file downloaded from Apple Business Manager.",
        )
    session.commit()  # end the request's transaction (authentication): none stays open while Apple answers
    return token_service.upload_token(
        resources.session_factory,
        name=name,
        p7m=p7m,
        apple_id=apple_id,
        box=resources.secret_box,
        settings=resources.settings,
        force=force,
        actor=actor,
    )


@router.get("/{name}/account", response_model=Account, responses={**_BAD_NAME, **_NOT_FOUND, **DEP_RESPONSES})
def read_dep_account(name: str, session: DBSession, resources: Resources) -> Account:
    """Ask Apple about the token's MDM server now (``GET /account``); a success brings a refused token back to ok."""
    session.commit()  # end the request's transaction (authentication): none stays open while Apple answers
    return token_service.fetch_account(
        resources.session_factory,
        name=token_service.validate_existing_name(name),
        box=resources.secret_box,
        settings=resources.settings,
    )


@router.post(
    "/{name}/sync",
    status_code=202,
    response_model=SyncRunRead,
    responses={
        **_BAD_NAME,
        **_NOT_FOUND,
        409: {"model": ErrorRead, "description": "A sync is running; `Retry-After` says when Sync reopens."},
    },
)
def start_dep_sync(
    name: str,
    session: DBSession,
    resources: Resources,
    background: BackgroundTasks,
    actor: APIChanger,
    full: Annotated[bool, Query(description="Read every device (within 7 days of the last: only new ones).")] = False,
) -> SyncRunRead:
    """Start a sync of the token's devices; it runs in the background (follow it at ``/syncs``).

    The claim commits with this request, before the background run starts.
    """
    started = sync_service.start_sync(
        session, token_name=name, settings=resources.settings, full=full, trigger="api", actor=actor
    )
    run_sync_after_response(background, resources, run_id=started.id)
    return started


@router.get("/{name}/syncs", response_model=list[SyncRunRead], responses={**_BAD_NAME, **_NOT_FOUND})
def list_dep_syncs(
    name: str,
    session: DBSession,
    limit: Annotated[int, Query(ge=1, le=sync_run_service.MAX_HISTORY), WHOLE_NUMBER] = 20,
) -> list[SyncRunRead]:
    """The token's latest sync runs, newest first: kind, outcome, error code and counts."""
    return sync_run_service.list_sync_runs(session, token_name=name, limit=limit)
