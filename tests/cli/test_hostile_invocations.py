"""Every `pippin` command, found by walking the command tree, run with hostile arguments and environments.

Whatever comes in (bytes that are not UTF-8, NUL and control characters, numbers past what a database holds,
missing files, folders where files belong, a database that cannot be reached), a command ends with one of the
README's exit codes and never with a traceback; a command that refuses (exit 2, 3 or 4) changes nothing, in
the database or on disk; and no database password reaches the output. New commands are covered without
touching this file. Each test records how many invocations it tried (``cli_invocations``); the run's summary
adds them up.

In-process (Typer's CliRunner) for speed; the last three tests run the real `pippin` executable, since only a
real process receives undecodable bytes from the operating system (its arguments and its standard input).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
import typer.testing
import uvicorn
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from sqlalchemy import Engine, select
from typer.main import get_command
from typer.testing import CliRunner, Result

from pippin.cli.main import app
from pippin.config import Settings
from pippin.crypto.keys import generate_private_key
from pippin.store.db import create_db_engine
from pippin.store.models import Base
from tests.cli.conftest import INJECTIONS
from tests.push.apple_ca import issue_vendor_certificate, pem
from tests.servers import free_port

#: The README's exit codes (0 done, 1 failed, 2 input wrong, 3 not found, 4 conflict, 5 unreachable).
DOCUMENTED_EXIT_CODES = frozenset(range(6))
#: The exits that promise "nothing was changed".
REFUSALS = frozenset({2, 3, 4})
PASSWORD = "hunter2-never-shown"
PIPPIN = Path(sys.executable).with_name("pippin")
VENDOR_KEY = generate_private_key()

HOSTILE_TEXT = (
    "\udcff",  # a byte that is not UTF-8, as Python hands it over (PEP 383)
    "acme\udce9",
    "a\x00b",
    "\x1b[2J\x1b]0;pwned\x07",
    "\u202eevil",
    "line\nbreak",
    "x" * 5000,
    "",
    " ",
    "-",
)
HOSTILE_INTEGERS = (
    str(2**63),
    str(-(2**63) - 1),
    str(2**31),
    str(10**30),
    "9" * 5000,
    "-1",
    "0",
    "1e3",
    "nan",
    "\udcff",
)
HOSTILE_CHOICES = ("bogus", "\udcff", "a\x00b", "")


def hostile_paths(tmp: Path) -> tuple[str, ...]:
    return (
        str(tmp / "missing" / "file"),
        str(tmp),  # a folder where a file belongs
        "/proc/self/no-such-folder/file",  # a folder nobody, root included, may create
        "/dev/null",
        str(tmp / "a\x00b"),
        str(tmp / "\udcff"),
        "x" * 5000,
        "",
    )


@dataclass(frozen=True)
class Param:
    """One argument or option of a command, as the tree describes it."""

    name: str
    opts: tuple[str, ...]
    kind: type
    is_argument: bool
    is_flag: bool
    required: bool
    many: bool


@dataclass(frozen=True)
class Command:
    path: tuple[str, ...]
    params: tuple[Param, ...]

    @property
    def id(self) -> str:
        return " ".join(self.path)


def _walk(command: Any, path: tuple[str, ...]) -> Iterator[Command]:
    subcommands = getattr(command, "commands", None)
    if subcommands is not None:
        for name, sub in sorted(subcommands.items()):
            yield from _walk(sub, (*path, name))
        return
    params = []
    for param in command.params:
        annotation = param.type_descriptor.annotation
        kind = getattr(annotation, "__args__", (annotation,))[0] if hasattr(annotation, "__origin__") else annotation
        params.append(
            Param(
                name=param.name,
                opts=tuple(param.opts),
                kind=kind,
                is_argument=getattr(param, "param_type_name", "") == "argument",
                is_flag=bool(getattr(param, "is_flag", False)),
                required=bool(param.required),
                many=bool(param.multiple) or param.nargs == -1,
            )
        )
    yield Command(path, tuple(params))


def groups(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if getattr(command, "commands", None) is not None:
        yield path
        for name, sub in command.commands.items():
            yield from groups(sub, (*path, name))


ROOT = get_command(app)
COMMANDS = tuple(_walk(ROOT, ()))
GROUPS = tuple(groups(ROOT))


def test_the_walk_finds_every_command() -> None:
    """A guard on the walk itself: if Typer's tree changes shape, the tests below must not silently run nothing."""
    found = {command.id for command in COMMANDS}
    assert {"dep keypair", "audit list", "devices list", "profiles create", "serve", "sim apple"} <= found
    assert {"push csr", "push vendor import", "push upload-cert", "push status"} <= found
    assert {"users add", "users list", "users disable", "users import"} <= found
    assert len(COMMANDS) >= 25


