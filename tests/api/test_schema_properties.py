"""Every operation of the REST API's own OpenAPI description, sent requests that Schemathesis generates from it.

The server is ``pippin serve``'s, on SQLite and PostgreSQL, its Apple the simulator, and its database holds a
realistic fleet (``seed_fleet``): a DEP token connected through the simulated Business Manager, a token awaiting
Apple's file, synced devices (one enrolled), a profile assigned to some of them and the token's default, and two
console admins. Path parameters are mostly drawn from the rows that exist at that moment (a Schemathesis hook),
so the requests reach real rows and not only 404s.

Each operation is run three ways: with no token, with a read-only API token and with a read-write one. The
properties, for every response: never a 5xx; the status code is one the schema documents for the operation, the
content type and the body are the ones documented for that status. Without a token every ``/api/v1`` answer is
401; with a read-only token every write is 403 (both before the body is read, ``api/deps.py``). What was sent is
counted per database and token, and printed at the end of the run (``tests/api/conftest.py``).

Deterministic and bounded: Hypothesis is derandomized, keeps no example database and has no deadline; each
operation gets a fixed number of positive and negative (schema-violating) examples.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select

from pippin.admin import users as user_service
from pippin.admin.api_tokens import create_api_token
from pippin.admin.passwords import PasswordWork
from pippin.api.deps import READING_METHODS
from pippin.config import Settings
from pippin.dep import token as token_service
from pippin.server.resources import ServerResources
from pippin.store.db import read_transaction, transaction
from pippin.store.models import (
    MAX_STORED_INTEGER,
    AdminUser,
    CommandApproval,
    DEPProfile,
    DEPToken,
    Device,
    Enrollment,
    EnrollmentStatus,
)
from tests.actors import TEST_ACTOR
from tests.api import request_counts
from tests.api.request_counts import RunCounts
from tests.api.rows import every_row
from tests.e2e.apple import add_devices, connect_token
from tests.servers import cheap_argon2
from tests.simulator import RunningSimulator

#: Examples per operation and token mode: a database's three runs take about a minute on a busy 2-core machine.
POSITIVE_EXAMPLES = 12
NEGATIVE_EXAMPLES = 6
BASE_URL = "http://testserver"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

#: The checks run on every response. ``not_a_server_error`` is the point; the others hold the app to its schema.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

#: Which path parameter names which kind of row (``KnownRows`` reads the names of each kind from the database).
PATH_KINDS = {
    ("/api/v1/dep/tokens", "name"): "token",
    ("/api/v1/profiles/defaults", "token"): "token",
    ("/api/v1/profiles", "name"): "profile",
    ("/api/v1/devices", "serial"): "serial",
    ("/api/v1/admins", "email"): "email",
    ("/api/v1/command-approvals", "approval_id"): "approval",
}

#: Operations that remove what the others need; they run last, in this order.
LAST = ("PATCH /api/v1/profiles/{name}", "DELETE /api/v1/profiles/{name}", "DELETE /api/v1/dep/tokens/{name}")


@pytest.fixture
def settings(settings: Settings, sim: RunningSimulator) -> Settings:
    """The test settings with the simulator as Apple: a sync, an account check and an assignment reach it."""
    return settings.model_copy(update={"dep_base_url": sim.base_url})


@pytest.fixture
def server_clients() -> dict[str, Any]:
    # Sign-ins and new passwords hash with cheap argon2: these tests check translation, not the hash's cost.
    return {"password_work": PasswordWork(cheap_argon2())}


def seed_fleet(
    client: TestClient, resources: ServerResources, settings: Settings, sim: RunningSimulator
) -> dict[str, dict[str, str]]:
    """Fill the database as the module docstring says; returns the headers each token mode sends."""
    factory = resources.session_factory
    with transaction(factory) as session:
        _, read_write = create_api_token(session, name="schema-admin", scope="read-write", actor=TEST_ACTOR)
        _, read_only = create_api_token(session, name="schema-reader", scope="read-only", actor=TEST_ACTOR)
        hashes = cheap_argon2()
        for email, role in (("ann@example.com", "admin"), ("bob@example.com", "read-only")):
            user_service.create_user(
                session, email=email, password="correct horse battery", role=role, actor=TEST_ACTOR, passwords=hashes
            )
        token_service.create_keypair(
            session, name="berlin", box=resources.secret_box, actor=TEST_ACTOR, generate_key=resources.generate_key
        )
    server_uuid = connect_token(factory, settings, sim, "acme", generate_key=resources.generate_key)
    serials = add_devices(sim, server_uuid, 6)
    admin = {"Authorization": f"Bearer {read_write}"}
    synced = client.post("/api/v1/dep/tokens/acme/sync", params={"full": "true"}, headers=admin)
    assert synced.status_code == 202, synced.text
    created = client.post("/api/v1/profiles", json={"name": "Staff", "department": "Sales"}, headers=admin)
    assert created.status_code == 201, created.text
    assigned = client.post("/api/v1/profiles/Staff/assignments", json={"serials": serials[:3]}, headers=admin)
    assert assigned.status_code == 202, assigned.text
    default = client.put("/api/v1/profiles/defaults/acme", json={"profile": "Staff"}, headers=admin)
    assert default.status_code == 204, default.text
    with transaction(factory) as session:
        device = session.scalars(select(Device).where(Device.serial_number == serials[0])).one()
        staff = session.scalars(select(DEPProfile).where(DEPProfile.name == "Staff")).one()
        session.add(
            Enrollment(
                udid="UDID-SCHEMA-1",
                serial_number=device.serial_number,
                device_id=device.id,
                status=EnrollmentStatus.enrolled,
                profile_id=staff.id,
                profile_revision=staff.revision,
                first_contact_at=NOW,
                enrolled_at=NOW,
            )
        )
    erase = {"request_type": "EraseDevice", "serials": [serials[0]]}
    asked = client.post("/api/v1/commands", json=erase, headers=admin)
    assert asked.status_code == 202 and asked.json()["approval"] is not None, asked.text
    listed = client.get("/api/v1/devices", headers=admin).json()["devices"]
    assert sorted(device["serial_number"] for device in listed) == sorted(serials)
    return {"anonymous": {}, "read-only": {"Authorization": f"Bearer {read_only}"}, "read-write": admin}


@dataclass
class KnownRows:
    """The names of rows that exist, by kind (the oldest few: the seeded ones first), read again before each
    operation's run: a run of one operation may create, rename or delete some."""

    resources: ServerResources
    names: dict[str, list[str]] = field(default_factory=dict)

    def refresh(self) -> None:
        with read_transaction(self.resources.session_factory) as session:
            self.names = {
                "token": list(session.scalars(select(DEPToken.name).order_by(DEPToken.id).limit(4))),
                "profile": list(session.scalars(select(DEPProfile.name).order_by(DEPProfile.id).limit(4))),
                "serial": list(session.scalars(select(Device.serial_number).order_by(Device.id).limit(4))),
                "email": list(session.scalars(select(AdminUser.email).order_by(AdminUser.id).limit(4))),
                "approval": [
                    str(i) for i in session.scalars(select(CommandApproval.id).order_by(CommandApproval.id).limit(4))
                ],
            }

    def _one_of(self, kind: str, generated: Any) -> st.SearchStrategy[Any]:
        values = self.names.get(kind, [])
        return st.sampled_from([generated, *values]) if values else st.just(generated)

    def path_hook(self) -> Callable[..., st.SearchStrategy[dict[str, Any]]]:
        """Schemathesis's ``flatmap_path_parameters`` hook: each path parameter is the generated value or, more
        often, one of the rows of its kind."""

        def flatmap_path_parameters(context: schemathesis.HookContext, path_parameters: dict[str, Any]) -> Any:
            operation = context.operation
            if operation is None or not path_parameters:
                return st.just(path_parameters)
            return st.fixed_dictionaries(
                {
                    name: self._one_of(kind, generated) if _may_name_a_row(kind, generated) else st.just(generated)
                    for name, generated in path_parameters.items()
                    for kind in [_kind_of(operation.path, name) or ""]
                }
            )

        return flatmap_path_parameters

    def valid_input_hooks(self) -> schemathesis.hooks.HookDispatcher:
        """Hooks for positive cases only: the token and profile filters of a query, and the serials, token and
        profile of a body, from the rows (a negative case keeps its invalid values, or it would become valid)."""
        hooks = schemathesis.hooks.HookDispatcher(scope=schemathesis.hooks.HookScope.TEST)

        def known_fields(values: Any) -> Any:
            if not isinstance(values, dict):
                return st.just(values)
            choices: dict[str, st.SearchStrategy[Any]] = {}
            for key, generated in values.items():
                if key in ("token", "profile") and (generated is None or isinstance(generated, str)):
                    choices[key] = self._one_of(key, generated)
                elif key == "serials" and isinstance(generated, list) and self.names.get("serial"):
                    serials = st.lists(st.sampled_from(self.names["serial"]), min_size=1, max_size=3, unique=True)
                    choices[key] = st.one_of(st.just(generated), serials)
                else:
                    choices[key] = st.just(generated)
            return st.fixed_dictionaries(choices)

        def flatmap_query(context: schemathesis.HookContext, query: Any) -> Any:
            return known_fields(query)

        def flatmap_body(context: schemathesis.HookContext, body: Any) -> Any:
            operation = context.operation
            if operation is not None and operation.path.endswith("/assignments") and self.names.get("serial"):
                # The body names its devices exactly one way, which the schema cannot say: offer each way.
                one_way = st.one_of(
                    st.fixed_dictionaries({"serials": st.lists(st.sampled_from(self.names["serial"]), min_size=1)}),
                    st.just({"all_unassigned": True}),
                    st.fixed_dictionaries({"token": self._one_of("token", "acme")}),
                )
                return st.one_of(known_fields(body), one_way)
            return known_fields(body)

        hooks.hook(flatmap_query)
        hooks.hook(flatmap_body)
        return hooks


