"""The web page at /ui: static files from `sentimon/ui`, served by the API itself.

Only the files in that folder with a known type are served, read once at import into a table
keyed by file name, so no request path can reach anything else (`..`, encoded slashes and
absolute paths are just names not in the table). Every answer carries a strict
Content-Security-Policy (scripts, styles and requests from this origin only, no inline
script) and an ETag; `If-None-Match` gets a 304, and `no-cache` makes browsers revalidate,
so a new version shows at once and an unchanged one costs no transfer. Browsers that accept
gzip get each file compressed once at import (about a third of its size), with its own ETag.
"""

from __future__ import annotations

import gzip
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
    gzipped: bytes
    gzip_etag: str


def load_assets(folder: Path = UI_DIR) -> dict[str, Asset]:
    """Every servable file of `folder` (not its subfolders) by name."""
    assets = {}
    for path in sorted(folder.iterdir()):
        media_type = MEDIA_TYPES.get(path.suffix)
        if media_type is None or not path.is_file():
            continue
        body = path.read_bytes()
        digest = hashlib.sha256(body).hexdigest()[:20]
        gzipped = gzip.compress(body, compresslevel=9, mtime=0)
        assets[path.name] = Asset(body, media_type, f'"{digest}"', gzipped, f'"{digest}-gz"')
    return assets


ASSETS = load_assets()
router = APIRouter(include_in_schema=False)


def _serve(request: Request, name: str) -> Response:
    asset = ASSETS.get(name)
    if asset is None:
        raise HTTPException(status_code=404)
    compressed = _accepts_gzip(request.headers.get("accept-encoding", ""))
    etag = asset.gzip_etag if compressed else asset.etag
    headers = {**SECURITY_HEADERS, "ETag": etag, "Vary": "Accept-Encoding"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    if compressed:
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


def _accepts_gzip(accept_encoding: str) -> bool:
    for part in accept_encoding.lower().split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip() in ("gzip", "*"):
            q = params.strip().removeprefix("q=")
            return not (params.strip().startswith("q=") and _float(q) == 0)
    return False


def _float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return 1.0


@router.get("/ui")
async def ui_redirect() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=308)


@router.get("/ui/")
async def ui_index(request: Request) -> Response:
    return _serve(request, "index.html")


@router.get("/ui/{name}")
async def ui_file(request: Request, name: str) -> Response:
    return _serve(request, name)