@dataclass
class Runner:
    """Runs `pippin` in-process and collects every broken promise instead of stopping at the first."""

    env: dict[str, str]
    tmp: Path
    engine: Engine | None = None
    count: int = 0
    problems: list[str] = field(default_factory=list)
    _serial: Iterator[int] = field(default_factory=itertools.count)
    _last: tuple[str, tuple[str, ...]] | None = None

    def unique(self, prefix: str) -> str:
        return f"{prefix}{next(self._serial)}"

    def invoke(
        self,
        args: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        input: bytes | str | None = None,
        never_fails: bool = False,
    ) -> Result:
        # The state after the last invocation is still the state now, unless that one may have changed it.
        before = self._last if self._last is not None or self.engine is None else self._state()
        self._last = None
        result = CliRunner().invoke(
            app, list(args), env=env or self.env, input=input if input is not None else "", obj=INJECTIONS
        )
        self.count += 1
        shown = f"pippin {' '.join(repr(arg)[:60] for arg in args)}"
        output = result.output
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            self.problems.append(f"{shown}: raised {type(result.exception).__name__}: {result.exception!r}"[:400])
        if "Traceback (most recent call last)" in output:
            self.problems.append(f"{shown}: printed a traceback")
        if result.exit_code not in DOCUMENTED_EXIT_CODES:
            self.problems.append(f"{shown}: exit code {result.exit_code}, not one the README documents")
        if never_fails and result.exit_code == 1:
            self.problems.append(f"{shown}: exit code 1 (an unforeseen failure): {output[-300:]!r}")
        if PASSWORD in output:
            self.problems.append(f"{shown}: printed the database password")
        if "\x1b" in output or "\x00" in output:
            self.problems.append(f"{shown}: printed a raw control character")
        if before is not None and result.exit_code in REFUSALS:
            self._last = self._state()
            if self._last != before:
                self.problems.append(
                    f"{shown}: refused with exit {result.exit_code}, yet changed the database or files"
                )
        return result

    def _state(self) -> tuple[str, tuple[str, ...]]:
        """A fingerprint of every row of every table, and the files under the test's folder."""
        assert self.engine is not None
        digest = hashlib.sha256()
        with self.engine.connect() as connection:
            for table in Base.metadata.sorted_tables:
                for row in connection.execute(select(table).order_by(*table.primary_key.columns)):
                    digest.update(repr(tuple(row)).encode("utf-8", "backslashreplace"))
        files = tuple(sorted(str(path.relative_to(self.tmp)) for path in self.tmp.rglob("*")))
        return digest.hexdigest(), files


@pytest.fixture(autouse=True)
def _one_command_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    """CliRunner builds Typer's command tree anew for every invocation, most of its cost; the tree walked above
    is the same one, so it is reused."""
    monkeypatch.setattr(typer.testing, "_get_command", lambda _app: ROOT)


