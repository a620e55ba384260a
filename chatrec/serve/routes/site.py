"""The browser side: ``GET /widget.js`` (the embeddable widget) and ``GET /demo`` (a demo shop page
using it), from the package's ``static/`` folder."""

from __future__ import annotations

import re
from functools import cache, lru_cache
from importlib import resources

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response

from chatrec.serve.deps import ServeSettingsDep

router = APIRouter(tags=["site"])

# The widget is loaded cross-origin by shops' pages; it holds no secrets.
WIDGET_HEADERS = {
    "Cache-Control": "public, max-age=300",
    "X-Content-Type-Options": "nosniff",
    "Access-Control-Allow-Origin": "*",
}
# The demo page runs only its own script (the widget) and talks only to this server.
DEMO_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


@cache
def static_text(name: str) -> str:
    return resources.files("chatrec").joinpath("static", name).read_text(encoding="utf-8")


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")


@lru_cache(maxsize=8)
def demo_page(site_key: str | None) -> str:
    """demo.html, with ``site_key`` (escaped) written into the widget's ``data-site-key``."""
    html = static_text("demo.html")
    if site_key:
        html = re.sub(r'data-site-key="[^"]*"', lambda _: f'data-site-key="{_attr(site_key)}"', html, count=1)
    return html


@router.get("/widget.js")
def widget():
    return Response(
        static_text("widget.js"), media_type="application/javascript; charset=utf-8", headers=WIDGET_HEADERS
    )


@router.get("/demo", response_class=HTMLResponse)
def demo(settings: ServeSettingsDep):
    if not settings.demo:
        raise HTTPException(404)
    return HTMLResponse(demo_page(settings.demo_site_key), headers=DEMO_HEADERS)
