"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), working offline.

FastAPI's own pages load their scripts, styles, favicon and fonts from CDNs,
which a server without internet access (or a browser behind a strict proxy)
cannot reach. The pages here load them from ``/docs/assets/``, served from the
files the ``fastapi-offline`` package ships (MIT): Swagger UI's bundle and CSS,
ReDoc's standalone script and a favicon.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.routing import BaseRoute, Route
from starlette.staticfiles import StaticFiles

from docworker.config import Settings

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/docs/assets"


def _without(routes: list[BaseRoute], paths: set[str]) -> list[BaseRoute]:
    return [r for r in routes if not (isinstance(r, Route) and r.path in paths)]


def install_docs(app: FastAPI, settings: Settings) -> None:
    """Replace FastAPI's CDN-backed documentation pages with self-contained ones."""
    app.router.routes[:] = _without(app.router.routes, {"/docs", "/redoc"})
    if not settings.server.docs:
        return
    openapi_url = app.openapi_url or "/openapi.json"
    title = app.title
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} — API",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{title} — API",
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
