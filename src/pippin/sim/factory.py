"""The factory: what Apple builds into each device, served for simulated devices and for other projects' tests.

- ``GET /factory/device-ca.pem``: the device CA chain (device CA first, root last) a server trusts as Apple's
  to check MachineInfo signatures (:mod:`pippin.sim.factory_ca`).
- ``GET /factory/devices/{serial}``: the device's facts (:mod:`pippin.sim.factory_facts`), JSON
  ``serial_number, udid, product, os_version, build_version, imei, meid`` (``imei``/``meid`` null on Wi-Fi iPads).
- ``GET /factory/devices/{serial}/identity.pem``: the device's private key (PKCS#8), its certificate, the chain.

No authentication, like the portal's test controls: it serves a loopback simulator's own test keys. An unknown
serial answers the portal's 404 ``{"error": "device_not_found", "detail": ...}``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel

from pippin.sim.factory_ca import device_ca_chain_pem, device_identity
from pippin.sim.factory_facts import DeviceFacts, device_facts
from pippin.sim.inventory import get_device
from pippin.sim.portal import PortalRoute, sim_state
from pippin.sim.state import SimState

router = APIRouter(route_class=PortalRoute, prefix="/factory", tags=["factory"])

PEM_TYPE = "application/x-pem-file"
SerialPath = Annotated[str, Path(max_length=64)]


class DeviceFactsRead(BaseModel):
    serial_number: str
    udid: str
    product: str
    os_version: str
    build_version: str
    imei: str | None
    meid: str | None


def facts_of(state: SimState, serial_number: str) -> DeviceFacts:
    """The facts of a device of the organisation; the portal's 404 when there is none."""
    with state.transaction() as session:
        return device_facts(get_device(session, serial_number=serial_number))


@router.get("/device-ca.pem", response_class=Response, responses={200: {"content": {PEM_TYPE: {}}}})
def read_device_ca(request: Request) -> Response:
    return Response(device_ca_chain_pem(sim_state(request)), media_type=PEM_TYPE)


@router.get("/devices/{serial_number}", response_model=DeviceFactsRead)
def read_device_facts(serial_number: SerialPath, request: Request) -> dict[str, str | None]:
    return facts_of(sim_state(request), serial_number).as_dict()


@router.get(
    "/devices/{serial_number}/identity.pem", response_class=Response, responses={200: {"content": {PEM_TYPE: {}}}}
)
def read_device_identity(serial_number: SerialPath, request: Request) -> Response:
    state = sim_state(request)
    facts = facts_of(state, serial_number)
    identity = device_identity(state, serial_number=facts.serial_number, udid=facts.udid)
    return Response(identity.pem(), media_type=PEM_TYPE, headers={"Cache-Control": "no-store"})
