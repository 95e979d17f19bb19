"""Fault injection for the DEP API and APNs: random rates per endpoint and depsim-style scripted sequences.

The schema (``PUT /portal/faults``), every key optional::

    {
      "seed": 7,                                      # reproducible draws (per endpoint, per request number)
      "rates": {"post_devices_sync": {"internal_server_error": 0.1, "repeated_cursor": 0.2},
                "all": {"latency": 0.05}},            # "all" applies where an endpoint sets no rate of its own
      "latency_seconds": 1.0, "retry_after_seconds": 2, "throttle_retry_after_seconds": 60,
      "hide_cooling_devices": false,                  # devices cooling down after FAILED/THROTTLED skip sync
      "get_session_responses": [{"count": 1, "response": "forbidden_t_c_not_signed"}]
    }

Endpoint keys and response names follow Apple's depsim failure config (reference section 9), so that file can
be PUT as it is. Scripted responses are consumed in order before any rate applies; once used up, the endpoint
behaves normally (plus rates). Every injected failure is decided before the request touches any state.

The simulated APNs provider API is one more endpoint, ``post_apns_device`` (``POST /3/device/{token}``), with
Apple's APNs answers as its faults (:data:`APNS_FAULTS`), ``dropped_connection`` (the TCP connection is reset),
``goaway`` (an HTTP/2 GOAWAY carrying ``{"reason":"Shutdown"}``, the push unanswered) and ``latency``::

    {"rates": {"post_apns_device": {"too_many_requests": 0.1, "latency": 0.01}},
     "post_apns_device_responses": [{"count": 2, "response": "service_unavailable"}]}

``all`` rates stay with the DEP endpoints: APNs is another service, with faults of its own.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pippin.sim.wire import AppleError

ENDPOINTS = (
    "get_session",
    "get_account",
    "post_server_devices",
    "post_devices_sync",
    "post_devices",
    "post_devices_disown",
    "post_profile",
    "get_profile",
    "post_profile_devices",
    "put_profile_devices",
    "delete_profile_devices",
    "post_device_activationlock",
    "get_device_replacementdetails",
    "get_os_beta_enrollment_tokens",
    "get_account_driven_enrollment_profile",
    "post_account_driven_enrollment_profile",
    "delete_account_driven_enrollment_profile",
)
APNS_ENDPOINT = "post_apns_device"
ALL_ENDPOINTS = "all"
_SEQUENCE_SUFFIX = "_responses"
ASSIGN_ENDPOINTS = frozenset({"post_profile", "post_profile_devices", "put_profile_devices"})
DEVICE_LIST_ENDPOINTS = ASSIGN_ENDPOINTS | {"post_devices", "post_devices_disown", "delete_profile_devices"}

#: Faults that replace the response; drawn together, so their rates on one endpoint must add up to at most 1.
RESPONSE_FAULTS = (
    "internal_server_error",
    "service_unavailable",
    "too_many_requests",
    "dropped_connection",
    "session_expired",
)
#: Faults drawn on their own: a delay before a normal answer, and sync's repeated-cursor quirk (reference 8).
EXTRA_FAULTS = ("latency", "repeated_cursor")
#: Per-device outcomes of an assignment, drawn per serial.
DEVICE_FAULTS = ("failed", "throttled")

_FIXED_ERRORS: dict[str, tuple[int, str]] = {
    "bad_request": (400, "BAD_REQUEST"),
    "forbidden": (403, "FORBIDDEN"),
    "forbidden_access_denied": (403, "ACCESS_DENIED"),
    "forbidden_t_c_not_signed": (403, "T_C_NOT_SIGNED"),
    "unauthorized": (401, "UNAUTHORIZED"),
    "invalid_method": (405, "METHOD_NOT_ALLOWED"),
    "not_found": (404, "NOT_FOUND"),
    "internal_server_error": (500, "INTERNAL_SERVER_ERROR"),
    "service_unavailable": (503, "SERVICE_UNAVAILABLE"),
}
_DEVICE_RESPONSES = {"not_accessible": "NOT_ACCESSIBLE", "failed": "FAILED", "throttled": "THROTTLED"}
#: APNs' error answers (reason in a JSON body) that a fault can force on a push.
APNS_FAULTS: dict[str, tuple[int, str]] = {
    "bad_certificate": (403, "BadCertificate"),
    "bad_certificate_environment": (403, "BadCertificateEnvironment"),
    "expired_provider_token": (403, "ExpiredProviderToken"),
    "forbidden": (403, "Forbidden"),
    "too_many_requests": (429, "TooManyRequests"),
    "internal_server_error": (500, "InternalServerError"),
    "service_unavailable": (503, "ServiceUnavailable"),
    "shutdown": (503, "Shutdown"),
}
#: APNs faults that replace the answer; drawn together like :data:`RESPONSE_FAULTS`.
APNS_RESPONSE_FAULTS = (*APNS_FAULTS, "dropped_connection", "goaway")
_SCRIPT_ONLY = ("success", "too_many_requests", "dropped_connection", "session_expired", "latency", "repeated_cursor")

Rate = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class ScriptStep(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    count: int = Field(ge=1, le=1_000_000)
    response: str = Field(min_length=1, max_length=100)


class FaultConfig(BaseModel):
    """What ``PUT /portal/faults`` accepts; unknown keys, endpoints, fault names or rates outside 0..1 fail."""

    model_config = ConfigDict(extra="forbid", strict=True)

    seed: int | None = Field(default=None, ge=0, le=2**63)
    rates: dict[str, dict[str, Rate]] = Field(default_factory=dict)
    sequences: dict[str, list[ScriptStep]] = Field(default_factory=dict)
    latency_seconds: float = Field(default=1.0, ge=0, le=30, allow_inf_nan=False)
    retry_after_seconds: int = Field(default=2, ge=0, le=86_400)
    throttle_retry_after_seconds: int = Field(default=60, ge=1, le=86_400)
    hide_cooling_devices: bool = False

    @model_validator(mode="before")
    @classmethod
    def _gather_sequences(cls, data: Any) -> Any:
        """depsim spells sequences as top-level ``<method>_<path>_responses`` keys; gather them."""
        if not isinstance(data, dict):
            return data
        gathered = {key: value for key, value in data.items() if key.endswith(_SEQUENCE_SUFFIX)}
        if not gathered:
            return data
        rest = {key: value for key, value in data.items() if key not in gathered}
        rest["sequences"] = {key.removesuffix(_SEQUENCE_SUFFIX): value for key, value in gathered.items()}
        return rest

    @model_validator(mode="after")
    def _check_names(self) -> Self:
        for endpoint, rates in self.rates.items():
            if endpoint not in (*ENDPOINTS, APNS_ENDPOINT, ALL_ENDPOINTS):
                known = ", ".join((*ENDPOINTS, APNS_ENDPOINT, ALL_ENDPOINTS))
                raise ValueError(f"unknown endpoint {endpoint!r} in rates; known: {known}")
            for name in rates:
                if not _rate_applies(endpoint, name):
                    raise ValueError(f"fault {name!r} cannot be set on {endpoint!r}")
            total = sum(rate for name, rate in rates.items() if name in _response_faults(endpoint))
            if total > 1:
                raise ValueError(f"the response fault rates of {endpoint!r} add up to {total:g}, more than 1")
            if sum(rate for name, rate in rates.items() if name in DEVICE_FAULTS) > 1:
                raise ValueError(f"failed + throttled on {endpoint!r} add up to more than 1")
        for endpoint, steps in self.sequences.items():
            if endpoint not in (*ENDPOINTS, APNS_ENDPOINT):
                raise ValueError(f"unknown endpoint {endpoint + _SEQUENCE_SUFFIX!r}")
            for step in steps:
                if not _scripted_response_applies(endpoint, step.response):
                    raise ValueError(f"response {step.response!r} cannot be scripted on {endpoint!r}")
        return self

    def to_wire(self) -> dict[str, Any]:
        """The configuration in the shape it was PUT (sequences back as top-level depsim keys)."""
        data = self.model_dump(exclude={"sequences"})
        for endpoint, steps in self.sequences.items():
            data[endpoint + _SEQUENCE_SUFFIX] = [step.model_dump() for step in steps]
        return data


def _response_faults(endpoint: str) -> tuple[str, ...]:
    return APNS_RESPONSE_FAULTS if endpoint == APNS_ENDPOINT else RESPONSE_FAULTS


def _rate_applies(endpoint: str, name: str) -> bool:
    if endpoint == APNS_ENDPOINT:
        return name in APNS_RESPONSE_FAULTS or name == "latency"
    if name in RESPONSE_FAULTS or name == "latency":
        return not (name == "session_expired" and endpoint == "get_session")
    if name == "repeated_cursor":
        return endpoint in ("post_devices_sync", ALL_ENDPOINTS)
    if name in DEVICE_FAULTS:
        return endpoint in ASSIGN_ENDPOINTS or endpoint == ALL_ENDPOINTS
    return False


def _scripted_response_applies(endpoint: str, name: str) -> bool:
    if endpoint == APNS_ENDPOINT:
        return name in APNS_RESPONSE_FAULTS or name in ("success", "latency")
    if name in _FIXED_ERRORS or name in ("success", "too_many_requests", "dropped_connection", "latency"):
        return True
    if name == "session_expired":
        return endpoint != "get_session"
    if name == "repeated_cursor":
        return endpoint == "post_devices_sync"
    if name in _DEVICE_RESPONSES:
        return endpoint in DEVICE_LIST_ENDPOINTS
    code = name.removeprefix("bad_request_")
    return name.startswith("bad_request_") and code.replace("_", "").isalpha()


@dataclass
class FaultDecision:
    """What the faults decided for one request; the handler obeys it before touching state."""

    error: AppleError | None = None
    drop_connection: bool = False
    #: APNs only: end the connection with an HTTP/2 GOAWAY instead of answering the push.
    goaway: bool = False
    expire_session: bool = False
    delay_seconds: float = 0.0
    repeat_cursor: bool = False
    device_status: str | None = None
    failed_rate: float = 0.0
    throttled_rate: float = 0.0
    throttle_seconds: int = 60
    hide_cooling_devices: bool = False
    rng: random.Random = field(default_factory=random.Random)


def load_config(stored: dict[str, Any]) -> FaultConfig:
    return FaultConfig.model_validate(stored.get("config") or {})


def decide(stored: dict[str, Any], endpoint: str) -> tuple[FaultDecision, dict[str, Any]]:
    """The decision for the next request to ``endpoint``, and the stored fault state with its progress advanced."""
    if not stored.get("config"):
        return FaultDecision(), stored
    config = load_config(stored)
    progress: dict[str, dict[str, int]] = {
        "requests": dict(stored.get("progress", {}).get("requests", {})),
        "scripted": dict(stored.get("progress", {}).get("scripted", {})),
    }
    number = progress["requests"].get(endpoint, 0)
    progress["requests"][endpoint] = number + 1
    rng = random.Random(f"{config.seed}:{endpoint}:{number}") if config.seed is not None else random.Random()
    shared = config.rates.get(ALL_ENDPOINTS, {}) if endpoint != APNS_ENDPOINT else {}
    rates = {**shared, **config.rates.get(endpoint, {})}
    decision = FaultDecision(
        failed_rate=rates.get("failed", 0.0) if endpoint in ASSIGN_ENDPOINTS else 0.0,
        throttled_rate=rates.get("throttled", 0.0) if endpoint in ASSIGN_ENDPOINTS else 0.0,
        throttle_seconds=config.throttle_retry_after_seconds,
        hide_cooling_devices=config.hide_cooling_devices,
        rng=rng,
    )
    scripted = _next_scripted(config, progress["scripted"], endpoint)
    apply = _apply_apns if endpoint == APNS_ENDPOINT else _apply
    if scripted is not None:
        apply(decision, scripted, config)
    else:
        draw = rng.random()
        for name in _response_faults(endpoint):
            draw -= rates.get(name, 0.0)
            if draw < 0:
                apply(decision, name, config)
                break
        if rng.random() < rates.get("latency", 0.0):
            decision.delay_seconds = config.latency_seconds
        if endpoint == "post_devices_sync" and rng.random() < rates.get("repeated_cursor", 0.0):
            decision.repeat_cursor = True
    return decision, {"config": stored["config"], "progress": progress}


def _next_scripted(config: FaultConfig, used: dict[str, int], endpoint: str) -> str | None:
    position = used.get(endpoint, 0)
    for step in config.sequences.get(endpoint, []):
        if position < step.count:
            used[endpoint] = used.get(endpoint, 0) + 1
            return step.response
        position -= step.count
    return None


def _apply(decision: FaultDecision, name: str, config: FaultConfig) -> None:
    if name in _FIXED_ERRORS:
        status, code = _FIXED_ERRORS[name]
        decision.error = AppleError(status, code)
    elif name == "too_many_requests":
        headers = {"Retry-After": str(config.retry_after_seconds)}
        decision.error = AppleError(429, "TOO_MANY_REQUESTS", headers=headers)
    elif name == "dropped_connection":
        decision.drop_connection = True
    elif name == "session_expired":
        decision.expire_session = True
    elif name == "latency":
        decision.delay_seconds = config.latency_seconds
    elif name == "repeated_cursor":
        decision.repeat_cursor = True
    elif name in _DEVICE_RESPONSES:
        decision.device_status = _DEVICE_RESPONSES[name]
    elif name.startswith("bad_request_"):
        decision.error = AppleError(400, name.removeprefix("bad_request_").upper())


def _apply_apns(decision: FaultDecision, name: str, config: FaultConfig) -> None:
    if name in APNS_FAULTS:
        status, reason = APNS_FAULTS[name]
        decision.error = AppleError(status, reason)
    elif name == "dropped_connection":
        decision.drop_connection = True
    elif name == "goaway":
        decision.goaway = True
    elif name == "latency":
        decision.delay_seconds = config.latency_seconds
