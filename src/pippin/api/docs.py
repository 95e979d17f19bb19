"""``/api/docs``: Swagger UI served from Pippin's own files, so the docs work on a machine without internet.

FastAPI's own page loads Swagger UI from a CDN and starts it with an inline script; this one takes the files
from the ``fastapi-offline`` package and starts Swagger UI from a script of Pippin's, so the page needs no other
site and runs under a Content-Security-Policy that allows scripts from Pippin alone
(``server/security_headers.py``).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

DOCS_PATH = "/api/docs"
ASSETS_PATH = f"{DOCS_PATH}/assets"
OPENAPI_PATH = "/api/openapi.json"
#: Swagger UI's own files, as the package ships them (swagger-ui-bundle.js, swagger-ui.css, favicon.png).
SWAGGER_UI_DIR = Path(str(files("fastapi_offline") / "static"))

_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Pippin API</title>
<link rel="stylesheet" href="{ASSETS_PATH}/swagger-ui.css">
<link rel="icon" type="image/png" href="{ASSETS_PATH}/favicon.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS_PATH}/swagger-ui-bundle.js"></script>
<script src="{DOCS_PATH}/start.js"></script>
</body>
</html>
"""

# validatorUrl null: Swagger UI would otherwise send the OpenAPI description to validator.swagger.io.
_START = f"""window.ui = SwaggerUIBundle({{
  url: "{OPENAPI_PATH}",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  layout: "BaseLayout",
}});
"""

router = APIRouter(include_in_schema=False)


@router.get(DOCS_PATH)
def docs_page() -> HTMLResponse:
    return HTMLResponse(_PAGE)


@router.get(f"{DOCS_PATH}/start.js")
def docs_start_script() -> Response:
    return Response(_START, media_type="text/javascript")


def install_docs(api: FastAPI) -> None:
    """Serve the docs page, its start script and Swagger UI's files on ``api``."""
    api.include_router(router)
    api.mount(ASSETS_PATH, StaticFiles(directory=SWAGGER_UI_DIR), name="docs-assets")
