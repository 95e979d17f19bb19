"""``/api/v1/profiles``: enrollment profiles and their assignment, the REST face of ``pippin.dep.profiles`` and
``pippin.dep.assignment``.

Creating, editing and assigning only write Pippin's database (an edit queues every device that had the profile);
Apple hears of it at the next sync, or at once through ``POST /api/v1/profiles/retry-due``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Body, Path, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from pippin.api.audit import APIChanger
from pippin.api.deps import AdminRoute
from pippin.api.errors import ErrorRead
from pippin.dep import assignment as assignment_service
from pippin.dep import assignment_runner
from pippin.dep import profiles as profile_service
from pippin.dep.profile_schemas import AssignmentQueued, ProfileCreate, ProfileRead, ProfileUpdate
from pippin.mdm import setup_commands as setup_service
from pippin.mdm.setup_schemas import SetupCommandCreate, SetupCommandRead
from pippin.server.background import send_due_assignments_after_response
from pippin.server.deps import AppSettings, DBSession, Resources
from pippin.server.integers import WHOLE_NUMBER
from pippin.store.models import MAX_STORED_INTEGER
from pippin.text import Line

router = APIRouter(prefix="/profiles", tags=["enrollment profiles"], route_class=AdminRoute)

_BAD: dict[int | str, dict[str, Any]] = {400: {"model": ErrorRead, "description": "A value breaks Apple's rules."}}
_BAD_NAME: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorRead, "description": "A name in the path or body is not valid text."}
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorRead, "description": "No such profile."}}
_CONFLICT: dict[int | str, dict[str, Any]] = {409: {"model": ErrorRead, "description": "The name is taken or in use."}}


class AssignmentCreate(BaseModel):
    """Which devices to give the profile: serial numbers, or every unassigned device, or a token's devices.

    Exactly one of the three: each names a set of devices of its own, and a body giving two is refused rather
    than guessed at (the service refuses it too, for every interface).
    """

    model_config = ConfigDict(extra="forbid")

    serials: list[Annotated[Line, Field(max_length=64)]] = Field(default_factory=list, max_length=100_000)
    all_unassigned: bool = False
    token: Line | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _one_way_of_naming_devices(self) -> AssignmentCreate:
        given = [
            field
            for field, chosen in (
                ("serials", bool(self.serials)),
                ("all_unassigned", self.all_unassigned),
                ("token", self.token is not None),
            )
            if chosen
        ]
        if len(given) != 1:
            said = "gives none" if not given else "gives " + " and ".join(given)
            raise PydanticCustomError(
                "contradictory_fields",
                "Give exactly one of serials, all_unassigned (true) or token; this body {said}",
                {"said": said},
            )
        return self


class DefaultProfileUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profile: Line | None = Field(max_length=200, description="The profile's name; null gives new devices none.")


@router.get("", response_model=list[ProfileRead])
def list_profiles(session: DBSession, settings: AppSettings) -> list[ProfileRead]:
    """Every enrollment profile, with its panes, definitions at Apple and device counts."""
    return profile_service.list_profiles(session, settings=settings)


@router.post("", response_model=ProfileRead, status_code=201, responses={**_BAD, **_CONFLICT})
def create_profile(body: ProfileCreate, session: DBSession, settings: AppSettings, actor: APIChanger) -> ProfileRead:
    """Create a profile after checking Apple's rules; it is defined at Apple when first assigned."""
    return profile_service.create_profile(session, data=body, settings=settings, actor=actor)


@router.get("/{name}", response_model=ProfileRead, responses={**_BAD_NAME, **_NOT_FOUND})
def read_profile(name: str, session: DBSession, settings: AppSettings) -> ProfileRead:
    return profile_service.read_profile(session, name=name, settings=settings)


@router.patch("/{name}", response_model=ProfileRead, responses={**_BAD, **_NOT_FOUND, **_CONFLICT})
def update_profile(
    name: str,
    body: ProfileUpdate,
    session: DBSession,
    resources: Resources,
    background: BackgroundTasks,
    actor: APIChanger,
) -> ProfileRead:
    """Change a profile. A change Apple sees raises the revision and queues every device that had the profile;
    they are sent to Apple in the background once the change is committed."""
    updated = profile_service.update_profile(session, name=name, changes=body, settings=resources.settings, actor=actor)
    send_due_assignments_after_response(background, resources)
    return updated


