"""Every form the console serves, declared once: its address, how its path is filled from the rows the hostile
suite sets up, and each field with its kind and the words a refusal of it must use.

``tests/console/test_every_form.py`` walks the console's routes and fails when a POST route is missing here, and
generates hostile values for every field from its kind; the limits come from the product's constants.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from pippin.admin.users import MAX_PASSWORD_CHARS
from pippin.console.profiles import MAX_SERIALS
from pippin.dep.profiles import MAX_DESCRIPTION, MAX_NAME, MAX_OS_VERSION_PART
from pippin.dep.setup_panes import PANES
from pippin.dep.token import MAX_TOKEN_FILE_BYTES
from pippin.text import MAX_DEP_TOKEN_NAME, MAX_EMAIL

# The rows the suite's setup makes (see ``test_every_form.rows``); a form's path is filled from them.
ADMIN = "ann@example.com"
READ_ONLY = "rita@example.com"
#: The admin the admin forms act on.
OTHER_ADMIN = "bob@example.com"
#: An admin whose address is the longest one can be (a local part of 64, a domain of 253: 318 characters, within
#: MAX_EMAIL) and whose password is as long as the sign-in form takes.
LONGEST_ADMIN = "l" * 64 + "@" + ".".join(["d" * 63] * 3) + "." + "e" * (253 - 3 * 64)
LONGEST_PASSWORD = "p" * MAX_PASSWORD_CHARS
PASSWORD = "correct horse battery staple"
#: A token awaiting Apple's file (upload, renew, default profile, delete act on it).
PENDING_TOKEN = "acme"
#: A token connected to the simulated Apple, with devices (sync and assignment act on it).
LIVE_TOKEN = "live"
PROFILE = "Staff"


class Kind(StrEnum):
    """What a field holds, which decides the hostile values it gets."""

    identifier = "identifier"  # a DEP token name: ASCII letters, digits, . _ -
    display_name = "display name"  # a profile name: any script, no / \ ? #
    email = "e-mail"
    password = "password"
    text = "free text"
    code = "code"  # a language or region code
    version = "version"  # an OS version: 1 to 3 numbers separated by dots
    certificates = "certificates"  # PEM, several lines
    serials = "serial numbers"  # several lines
    choice = "choice"  # one of a few values the page offers
    checkbox = "checkbox"  # sends "true" when ticked, nothing otherwise
    switches = "switches"  # several checkboxes of one name
    file = "file"


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    content: bytes
    content_type: str = "application/pkcs7-mime"


@dataclass(frozen=True)
class Rows:
    """What the suite's setup made that a form needs: the server token file Apple made for the pending token's key,
    and one for another token's key."""

    p7m: bytes
    foreign_p7m: bytes
    serial: str


Value = str | bytes | UploadedFile


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    #: A refusal of this field says one of these (case does not matter).
    words: tuple[str, ...]
    in_path: bool = False
    #: The most characters (or, for serials, entries) the product takes, from its constants.
    limit: int | None = None
    #: Absent is refused; otherwise absent means empty or unticked, as the page documents.
    required: bool = True
    #: For choices: the values the page offers.
    choices: tuple[str, ...] = ()
    #: Other fields' values under which the form reads this one (a token is read when "which" is token).
    context: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The field's key in a submission: a path parameter as the route writes it (``{name}``), or its name."""
        return "{" + self.name + "}" if self.in_path else self.name


@dataclass(frozen=True)
class ConsoleForm:
    #: The route as the console declares it, under /console.
    route: str
    fields: tuple[Field, ...]
    #: A submission that is accepted (path parameters and fields), filled from the setup's rows.
    valid: Callable[[Rows], Mapping[str, Value]]
    #: Submissions at each limit, accepted; each is tried once, at the end, so they may change rows.
    at_limits: Callable[[Rows], list[tuple[str, Mapping[str, Value]]]] = lambda rows: []
    signed_in: bool = True
    #: Read-only admins may send it (only sign-out).
    read_only_may: bool = False
    multipart: bool = False
    #: The console page that holds the form, at the rows of ``valid``.
    page: str = ""

    def path(self, values: Mapping[str, Value]) -> str:
        """The address, with each path parameter's value (already quoted) from ``values``."""
        path = "/console" + self.route
        for item in self.fields:
            if item.in_path:
                value = values[item.key]
                assert isinstance(value, str)
                path = path.replace(item.key, value)
        return path


