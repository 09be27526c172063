"""``/docs`` (Swagger UI) and ``/redoc``, with every script and style served
by this server: the pages work offline and under a strict
Content-Security-Policy (no inline scripts, nothing from another origin).

The Swagger UI and ReDoc bundles come from the ``fastapi-offline`` package,
which ships them; FastAPI's own pages load them from a CDN.
"""

from __future__ import annotations

import functools
from html import escape
from importlib.resources import files
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, Response

from ledger.core.errors import NotFound

__all__ = ["install_docs"]

ASSETS_URL = "/docs/assets"
_BUNDLED = Path(str(files("fastapi_offline") / "static"))
_OWN = Path(__file__).parent / "docsassets"
_ASSETS: dict[str, tuple[Path, str]] = {
    "swagger-ui-bundle.js": (_BUNDLED / "swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui.css": (_BUNDLED / "swagger-ui.css", "text/css"),
    "redoc.standalone.js": (_BUNDLED / "redoc.standalone.js", "text/javascript"),
    "favicon.png": (_BUNDLED / "favicon.png", "image/png"),
    "swagger-init.js": (_OWN / "swagger-init.js", "text/javascript"),
}
# Scripts from this origin only, and no inline ones. Both UIs set inline
# styles (ReDoc through injected <style> elements), ReDoc searches in a
# worker it starts from a blob: URL, and Swagger UI's "Try it out" calls the API.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
        "worker-src 'self' blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_ASSET_HEADERS = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}


# ReDoc's sidebar shows its maker's logo from their CDN, with no option to
# hide it; an empty source makes the image fail and ReDoc then drops it.
_REDOC_LOGO = b'"https://cdn.redoc.ly/redoc/logo-mini.svg"'


@functools.cache
def _redoc_bundle() -> bytes:
    bundle = _ASSETS["redoc.standalone.js"][0].read_bytes()
    return bundle.replace(_REDOC_LOGO, b'""')


def _swagger_page(title: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} - API documentation</title>
<link rel="stylesheet" href="{ASSETS_URL}/swagger-ui.css">
<link rel="icon" href="{ASSETS_URL}/favicon.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS_URL}/swagger-ui-bundle.js"></script>
<script src="{ASSETS_URL}/swagger-init.js"></script>
</body>
</html>
"""


def _redoc_page(title: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} - API reference</title>
<link rel="icon" href="{ASSETS_URL}/favicon.png">
</head>
<body>
<noscript>This reference needs JavaScript; the document itself is at /openapi.json.</noscript>
<redoc spec-url="/openapi.json"></redoc>
<script src="{ASSETS_URL}/redoc.standalone.js"></script>
</body>
</html>
"""


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs`` and ``/redoc`` (create ``app`` with ``docs_url=None``
    and ``redoc_url=None``, so FastAPI's CDN pages are not there too)."""
    swagger = _swagger_page(app.title)
    redoc = _redoc_page(app.title)
    router = APIRouter(include_in_schema=False)

    @router.get("/docs")
    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(swagger, headers=_HEADERS)

    @router.get("/redoc")
    async def redoc_ui() -> HTMLResponse:
        return HTMLResponse(redoc, headers=_HEADERS)

    @router.get(ASSETS_URL + "/{name}")
    async def asset(name: Annotated[str, PathParam()]) -> Response:
        found = _ASSETS.get(name)
        if found is None:
            raise NotFound(f"no documentation asset named {name!r}")
        path, media_type = found
        if name == "redoc.standalone.js":
            return Response(_redoc_bundle(), media_type=media_type, headers=_ASSET_HEADERS)
        return FileResponse(path, media_type=media_type, headers=_ASSET_HEADERS)

    app.include_router(router)
