"""The pages work under their Content-Security-Policy in a real browser, with no other site reachable.

Every request to another host is refused, as on a machine without internet; any policy violation or script
error the browser reports fails the test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from tests.browser.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, RunningPippin, Shoot

if TYPE_CHECKING:
    from playwright.sync_api import Page, Route


def _offline_and_watched(page: Page, pippin: RunningPippin) -> list[str]:
    """Refuse every request to another host; collect what the browser complains about."""
    own_host = urlsplit(pippin.base_url).netloc
    problems: list[str] = []

    def only_pippin(route: Route) -> None:
        if urlsplit(route.request.url).netloc == own_host:
            route.continue_()
        else:
            problems.append(f"request to another site: {route.request.url}")
            route.abort()

    page.route("**/*", only_pippin)
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


def test_the_api_docs_render_offline_under_their_policy(page: Page, pippin: RunningPippin, shoot: Shoot) -> None:
    problems = _offline_and_watched(page, pippin)
    page.goto(f"{pippin.base_url}/api/docs")
    page.locator(".swagger-ui .info .title").filter(has_text="Pippin").wait_for()
    operation = page.locator(".opblock-summary-path", has_text="/api/v1/devices").first
    operation.click()
    # Expanded: parameters, and example responses drawn by the syntax highlighter.
    page.locator(".opblock-body .responses-table").first.wait_for()
    page.locator(".opblock-body .microlight, .opblock-body pre").first.wait_for()
    page.get_by_role("button", name="Authorize").first.click()
    page.locator(".modal-ux").wait_for()
    shoot(page, "api-docs")
    assert problems == []


def test_the_console_signs_in_under_its_policy(page: Page, pippin: RunningPippin) -> None:
    problems = _offline_and_watched(page, pippin)
    page.goto(f"{pippin.base_url}/console/")
    page.get_by_label("E-mail address").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="DEP tokens").wait_for()
    assert problems == []
    # An error page, whose 404 the browser reports as such; nothing else may be reported.
    page.goto(f"{pippin.base_url}/console/no-such-page")
    page.get_by_role("link", name="Overview").first.wait_for()
    assert [problem for problem in problems if "status of 404" not in problem] == []
