"""The seed's steps 2 to 7 as a new admin clicks them in Chromium: sign in, get the key, add the MDM server in
the simulated Apple portal's pages, upload the token, create a profile, sync (Sync now disabled while it runs),
and find a device by its serial number. Every page is saved as a screenshot, one at a phone's width.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from tests.browser.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, RunningPippin, Shoot
from tests.simulator import RunningSimulator

if TYPE_CHECKING:
    from playwright.sync_api import Page

APPLE_ID = "it.admin@example.com"
#: Apple's first device list answers this late, so the sync is seen running for a while.
SLOW_APPLE_SECONDS = 3.0


def _sign_in(page: Page, pippin: RunningPippin) -> None:
    page.goto(f"{pippin.base_url}/console/")
    assert "/console/sign-in" in page.url
    page.get_by_label("E-mail address").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{pippin.base_url}/console/")


def _add_server_at_apple(page: Page, sim: RunningSimulator, pem: Path, tmp_path: Path, shoot: Shoot) -> list[str]:
    """Step 3 in the simulated Business Manager: MDM server with the .pem, token download, devices assigned."""
    page.goto(f"{sim.base_url}/portal/pages/servers")
    page.get_by_label("Name").fill("Acme MDM")
    page.get_by_label("Your Apple Account").fill(APPLE_ID)
    page.get_by_label("Public key").set_input_files(pem)
    page.get_by_role("button", name="Add MDM server").click()
    page.get_by_text("Download its token below").wait_for()
    shoot(page, "05-apple-portal-mdm-servers")
    page.goto(f"{sim.base_url}/portal/pages/devices")
    page.get_by_label("How many").fill("6")
    page.get_by_role("button", name="Add devices").click()
    page.get_by_text("Added 6 devices").wait_for()
    serials = page.locator("tbody td:first-child code").all_inner_texts()
    page.locator("form[action='/portal/pages/assignments'] textarea[name=serials]").fill("\n".join(serials))
    page.get_by_role("button", name="Assign", exact=True).click()
    page.get_by_text("Assigned 6").wait_for()
    shoot(page, "06-apple-portal-devices-assigned")
    return serials


def test_a_new_admin_walks_the_seed_by_clicking(
    page: Page, pippin: RunningPippin, sim: RunningSimulator, shoot: Shoot, tmp_path: Path
) -> None:
    page.goto(f"{pippin.base_url}/console/")
    shoot(page, "01-sign-in")
    _sign_in(page, pippin)
    shoot(page, "02-overview-before-any-token")

    # Step 2: name the token and download its encryption key.
    page.get_by_role("link", name="DEP tokens").click()
    page.get_by_role("link", name="Add a DEP token").click()
    shoot(page, "03-add-a-dep-token")
    page.get_by_label("Token name").fill("acme")
    page.get_by_role("button", name="Get encryption key").click()
    page.wait_for_url(re.compile(r".*/console/tokens/acme/connect$"))
    shoot(page, "04-connect-steps")
    with page.expect_download() as pem_download:
        page.locator("#download-pem").click()
    pem = tmp_path / pem_download.value.suggested_filename
    pem_download.value.save_as(pem)
    assert pem.name == "pippin-dep-acme.pem" and pem.read_text().startswith("-----BEGIN CERTIFICATE-----")

    # Step 3 at Apple, in a second tab as an admin would.
    portal = page.context.new_page()
    serials = _add_server_at_apple(portal, sim, pem, tmp_path, shoot)
    with portal.expect_download() as token_download:
        portal.goto(f"{sim.base_url}/portal/pages/servers")
        portal.get_by_role("link", name="Download token").click()
    p7m = tmp_path / token_download.value.suggested_filename
    token_download.value.save_as(p7m)
    assert p7m.name.endswith(".p7m")
    portal.close()

    # Step 4: upload the token with the Apple ID.
    page.get_by_label("Server token (.p7m)").set_input_files(p7m)
    page.get_by_label("Apple ID used at Apple Business Manager").fill(APPLE_ID)
    page.get_by_role("button", name="Upload token").click()
    page.wait_for_url(re.compile(r".*/console/tokens/acme$"))
    assert "is connected to Acme MDM" in page.inner_text("main")
    shoot(page, "07-token-connected")

    # Step 5: an enrollment profile, supervised and locked, with a pane hidden; the token's default.
    page.get_by_role("link", name="Enrollment profiles").click()
    page.get_by_role("link", name="Create a profile").click()
    page.get_by_label("Name (shown on the device during setup)").fill("Staff phones")
    page.get_by_label("Supervised").check()
    page.get_by_label("Locked enrollment: the user cannot remove management").check()
    shoot(page, "08-profile-form")
    page.get_by_role("button", name="Save profile").click()
    page.wait_for_url(re.compile(r".*/console/profiles/Staff%20phones$"))
    shoot(page, "09-profile")
    page.goto(f"{pippin.base_url}/console/tokens/acme")
    page.get_by_label("The profile new devices of this token get at each sync").select_option("Staff phones")
    page.get_by_role("button", name="Save default profile").click()
    page.get_by_text("New devices of acme get profile Staff phones").wait_for()

    # Step 7: Sync now, disabled while the sync runs, with the time it reopens.
    slow = {"rates": {"post_server_devices": {"latency": 1.0}}, "latency_seconds": SLOW_APPLE_SECONDS}
    assert sim.portal.put("/portal/faults", json=slow).status_code == 200
    page.get_by_role("button", name="Sync now").click()
    page.get_by_text("sync of acme has started").wait_for()
    sync_button = page.get_by_role("button", name="Sync now")
    assert sync_button.is_disabled()
    assert "Sync is possible again at" in page.inner_text("#sync-state")
    shoot(page, "10-sync-running-button-disabled")
    assert sim.portal.put("/portal/faults", json={}).status_code == 200
    for _ in range(40):
        page.wait_for_timeout(250)
        page.reload()
        if page.get_by_role("button", name="Sync now").is_enabled():
            break
    assert page.get_by_role("button", name="Sync now").is_enabled()
    assert "succeeded" in page.inner_text("main")
    shoot(page, "11-token-after-sync")

    # "All corporate-owned devices": every device Not contacted; one found by its serial number.
    page.get_by_role("link", name="Devices").click()
    assert page.get_by_role("cell", name="Not contacted").count() == len(serials)
    shoot(page, "12-all-corporate-owned-devices")
    page.get_by_label("Search serial, model or asset tag").fill(serials[3].lower())
    page.get_by_role("button", name="Show").click()
    rows = page.locator("tbody tr")
    assert rows.count() == 1 and serials[3] in rows.inner_text()
    page.get_by_role("link", name=serials[3]).click()
    assert serials[3] in page.inner_text("h1")
    shoot(page, "13-device-detail")

    page.get_by_role("link", name="Overview").click()
    shoot(page, "14-overview")
    page.get_by_role("link", name="Audit log").click()
    for action in ("dep.keypair.create", "dep.token.upload", "profile.create", "profile.set_default", "dep.sync.start"):
        assert action in page.inner_text("main")
    shoot(page, "15-audit-log")

    # A phone's width: the same pages must stay readable without sideways scrolling.
    page.set_viewport_size({"width": 390, "height": 844})
    for name, path in (("16-phone-devices", "/console/devices"), ("17-phone-token", "/console/tokens/acme")):
        page.goto(f"{pippin.base_url}{path}")
        page_width = page.evaluate("document.documentElement.scrollWidth")
        assert page_width <= 390, f"{path} is {page_width} px wide at a phone's 390 px"
        shoot(page, name)


def test_the_keyboard_alone_signs_in_and_reaches_the_devices(page: Page, pippin: RunningPippin, shoot: Shoot) -> None:
    page.goto(f"{pippin.base_url}/console/sign-in")
    # The e-mail field has the focus on arrival.
    page.wait_for_function("document.activeElement && document.activeElement.id === 'email'")
    page.keyboard.type(ADMIN_EMAIL)
    page.keyboard.press("Tab")
    page.keyboard.type(ADMIN_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{pippin.base_url}/console/")
    page.wait_for_load_state()
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == "Devices":
            break
    shoot(page, "18-keyboard-focus-on-devices")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{pippin.base_url}/console/devices")
    assert page.get_by_role("heading", name="All corporate-owned devices").is_visible()