def _may_name_a_row(kind: str, generated: Any) -> bool:
    """Whether a generated path parameter may be swapped for an existing row's of ``kind``: a whole number the
    database holds for an id, text for a name. Anything else is a schema-violating value of a negative case, which
    must reach the server as it is (a row's id in its place would make the case valid, and the server's 200 a false
    finding)."""
    if kind == "approval":
        return isinstance(generated, int) and not isinstance(generated, bool) and 1 <= generated <= MAX_STORED_INTEGER
    return isinstance(generated, str)


def _kind_of(path: str, parameter: str) -> str | None:
    for (prefix, name), kind in PATH_KINDS.items():
        if name == parameter and path.startswith(prefix + "/{"):
            return kind
    return None


def can_be_violated(described: dict[str, Any]) -> bool:
    """Whether an operation (its OpenAPI object) takes anything a request can get wrong: a body, a query or header
    parameter, or a path parameter narrower than any text. Only those get negative cases (Hypothesis would
    search in vain for the others)."""
    if "requestBody" in described:
        return True
    for parameter in described.get("parameters", []):
        if parameter["in"] != "path":
            return True
        narrowed = set(parameter.get("schema", {})) - {"type", "title", "description"}
        if narrowed or parameter["schema"].get("type") != "string":
            return True
    return False