@router.delete("/{name}", status_code=204, response_class=Response, responses={**_BAD_NAME, **_NOT_FOUND, **_CONFLICT})
def delete_profile(name: str, session: DBSession, actor: APIChanger) -> Response:
    """Delete a profile that no device and no token uses."""
    profile_service.delete_profile(session, name=name, actor=actor)
    return Response(status_code=204)


@router.post("/{name}/assignments", response_model=AssignmentQueued, status_code=202, responses={**_BAD, **_NOT_FOUND})
def assign_profile(
    name: str,
    body: AssignmentCreate,
    session: DBSession,
    resources: Resources,
    background: BackgroundTasks,
    actor: APIChanger,
) -> AssignmentQueued:
    """Queue devices for the profile; once committed they are sent to Apple in the background, in batches of
    1000 (each device's outcome shows on the device)."""
    queued = assignment_service.queue_assignment(
        session,
        profile_name=name,
        serials=body.serials,
        all_unassigned=body.all_unassigned,
        token_name=body.token,
        actor=actor,
    )
    send_due_assignments_after_response(background, resources)
    return queued


@router.put("/defaults/{token}", status_code=204, response_class=Response, responses={**_BAD_NAME, **_NOT_FOUND})
def set_default_profile(
    token: str, session: DBSession, body: Annotated[DefaultProfileUpdate, Body()], actor: APIChanger
) -> Response:
    """Choose the profile the token's newly synced devices get."""
    profile_service.set_default_profile(session, token_name=token, profile_name=body.profile, actor=actor)
    return Response(status_code=204)


class RetryDueStarted(BaseModel):
    due: int = Field(description="Devices due now; they are sent in the background, in batches of 1000.")


@router.post("/retry-due", response_model=RetryDueStarted, status_code=202)
def retry_due(
    session: DBSession, resources: Resources, background: BackgroundTasks, actor: APIChanger
) -> RetryDueStarted:
    """Send the due assignments to Apple in the background; each device's outcome shows on the device."""
    request = assignment_runner.request_due_send(session, actor=actor)
    send_due_assignments_after_response(background, resources)
    return RetryDueStarted(due=request.due)


@router.get("/{name}/setup-commands", response_model=list[SetupCommandRead], responses={**_BAD_NAME, **_NOT_FOUND})
def list_setup_commands(name: str, session: DBSession) -> list[SetupCommandRead]:
    """The profile's enrollment-time commands, in the order a device awaiting configuration gets them."""
    return setup_service.list_setup_commands(session, profile_name=name)


@router.post(
    "/{name}/setup-commands",
    response_model=SetupCommandRead,
    status_code=201,
    responses={**_BAD, **_NOT_FOUND},
)
def add_setup_command(
    name: str, body: SetupCommandCreate, session: DBSession, resources: Resources, actor: APIChanger
) -> SetupCommandRead:
    """Add a command after the profile's others: a configuration profile to install (base64, kept sealed) or a
    device name template. Refused whole when the device could not be sent it."""
    return setup_service.add_setup_command(
        session, profile_name=name, data=body, box=resources.secret_box, actor=actor, now=resources.clock()
    )


@router.delete(
    "/{name}/setup-commands/{command_id}",
    status_code=204,
    response_class=Response,
    responses={**_BAD_NAME, **_NOT_FOUND},
)
def remove_setup_command(
    name: str,
    command_id: Annotated[int, Path(ge=1, le=MAX_STORED_INTEGER), WHOLE_NUMBER],
    session: DBSession,
    resources: Resources,
    actor: APIChanger,
) -> Response:
    """Remove an enrollment-time command; devices that got it keep what it did."""
    setup_service.remove_setup_command(
        session, profile_name=name, command_id=command_id, actor=actor, now=resources.clock()
    )
    return Response(status_code=204)
