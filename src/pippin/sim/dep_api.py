"""Apple's DEP API at Apple's paths (``mdmenrollment.apple.com``): thin routes over the simulator's services.

Each route names its depsim endpoint key (for faults) and hands the work to a handler; :mod:`pippin.sim.exchange`
does User-Agent, faults, authentication, body parsing and Apple's response conventions. Wrong methods answer
405 and unknown paths 404 ``NOT_FOUND`` through :func:`pippin.sim.wire.install_error_pages`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from pippin.sim import account, device_actions, device_feed, enrollment_services, profiles
from pippin.sim.exchange import DEPCall, serve, serve_session

router = APIRouter(include_in_schema=False)


def _page_request(call: DEPCall) -> device_feed.PageRequest:
    return device_feed.PageRequest(server=call.server, org=call.org, version=call.version, now=call.now)


def _caller(call: DEPCall) -> profiles.Caller:
    return profiles.Caller(server=call.server, version=call.version, now=call.now, faults=call.faults)


def _account(call: DEPCall) -> dict[str, Any]:
    return account.account(call.session, server=call.server, org=call.org, version=call.version)


def _fetch(call: DEPCall) -> dict[str, Any]:
    return device_feed.fetch_page(call.session, _page_request(call), call.body)


def _sync(call: DEPCall) -> dict[str, Any]:
    return device_feed.sync_page(
        call.session,
        _page_request(call),
        call.body,
        repeat_cursor=call.faults.repeat_cursor,
        hide_cooling=call.faults.hide_cooling_devices,
    )


def _details(call: DEPCall) -> dict[str, Any]:
    return device_actions.device_details(
        call.session, server=call.server, version=call.version, faults=call.faults, body=call.body
    )


def _disown(call: DEPCall) -> dict[str, Any]:
    return device_actions.disown_devices(
        call.session, server=call.server, now=call.now, faults=call.faults, body=call.body
    )


def _activation_lock(call: DEPCall) -> dict[str, Any]:
    return device_actions.activation_lock(call.session, server=call.server, now=call.now, body=call.body)


def _define_profile(call: DEPCall) -> dict[str, Any]:
    return profiles.define_profile(call.session, _caller(call), call.body)


def _get_profile(call: DEPCall) -> dict[str, Any]:
    return profiles.get_profile(call.session, _caller(call), call.query.get("profile_uuid"))


def _assign_profile(call: DEPCall) -> dict[str, Any]:
    return profiles.assign_profile(call.session, _caller(call), call.body)


def _remove_profile(call: DEPCall) -> dict[str, Any]:
    return profiles.remove_profile(call.session, _caller(call), call.body)


def _beta_tokens(call: DEPCall) -> dict[str, Any]:
    return enrollment_services.beta_enrollment_tokens(call.session)


def _get_discovery(call: DEPCall) -> dict[str, Any]:
    return enrollment_services.get_service_discovery(call.session, server=call.server)


def _set_discovery(call: DEPCall) -> dict[str, Any]:
    return enrollment_services.set_service_discovery(call.session, server=call.server, now=call.now, body=call.body)


def _remove_discovery(call: DEPCall) -> dict[str, Any]:
    return enrollment_services.remove_service_discovery(call.session, server=call.server)


def _replacement_details(call: DEPCall) -> dict[str, Any]:
    return enrollment_services.replacement_details(call.session, server=call.server, query=dict(call.query))


@router.get("/session")
async def session(request: Request) -> Response:
    return await serve_session(request)


@router.get("/account")
async def get_account(request: Request) -> Response:
    return await serve(request, "get_account", _account, with_body=False)


@router.post("/server/devices")
async def fetch_devices(request: Request) -> Response:
    return await serve(request, "post_server_devices", _fetch, with_body=True)


@router.post("/devices/sync")
async def sync_devices(request: Request) -> Response:
    return await serve(request, "post_devices_sync", _sync, with_body=True)


@router.post("/devices")
async def device_details(request: Request) -> Response:
    return await serve(request, "post_devices", _details, with_body=True)


@router.post("/devices/disown")
async def disown_devices(request: Request) -> Response:
    return await serve(request, "post_devices_disown", _disown, with_body=True)


@router.post("/device/activationlock")
async def activation_lock(request: Request) -> Response:
    return await serve(request, "post_device_activationlock", _activation_lock, with_body=True)


@router.post("/profile")
async def define_profile(request: Request) -> Response:
    return await serve(request, "post_profile", _define_profile, with_body=True)


@router.get("/profile")
async def get_profile(request: Request) -> Response:
    return await serve(request, "get_profile", _get_profile, with_body=False)


@router.post("/profile/devices")
async def assign_profile(request: Request) -> Response:
    return await serve(request, "post_profile_devices", _assign_profile, with_body=True)


@router.put("/profile/devices")
async def assign_profile_legacy(request: Request) -> Response:
    """depsim and nanodep assign with PUT; Apple accepts both (reference 3.7)."""
    return await serve(request, "put_profile_devices", _assign_profile, with_body=True)


@router.delete("/profile/devices")
async def remove_profile(request: Request) -> Response:
    return await serve(request, "delete_profile_devices", _remove_profile, with_body=True)


@router.get("/device/replacementDetails")
async def replacement_details(request: Request) -> Response:
    return await serve(request, "get_device_replacementdetails", _replacement_details, with_body=False)


@router.get("/os-beta-enrollment/tokens")
async def beta_enrollment_tokens(request: Request) -> Response:
    return await serve(request, "get_os_beta_enrollment_tokens", _beta_tokens, with_body=False)


@router.get("/account-driven-enrollment/profile")
async def get_service_discovery(request: Request) -> Response:
    return await serve(request, "get_account_driven_enrollment_profile", _get_discovery, with_body=False)


@router.post("/account-driven-enrollment/profile")
async def set_service_discovery(request: Request) -> Response:
    return await serve(request, "post_account_driven_enrollment_profile", _set_discovery, with_body=True)


@router.delete("/account-driven-enrollment/profile")
async def remove_service_discovery(request: Request) -> Response:
    return await serve(request, "delete_account_driven_enrollment_profile", _remove_discovery, with_body=False)