def _operation_order(label: str) -> int:
    return LAST.index(label) + 1 if label in LAST else 0


def send(client: TestClient, case: schemathesis.Case, headers: dict[str, str]) -> Any:
    """Send ``case`` through the test's own client, as the bytes Schemathesis serialized (``requests`` encodes
    JSON, forms and multipart bodies), with the mode's token."""
    kwargs = case.as_transport_kwargs(base_url=BASE_URL)
    prepared = requests.Request(
        method=kwargs["method"],
        url=kwargs["url"],
        headers={**(kwargs.get("headers") or {}), **headers},
        params=kwargs.get("params"),
        data=kwargs.get("data"),
        json=kwargs.get("json"),
        files=kwargs.get("files"),
        cookies=kwargs.get("cookies"),
    ).prepare()
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
    assert prepared.url is not None and prepared.method is not None
    return client.request(prepared.method, prepared.url, headers=dict(prepared.headers), content=body or b"")


@dataclass
class Findings:
    """What went wrong, one line per (operation, problem), with the first request that showed it."""

    lines: dict[str, str] = field(default_factory=dict)

    def add(self, key: str, text: str) -> None:
        self.lines.setdefault(key, text)


def check_auth(mode: str, case: schemathesis.Case, status: int) -> str | None:
    """Without a token every /api/v1 answer is 401; with a read-only token every write is 403."""
    if not case.path.startswith("/api/v1"):
        return None
    if mode == "anonymous" and status != 401:
        return f"answered {status} without a token (expected 401)"
    if mode == "read-only" and case.method.upper() not in READING_METHODS and status != 403:
        return f"answered {status} to a read-only token's write (expected 403)"
    return None


