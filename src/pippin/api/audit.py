"""Who changes things through the REST API: the API token's name and the client's address, as an audit actor.

Every mutating ``/api/v1`` route takes :data:`APIChanger` and passes it to the use case, which records the change
in the audit log in the same transaction.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from pippin.admin.audit import Actor, Interface
from pippin.api.deps import AdminAuth
from pippin.server.proxies import client_address


def _api_actor(request: Request, admin: AdminAuth) -> Actor:
    # The admin AdminRoute authenticated before the body was read (the router's own dependency says so too).
    return Actor(name=admin.token_name, interface=Interface.api, source=client_address(request))


APIChanger = Annotated[Actor, Depends(_api_actor)]
