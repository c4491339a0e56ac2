"""/ui over HTTP: the page and its assets, their security headers and validators, and that no
path reaches anything but the UI folder's files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sentimon.api.routes.ui import CONTENT_SECURITY_POLICY, UI_DIR, load_assets

ASSET_BUDGET_BYTES = 64_000
"""The page with its stylesheet and scripts, uncompressed (the README states the size)."""
GZIP_BUDGET_BYTES = 24_000
"""The same, as sent to a browser (gzip)."""
SCRIPTS = {"app.js", "api.js", "analyze.js", "score.js", "parse.js", "watch.js", "chart.js"}


def test_ui_redirects_to_its_folder_and_serves_the_page(client: TestClient) -> None:
    moved = client.get("/ui", follow_redirects=False)
    assert (moved.status_code, moved.headers["location"]) == (308, "/ui/")
    page = client.get("/ui/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert '<script type="module" src="app.js"></script>' in page.text
    assert '<label for="text">Text to analyze</label>' in page.text
    assert client.get("/").json()["links"]["ui"] == "/ui/"


@pytest.mark.parametrize(
    ("name", "media_type"),
    [("app.js", "text/javascript; charset=utf-8"), ("app.css", "text/css; charset=utf-8")],
)
def test_assets_carry_their_type_a_strict_policy_and_a_validator(
    client: TestClient, name: str, media_type: str
) -> None:
    response = client.get(f"/ui/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-cache"
    again = client.get(f"/ui/{name}", headers={"If-None-Match": response.headers["etag"]})
    assert (again.status_code, again.content) == (304, b"")
    assert again.headers["etag"] == response.headers["etag"]


def test_the_policy_allows_nothing_inline_or_from_elsewhere() -> None:
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY


@pytest.mark.parametrize(
    "path",
    [
        "/ui/..%2Fapi%2Froutes%2Fui.py",
        "/ui/%2e%2e/config.py",
        "/ui/__init__.py",
        "/ui/%2e%2e%2f%2e%2e%2fapp.py",
        "/ui/%2Fetc%2Fpasswd",
        "/ui/app.js%00.html",
        "/ui/nope.html",
    ],
)
def test_no_path_reads_outside_the_ui_files(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["error_type"] == "not_found"


def test_the_page_is_small_and_has_no_inline_script() -> None:
    assets = load_assets()
    assert set(assets) == {"index.html", "app.css", *SCRIPTS}
    assert sum(len(a.body) for a in assets.values()) < ASSET_BUDGET_BYTES
    assert sum(len(a.gzipped) for a in assets.values()) < GZIP_BUDGET_BYTES
    html = (UI_DIR / "index.html").read_text()
    assert html.count("<script") == 1 and 'src="app.js"' in html
    assert " style=" not in html and not re.search(r"\son[a-z]+=", html)
    # Text from the API goes into textContent only.
    for name in SCRIPTS:
        script = (UI_DIR / name).read_text()
        assert "innerHTML" not in script and "insertAdjacentHTML" not in script, name
        assert "eval(" not in script and "document.write" not in script, name


def test_browsers_that_accept_gzip_get_it_with_its_own_validator(client: TestClient) -> None:
    plain = client.get("/ui/score.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.headers["vary"] == "Accept-Encoding"
    packed = client.get("/ui/score.js", headers={"Accept-Encoding": "br, gzip;q=0.8"})
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.content == plain.content  # decoded by the client
    assert packed.headers["etag"] == plain.headers["etag"][:-1] + '-gz"'
    refused = client.get("/ui/score.js", headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers


def test_only_known_file_types_are_served(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<p>x</p>")
    (tmp_path / "secret.txt").write_text("no")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.js").write_text("no")
    assert set(load_assets(tmp_path)) == {"index.html"}