@pytest.fixture
def never_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    """`pippin serve` and `pippin sim apple` would serve until stopped; here they return where serving starts.

    uvicorn has no injection point in those commands (they are what runs it), so its two entry points are
    replaced: everything before them (flags, settings, the database, binding the port) still runs.
    """
    monkeypatch.setattr(uvicorn.Server, "run", lambda *_args, **_kwargs: None)
    monkeypatch.setattr(uvicorn, "run", lambda *_args, **_kwargs: None)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """Files the baselines point at: a token-sized file of noise, and an MDM vendor certificate with its key."""
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    noise = inputs / "acme_smime.p7m"
    noise.write_bytes(os.urandom(600))
    vendor_certificate, vendor_key = inputs / "mdm.pem", inputs / "mdm.key"
    vendor_certificate.write_bytes(pem(issue_vendor_certificate(VENDOR_KEY)))
    vendor_key.write_bytes(VENDOR_KEY.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return {"p7m": noise, "vendor_certificate": vendor_certificate, "vendor_key": vendor_key}


def environment(settings: Settings) -> dict[str, str]:
    assert settings.secret_key is not None
    return {
        "PIPPIN_DATA_DIR": str(settings.data_dir),
        "PIPPIN_DATABASE_URL": str(settings.database_url),
        "PIPPIN_SECRET_KEY": settings.secret_key.get_secret_value(),
        # Nothing answers on port 9: every call to Apple fails at once, with one try.
        "PIPPIN_DEP_BASE_URL": "http://127.0.0.1:9",
        "PIPPIN_DEP_MAX_RETRIES": "0",
        "PIPPIN_DEP_TIMEOUT": "2",
        "COLUMNS": "200",
    }


@dataclass
class Invocation:
    """The values of one invocation by parameter name, rendered as options first, then ``--`` and the arguments
    (so that an argument value starting with ``-`` stays an argument)."""

    command: Command
    values: dict[str, list[str]]
    flags: list[str] = field(default_factory=list)
    stdin: str | bytes | None = None

    def args(self) -> list[str]:
        options: list[str] = []
        arguments: list[str] = []
        for param in self.command.params:
            for value in self.values.get(param.name, []):
                if param.is_argument:
                    arguments.append(value)
                else:
                    option = next((opt for opt in param.opts if opt.startswith("--")), param.opts[0])
                    options.append(f"{option}={value}" if option.startswith("--") else f"{option}{value}")
        return [*self.command.path, *options, *self.flags, "--", *arguments]

    def replaced(self, param: Param, value: str) -> Invocation:
        return Invocation(self.command, {**self.values, param.name: [value]}, self.flags, self.stdin)


def baseline(command: Command, runner: Runner, files: dict[str, Path]) -> Invocation:
    """The arguments a careful admin would give (so hostile values reach past the first check), and stdin."""
    area = command.path[0]
    known: dict[str, list[str]] = {
        "email": [runner.unique("admin") + "@example.com"],
        "apple_id": ["admin@example.com"],
        "username": [runner.unique("user")],
        "name": [{"profiles": "Staff", "admin": runner.unique("ci-")}.get(area, "acme")],
        "token": ["acme"],
        "profile": ["Staff"],
        "serial": ["C02TEST0001"],
        "serials": ["C02TEST0001"],
        "file": [str(files["p7m"])],
        "certificate": [str(files["vendor_certificate"])],
        "key": [str(files["vendor_key"])],
        "output": [str(runner.tmp / "out" / (runner.unique("cert") + ".pem"))],
        "data": [str(runner.tmp / "sim")],
        "port": [str(free_port())],
        "apns_port": [str(free_port())],
    }
    if command.id == "profiles create":
        known["name"] = [runner.unique("Profile")]
    values = {
        param.name: known.get(param.name, ["acme"])
        for param in command.params
        if param.required or (param.name in known and param.name in ("output", "data", "port", "apns_port", "serials"))
    }
    invocation = Invocation(command, values)
    if command.id in ("admin user create", "users add"):
        invocation.flags.append("--password-stdin")
        invocation.stdin = "a perfectly long password\n"
    return invocation


def hostile_values(param: Param, tmp: Path) -> tuple[str, ...]:
    if param.kind is bool:
        return ()
    if param.kind is int:
        return HOSTILE_INTEGERS
    if param.kind is Path:
        return hostile_paths(tmp)
    if isinstance(param.kind, type) and issubclass(param.kind, Enum):
        return HOSTILE_CHOICES
    return HOSTILE_TEXT


def seed(runner: Runner) -> None:
    """A token waiting for Apple's file and a profile, so names in the baselines exist."""
    for args in (["dep", "keypair", "acme"], ["profiles", "create", "Staff"]):
        result = runner.invoke(args)
        assert result.exit_code == 0, result.output


@pytest.fixture
def report_property(request: pytest.FixtureRequest) -> Callable[[str, object], None]:
    """Puts a property on the test's report, where the run's summary reads it (tests/conftest.py): pytest's
    ``record_property`` does the same, but warns under ``--junitxml``'s default family, and warnings fail here."""

    def put(name: str, value: object) -> None:
        request.node.user_properties.append((name, value))

    return put


def record(runner: Runner, report_property: Callable[[str, object], None], what: str) -> None:
    report_property("cli_invocations", runner.count)
    print(f"{what}: {runner.count} pippin invocations")
    assert not runner.problems, f"{len(runner.problems)} broken promises:\n" + "\n".join(runner.problems[:40])


@pytest.mark.usefixtures("never_serve")
@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command.id)
def test_every_command_survives_hostile_arguments(
    command: Command,
    settings: Settings,
    tmp_path: Path,
    files: dict[str, Path],
    report_property: Callable[[str, object], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # a relative hostile path lands here, never in the checkout
    (tmp_path / "out").mkdir()
    engine = create_db_engine(str(settings.database_url))
    runner = Runner(env=environment(settings), tmp=tmp_path, engine=engine)
    try:
        seed(runner)
        runner.invoke([*command.path, "--help"])
        plain = baseline(command, runner, files)
        runner.invoke(plain.args(), input=plain.stdin)
        for param in command.params:
            for value in hostile_values(param, tmp_path):
                hostile = baseline(command, runner, files).replaced(param, value)
                runner.invoke(hostile.args(), input=hostile.stdin)
        if command.id in ("admin user create", "users add"):
            for stdin in (b"\xff\xfe not text\n", "a\x00b perfectly long\n", "x" * 100_000, ""):
                runner.invoke(baseline(command, runner, files).args(), input=stdin)
    finally:
        engine.dispose()
    record(runner, report_property, command.id)


def hostile_environments(tmp: Path) -> dict[str, tuple[dict[str, str], bool]]:
    """Each environment by name: the variables it changes, and whether it leaves the database unusable
    (``tmp / "not-a-folder"`` is to be a file)."""
    closed = free_port()
    not_a_folder = tmp / "not-a-folder"
    return {
        "postgres-refuses": (
            {"PIPPIN_DATABASE_URL": f"postgresql://pippin:{PASSWORD}@127.0.0.1:{closed}/pippin"},
            True,
        ),
        "postgres-no-host": ({"PIPPIN_DATABASE_URL": f"postgresql://pippin:{PASSWORD}@no-such-host.invalid/p"}, True),
        "sqlite-not-a-database": ({"PIPPIN_DATABASE_URL": "sqlite:////etc/passwd"}, True),
        "sqlite-folder-impossible": ({"PIPPIN_DATABASE_URL": "sqlite:////proc/self/no-such-folder/pippin.db"}, True),
        "sqlite-file-impossible": ({"PIPPIN_DATABASE_URL": "sqlite:////proc/self/pippin.db"}, True),
        "sqlite-in-a-file": ({"PIPPIN_DATABASE_URL": f"sqlite:///{not_a_folder}/pippin.db"}, True),
        "data-dir-a-file": ({"PIPPIN_DATA_DIR": str(not_a_folder), "PIPPIN_SECRET_KEY": ""}, False),
        "data-dir-impossible": ({"PIPPIN_DATA_DIR": "/proc/self/no-such-folder", "PIPPIN_SECRET_KEY": ""}, False),
        "data-dir-undecodable": ({"PIPPIN_DATA_DIR": str(tmp / "\udcff")}, False),
        "database-url-undecodable": ({"PIPPIN_DATABASE_URL": f"sqlite:///{tmp}/\udcff/x\udcfe.db"}, False),
        "database-url-garbage": ({"PIPPIN_DATABASE_URL": "\x1b[31m:nonsense"}, False),
        "secret-key-garbage": ({"PIPPIN_SECRET_KEY": "not a key \udcff"}, False),
        "numbers-huge": ({"PIPPIN_DEP_TIMEOUT": "1e309", "PIPPIN_DEP_MAX_RETRIES": str(2**63)}, False),
        "numbers-negative": ({"PIPPIN_DEP_TIMEOUT": "-1", "PIPPIN_DEP_SYNC_INTERVAL": "-PT1M"}, False),
        "log-level-control": ({"PIPPIN_LOG_LEVEL": "DEBUG\x1b[2J"}, False),
    }


_ENVIRONMENTS = hostile_environments(Path("/nonexistent"))  # read for their names and the variables they change
#: Environments that replace the database URL: the test's own database is never used, so they run once (on the
#: SQLite leg), as a second run on the PostgreSQL leg would repeat every invocation exactly.
URL_REPLACING_ENVIRONMENTS = tuple(
    name for name, (changes, _) in _ENVIRONMENTS.items() if "PIPPIN_DATABASE_URL" in changes
)
#: The others use the test's database, on SQLite and on PostgreSQL.
DATABASE_ENVIRONMENTS = tuple(name for name in _ENVIRONMENTS if name not in URL_REPLACING_ENVIRONMENTS)


def run_every_command_in_environment(
    name: str,
    settings: Settings,
    tmp_path: Path,
    files: dict[str, Path],
    report_property: Callable[[str, object], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every command, with a baseline's arguments, under the environment ``name``; an unusable database is exit 5
    (or 0 for a command that needs none), never the unforeseen-failure exit 1."""
    monkeypatch.chdir(tmp_path)  # (settings take relative paths from where the test run started: none are used)
    (tmp_path / "out").mkdir()
    runner = Runner(env=environment(settings), tmp=tmp_path)
    seed(runner)
    (tmp_path / "not-a-folder").write_text("a file")
    changes, database_unusable = hostile_environments(tmp_path)[name]
    env = {**runner.env, **changes}
    for command in COMMANDS:
        invocation = baseline(command, runner, files)
        result = runner.invoke(invocation.args(), env=env, input=invocation.stdin, never_fails=database_unusable)
        if database_unusable and result.exit_code not in (0, 2, 5):
            runner.problems.append(f"{name}: pippin {command.id} exited {result.exit_code}, not 5")
    record(runner, report_property, f"hostile environment {name}")


@pytest.mark.usefixtures("never_serve")
@pytest.mark.parametrize("name", DATABASE_ENVIRONMENTS)
def test_every_command_survives_hostile_environments(
    name: str,
    settings: Settings,
    tmp_path: Path,
    files: dict[str, Path],
    report_property: Callable[[str, object], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_every_command_in_environment(name, settings, tmp_path, files, report_property, monkeypatch)


@pytest.mark.usefixtures("never_serve")
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("name", URL_REPLACING_ENVIRONMENTS)
def test_every_command_survives_a_hostile_database_url(
    name: str,
    settings: Settings,
    tmp_path: Path,
    files: dict[str, Path],
    report_property: Callable[[str, object], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_every_command_in_environment(name, settings, tmp_path, files, report_property, monkeypatch)


def test_an_argument_that_is_not_utf8_is_refused_by_a_real_process(tmp_path: Path) -> None:
    env = {**os.environ, "PIPPIN_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [PIPPIN, "dep", "keypair", b"acme\xff"], env=env, capture_output=True, timeout=60, check=False
    )
    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 2, stderr
    assert "argument 3 (acme\\xff) is not valid UTF-8" in " ".join(stderr.split())
    assert "Traceback" not in stderr
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").rglob("*.db"))


def test_an_unreachable_database_is_one_line_and_exit_5_from_a_real_process(tmp_path: Path) -> None:
    url = f"postgresql://pippin:{PASSWORD}@127.0.0.1:{free_port()}/pippin"
    env = {**os.environ, "PIPPIN_DATA_DIR": str(tmp_path / "data"), "PIPPIN_DATABASE_URL": url}
    done = subprocess.run([PIPPIN, "devices", "list"], env=env, capture_output=True, timeout=60, check=False)
    stderr = done.stderr.decode()
    assert done.returncode == 5, stderr
    first_line = stderr.splitlines()[0]
    assert first_line.startswith("error: The database postgresql") and "://pippin:***@127.0.0.1:" in first_line
    assert "Connection refused" in first_line
    assert PASSWORD not in stderr and "Traceback" not in stderr
    assert len(stderr.splitlines()) == 2  # the line, and what to do


def test_a_password_on_stdin_that_is_not_utf8_is_refused_by_a_real_process(tmp_path: Path) -> None:
    env = {**os.environ, "PIPPIN_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [PIPPIN, "admin", "user", "create", "ann@example.com", "--password-stdin"],
        input=b"\xff\xfe long enough otherwise\n",
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 2, stderr
    assert "not UTF-8 text" in stderr and "Traceback" not in stderr
    listed = subprocess.run(
        [PIPPIN, "admin", "user", "list", "--json"], env=env, capture_output=True, timeout=60, check=False
    )
    assert listed.returncode == 0 and listed.stdout.strip() == b"[]"