_TOKEN_WORDS = ("DEP token name", "DEP token")
_TOKEN_PATH = Field("name", Kind.identifier, _TOKEN_WORDS, in_path=True, limit=MAX_DEP_TOKEN_NAME)
_PROFILE_PATH = Field("name", Kind.display_name, ("profile",), in_path=True, limit=MAX_NAME)
_ADMIN_PATH = Field("email", Kind.email, ("e-mail address", "admin"), in_path=True, limit=MAX_EMAIL)
_PANE_KEYS = tuple(pane.key for pane in PANES)
_FLAGS = ("supervised", "locked", "mandatory", "allow_pairing", "await_device_configured", "auto_advance_setup")


def _profile_fields() -> tuple[Field, ...]:
    texts = (
        Field("description", Kind.text, ("description",), required=False, limit=MAX_DESCRIPTION),
        Field("department", Kind.text, ("department",), required=False, limit=125),
        Field("support_phone", Kind.text, ("support_phone", "phone"), required=False, limit=50),
        Field("support_email", Kind.text, ("support_email", "email"), required=False, limit=250),
        Field("org_magic", Kind.text, ("org_magic",), required=False, limit=256),
        Field("language", Kind.code, ("language",), required=False),
        Field("region", Kind.code, ("region",), required=False),
        Field("minimum_os_version", Kind.version, ("minimum_os_version", "minimum OS version"), required=False),
    )
    flags = tuple(Field(flag, Kind.checkbox, (flag,), required=False) for flag in _FLAGS)
    return (
        Field("name", Kind.display_name, ("profile name", "name"), limit=MAX_NAME),
        *texts,
        Field("user_affinity", Kind.choice, ("user_affinity",), required=False, choices=("none", "with_user")),
        *flags,
        Field("show_pane", Kind.switches, ("show_pane", "pane"), required=False, choices=_PANE_KEYS),
        Field("anchor_certs", Kind.certificates, ("anchor", "certificate"), required=False),
    )


def profile_values(name: str) -> dict[str, Value]:
    return {
        "name": name,
        "description": "phones",
        "department": "Sales",
        "support_phone": "+1 555 0100",
        "support_email": "it@example.com",
        "org_magic": "",
        "language": "en",
        "region": "US",
        "minimum_os_version": "17.4",
        "user_affinity": "none",
        "supervised": "true",
        "allow_pairing": "true",
    }


def _profile_limits(name: str) -> list[tuple[str, dict[str, Value]]]:
    longest = {
        "description": "d" * MAX_DESCRIPTION,
        "department": "D" * 125,
        "support_phone": "5" * 50,
        "support_email": "s" * (250 - len("@example.com")) + "@example.com",
        "org_magic": "m" * 256,
        "minimum_os_version": f"{MAX_OS_VERSION_PART}.{MAX_OS_VERSION_PART}.{MAX_OS_VERSION_PART}",
    }
    return [("every text at its limit", {**profile_values(name), **longest, "locked": "true"})]


_SERIAL_FIELD = Field("serials", Kind.serials, ("serial",), required=False, limit=MAX_SERIALS)

