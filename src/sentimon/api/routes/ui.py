"""The web page at /ui: static files from `sentimon/ui`, served by the API itself.

Only the files in that folder with a known type are served, read once at import into a table
keyed by file name, so no request path can reach anything else (`..`, encoded slashes and
absolute paths are just names not in the table). Every answer carries a strict
Content-Security-Policy (scripts, styles and requests from this origin only, no inline
script) and an ETag; `If-None-Match` gets a 304, and `no-cache` makes browsers revalidate,
so a new version shows at once and an unchanged one costs no transfer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException

UI_DIR = Path(__file__).resolve().parents[2] / "ui"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
}
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def load_assets(folder: Path = UI_DIR) -> dict[str, Asset]:
    """Every servable file of `folder` (not its subfolders) by name."""
    assets = {}
    for path in sorted(folder.iterdir()):
        media_type = MEDIA_TYPES.get(path.suffix)
        if media_type is None or not path.is_file():
            continue
        body = path.read_bytes()
        etag = f'"{hashlib.sha256(body).hexdigest()[:20]}"'
        assets[path.name] = Asset(body, media_type, etag)
    return assets


ASSETS = load_assets()
router = APIRouter(include_in_schema=False)


def _serve(request: Request, name: str) -> Response:
    asset = ASSETS.get(name)
    if asset is None:
        raise HTTPException(status_code=404)
    headers = {**SECURITY_HEADERS, "ETag": asset.etag}
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


@router.get("/ui")
async def ui_redirect() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=308)


@router.get("/ui/")
async def ui_index(request: Request) -> Response:
    return _serve(request, "index.html")


@router.get("/ui/{name}")
async def ui_file(request: Request, name: str) -> Response:
    return _serve(request, name)