@pytest.mark.parametrize("mode", ["anonymous", "read-only", "read-write"])
def test_every_operation_answers_as_its_schema_says(
    mode: str,
    client: TestClient,
    resources: ServerResources,
    settings: Settings,
    sim: RunningSimulator,
    database_url: str,
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
) -> None:
    headers = seed_fleet(client, resources, settings, sim)[mode]
    before = every_row(resources) if mode == "anonymous" else None
    answer = client.get("/api/openapi.json")
    assert answer.status_code == 200
    openapi = answer.json()
    schema = schemathesis.openapi.from_dict(openapi, config=schemathesis.Config())
    # The mode's token is sent as it is: Schemathesis neither generates an Authorization header nor, in negative
    # cases, takes the token away (which would make a valid request look like an invalid one accepted).
    schema.config.generation.update(with_security_parameters=False)
    known = KnownRows(resources)
    schema.hook(known.path_hook())
    valid_inputs = known.valid_input_hooks()
    operations = [result.ok() for result in schema.get_all_operations()]
    operations.sort(key=lambda operation: _operation_order(operation.label))
    assert len(operations) >= 20, [operation.label for operation in operations]
    database = database_url.split(":", 1)[0].split("+", 1)[0]
    counts = RunCounts()
    findings = Findings()

    def check(case: schemathesis.Case, response: Any) -> None:
        label = case.operation.label
        counts.record(label, response.status_code)
        problem = check_auth(mode, case, response.status_code)
        if problem is not None:
            findings.add(f"{label}: auth", f"{label} {problem}: {_describe(case)}")
        try:
            case.validate_response(response, checks=CHECKS, headers=dict(headers))
        except FailureGroup as group:
            for failure in group.exceptions:
                findings.add(f"{label}: {failure.title}", f"{label}: {failure!s}\n{_describe(case)}")

    for operation in operations:
        described = openapi["paths"][operation.path][operation.method.lower()]
        runs = [(schemathesis.GenerationMode.POSITIVE, POSITIVE_EXAMPLES)]
        if can_be_violated(described):
            runs.append((schemathesis.GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES))
        for generation_mode, examples in runs:
            known.refresh()
            hooks = valid_inputs if generation_mode.is_positive else None
            exercise(operation, generation_mode, examples, hooks, lambda case: send(client, case, headers), check)

    request.node.user_properties.append((request_counts.PROPERTY, counts.as_property(database, mode)))
    # A failure that became no 5xx (in a background sync or assignment, say) still shows as a logged traceback.
    tracebacks = [record for record in caplog.records if record.exc_info or record.levelno >= logging.ERROR]
    for record in tracebacks:
        findings.add(f"log: {record.getMessage()[:80]}", f"logged {record.levelname}: {caplog.text[-4000:]}")
    if before is not None:
        assert every_row(resources) == before, "a request without a token changed the database"
    untouched = {operation.label for operation in operations} - set(counts.by_operation)
    assert not untouched, f"operations never exercised: {sorted(untouched)}"
    assert counts.server_errors == 0 and not findings.lines, "\n\n".join(findings.lines.values())


def exercise(
    operation: schemathesis.APIOperation,
    generation_mode: schemathesis.GenerationMode,
    examples: int,
    hooks: schemathesis.hooks.HookDispatcher | None,
    send_case: Callable[[schemathesis.Case], Any],
    check: Callable[[schemathesis.Case, Any], None],
) -> None:
    """Send ``examples`` cases of ``operation`` drawn in ``generation_mode`` and check each answer."""

    @hypothesis.settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        # No shrinking: a failure is recorded with its request and the run goes on (``check`` raises nothing).
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        # Drawing a request from a large schema is slow by Hypothesis's measure, and most of the draws of a
        # schema-violating case are filtered out: both are how Schemathesis works, not a problem of the test.
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=generation_mode, hooks=hooks))
    def run(case: schemathesis.Case) -> None:
        check(case, send_case(case))

    run()


def _describe(case: schemathesis.Case) -> str:
    return case.as_curl_command(base_url=BASE_URL)
