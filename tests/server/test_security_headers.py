"""Every answer carries nosniff, frame protection and a referrer policy, with a content policy per area; the
console's policy forbids all script, and its templates carry none; the API docs load only Pippin's own files."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette

from pippin.console.rendering import TEMPLATES_DIR
from pippin.server.security_headers import CONSOLE_POLICY, DOCS_POLICY, NOTHING_POLICY

PATHS_AND_POLICIES = [
    ("/console/sign-in", CONSOLE_POLICY),
    ("/console/static/console.css", CONSOLE_POLICY),
    ("/console/no-such-page", CONSOLE_POLICY),
    ("/api/docs", DOCS_POLICY),
    ("/api/docs/start.js", DOCS_POLICY),
    ("/api/openapi.json", NOTHING_POLICY),
    ("/api/v1/devices", NOTHING_POLICY),
    ("/healthz", NOTHING_POLICY),
    ("/mdm/no-such-endpoint", NOTHING_POLICY),
    ("/no/such/path", NOTHING_POLICY),
    ("/api/docsx", NOTHING_POLICY),
]


@pytest.fixture
def client(server: Starlette) -> Iterator[TestClient]:
    with TestClient(server, raise_server_exceptions=False, follow_redirects=False) as client:
        yield client


@pytest.mark.parametrize(("path", "policy"), PATHS_AND_POLICIES)
def test_every_area_sends_the_hardening_headers(client: TestClient, path: str, policy: str) -> None:
    answer = client.get(path)
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert answer.headers["content-security-policy"] == policy
    assert "frame-ancestors 'none'" in policy


def test_refusals_and_errors_carry_them_too(client: TestClient) -> None:
    too_large = client.post("/api/v1/devices", content=b"x", headers={"Content-Length": "99999999"})
    assert too_large.status_code == 413 and too_large.headers["x-content-type-options"] == "nosniff"
    malformed = client.post("/mdm/checkin", content=b"\x00\x1b")
    assert malformed.headers["x-frame-options"] == "DENY"


def test_the_console_policy_allows_no_script_at_all() -> None:
    assert "script-src" not in CONSOLE_POLICY and "default-src 'none'" in CONSOLE_POLICY
    assert "unsafe" not in CONSOLE_POLICY


@pytest.mark.parametrize("template", sorted(TEMPLATES_DIR.glob("*.html")), ids=lambda path: path.name)
def test_no_console_template_needs_what_its_policy_forbids(template: Path) -> None:
    """Inline scripts, event handlers, javascript: links and inline styles would silently stop working."""
    html = template.read_text()
    assert not re.search(r"<script|<style|\sstyle=|\son[a-z]+=|javascript:", html, re.IGNORECASE)
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "the console loads nothing from other sites"


def test_the_docs_page_loads_only_pippins_own_files_and_each_answers(client: TestClient) -> None:
    page = client.get("/api/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script>" not in page.text, "an inline script would be refused by the docs' policy"
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert urls and all(url.startswith("/api/docs/") for url in urls), urls
    assert "http://" not in page.text and "https://" not in page.text
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 100, url
    script = client.get("/api/docs/start.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert '"/api/openapi.json"' in script.text and "validatorUrl: null" in script.text
    bundle = client.get("/api/docs/assets/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in bundle.text


def test_the_openapi_description_is_one_swagger_ui_5_reads(client: TestClient) -> None:
    assert client.get("/api/openapi.json").json()["openapi"].startswith("3.1")
    bundle = client.get("/api/docs/assets/swagger-ui-bundle.js").text
    assert re.search(r'"5\.\d+\.\d+"', bundle), "Swagger UI 4 cannot render OpenAPI 3.1"


def test_the_docs_assets_do_not_reach_outside_the_assets_folder(client: TestClient) -> None:
    for path in ("/api/docs/assets/../../../etc/passwd", "/api/docs/assets/%2e%2e/%2e%2e/etc/passwd"):
        assert client.get(path).status_code == 404
