"""`pippin enroll link | profile | links`: a link printed once, a profile written like the CLI's other files,
and the list of both with the enrollments left; refusals exit with the README's codes and store nothing."""

from __future__ import annotations

import json
from pathlib import Path

from pippin.config import Settings
from tests.cli.conftest import Pippin
from tests.mdm.enrollment_setup import activate_push_certificate
from tests.servers import build_server, resources_of


def test_the_commands_print_a_link_write_a_profile_and_list_both(
    pippin: Pippin, settings: Settings, tmp_path: Path
) -> None:
    refused = pippin("enroll", "link", "--uses", "3")
    assert refused.exit_code == 2 and "push certificate" in refused.output
    server = build_server(settings)
    with resources_of(server).session_factory() as session, session.begin():
        activate_push_certificate(session)
    resources_of(server).engine.dispose()
    printed = pippin("enroll", "link", "--uses", "3", "--expires", "2d")
    assert printed.exit_code == 0, printed.output
    url = printed.stdout.strip()
    assert url.startswith(settings.server_url.rstrip("/") + "/mdm/enroll/links/")
    target = tmp_path / "enroll.mobileconfig"
    written = pippin("enroll", "profile", "--uses", "5", "-o", str(target))
    assert written.exit_code == 0, written.output
    assert target.read_bytes().startswith(b"\x30")  # CMS SignedData, DER
    again = pippin("enroll", "profile", "-o", str(target))
    assert again.exit_code == 4 and "already exists" in again.output
    for args in (("enroll", "link", "--uses", "0"), ("enroll", "link", "--expires", "forever")):
        assert pippin(*args).exit_code == 2
    listed = json.loads(pippin("enroll", "links", "--json").stdout)
    assert [(each["kind"], each["uses"], each["uses_left"], each["active"]) for each in listed] == [
        ("file", 5, 5, True),
        ("link", 3, 3, True),
    ]
    table = pippin("enroll", "links").stdout
    assert url.rsplit("/", 1)[1] not in table and "file" in table