FORMS: tuple[ConsoleForm, ...] = (
    ConsoleForm(
        "/sign-in",
        (
            Field("email", Kind.email, ("e-mail address",), limit=MAX_EMAIL),
            Field("password", Kind.password, ("password",), limit=MAX_PASSWORD_CHARS),
        ),
        lambda rows: {"email": ADMIN, "password": PASSWORD},
        lambda rows: [("address and password at their limits", {"email": LONGEST_ADMIN, "password": LONGEST_PASSWORD})],
        signed_in=False,
        page="/console/sign-in",
    ),
    ConsoleForm(
        "/sign-out", (), lambda rows: {}, lambda rows: [("sign out", {})], read_only_may=True, page="/console/"
    ),
    ConsoleForm(
        "/tokens/new",
        (Field("name", Kind.identifier, _TOKEN_WORDS, limit=MAX_DEP_TOKEN_NAME),),
        lambda rows: {"name": "fresh"},
        lambda rows: [("name at its limit", {"name": "n" * MAX_DEP_TOKEN_NAME})],
        page="/console/tokens/new",
    ),
    ConsoleForm(
        "/tokens/{name}/keypair",
        (_TOKEN_PATH,),
        lambda rows: {"{name}": PENDING_TOKEN},
        lambda rows: [("token at the name limit", {"{name}": "n" * MAX_DEP_TOKEN_NAME})],
        page="/console/tokens/acme",
    ),
    ConsoleForm(
        "/tokens/{name}/upload",
        (
            _TOKEN_PATH,
            Field("token", Kind.file, ("server token", "file", "token"), limit=MAX_TOKEN_FILE_BYTES),
            Field("apple_id", Kind.email, ("Apple ID", "apple_id"), limit=MAX_EMAIL),
            Field("force", Kind.checkbox, ("force",), required=False),
        ),
        lambda rows: {
            "{name}": PENDING_TOKEN,
            "token": UploadedFile(f"{PENDING_TOKEN}_smime.p7m", rows.p7m),
            "apple_id": ADMIN,
        },
        lambda rows: [
            (
                "Apple ID at its limit",
                {
                    "{name}": PENDING_TOKEN,
                    "token": UploadedFile(f"{PENDING_TOKEN}_smime.p7m", rows.p7m),
                    "apple_id": LONGEST_ADMIN,
                },
            )
        ],
        multipart=True,
        page="/console/tokens/acme/connect",
    ),
    ConsoleForm(
        "/tokens/{name}/default-profile",
        (_TOKEN_PATH, Field("profile", Kind.choice, ("profile",), required=False, choices=(PROFILE,))),
        lambda rows: {"{name}": PENDING_TOKEN, "profile": PROFILE},
        lambda rows: [("a profile", {"{name}": PENDING_TOKEN, "profile": PROFILE})],
        page="/console/tokens/acme",
    ),
    ConsoleForm(
        "/tokens/{name}/sync",
        (_TOKEN_PATH, Field("full", Kind.checkbox, ("full",), required=False)),
        lambda rows: {"{name}": LIVE_TOKEN},
        lambda rows: [("a full sync", {"{name}": LIVE_TOKEN, "full": "true"})],
        page="/console/tokens/live",
    ),
    ConsoleForm(
        "/tokens/{name}/delete",
        (_TOKEN_PATH,),
        lambda rows: {"{name}": PENDING_TOKEN},
        lambda rows: [("token at the name limit", {"{name}": "n" * MAX_DEP_TOKEN_NAME})],
        page="/console/tokens/acme/delete",
    ),
    ConsoleForm(
        "/profiles/new",
        _profile_fields(),
        lambda rows: profile_values("Fresh"),
        lambda rows: [
            ("name at its limit", {**profile_values("N" * MAX_NAME)}),
            *_profile_limits("Longest"),
        ],
        page="/console/profiles/new",
    ),
    ConsoleForm(
        "/profiles/{name}/edit",
        (_PROFILE_PATH, *_profile_fields()),
        lambda rows: {**profile_values(PROFILE), "{name}": PROFILE, "description": "changed"},
        lambda rows: [(label, {**values, "{name}": PROFILE}) for label, values in _profile_limits(PROFILE)],
        page="/console/profiles/Staff/edit",
    ),
    ConsoleForm(
        "/profiles/{name}/assign",
        (
            _PROFILE_PATH,
            Field(
                "which", Kind.choice, ("which devices", "serial", "token"), choices=("serials", "unassigned", "token")
            ),
            _SERIAL_FIELD,
            Field(
                "token",
                Kind.choice,
                ("token",),
                required=False,
                choices=(LIVE_TOKEN,),
                context={"which": "token", "serials": ""},
            ),
        ),
        lambda rows: {"{name}": PROFILE, "which": "serials", "serials": rows.serial},
        lambda rows: [
            ("serials", {"{name}": PROFILE, "which": "serials", "serials": rows.serial}),
            ("a token's devices", {"{name}": PROFILE, "which": "token", "token": LIVE_TOKEN}),
        ],
        page="/console/profiles/Staff",
    ),
    *(
        ConsoleForm(
            f"/admins/{{email}}/{action}",
            (_ADMIN_PATH,),
            lambda rows: {"{email}": OTHER_ADMIN},
            lambda rows: [("the longest address", {"{email}": LONGEST_ADMIN})],
            # Enable shows only for a disabled admin, and has no fields but the CSRF token.
            page="/console/admins" if action != "enable" else "",
        )
        for action in ("disable", "enable", "unlock", "password")
    ),
    ConsoleForm(
        "/admins/{email}/role",
        (_ADMIN_PATH, Field("role", Kind.choice, ("role",), choices=("admin", "read-only"))),
        lambda rows: {"{email}": OTHER_ADMIN, "role": "read-only"},
        lambda rows: [("the longest address", {"{email}": LONGEST_ADMIN, "role": "admin"})],
        page="/console/admins",
    ),
)
