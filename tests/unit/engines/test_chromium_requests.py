"""The rules Chromium's requests are answered by, without a browser."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from docworker.engines.chromium_requests import MAX_LISTED, RequestGuard
from docworker.url_policy import UrlPolicy


@pytest.fixture
def site(tmp_path: Path) -> Path:
    folder = tmp_path / "site"
    (folder / "img").mkdir(parents=True)
    (folder / "img" / "a.png").write_bytes(b"png")
    (tmp_path / "secret.txt").write_text("secret")
    (folder / "link.txt").symlink_to(tmp_path / "secret.txt")
    return folder


def _guard(site: Path, allow: tuple[str, ...] = (), max_remote: int = 5) -> RequestGuard:
    return RequestGuard(site, UrlPolicy(allow=allow), max_remote)


def test_inline_schemes_load(site: Path) -> None:
    guard = _guard(site)
    for url in ("data:image/png;base64,AAAA", "about:blank", "blob:file:///1234"):
        assert guard.answer(url).method == "Fetch.continueRequest"
    assert guard.refused_count == 0


def test_local_files_only_inside_the_folder(site: Path) -> None:
    guard = _guard(site)
    assert guard.answer((site / "img" / "a.png").as_uri()).method == "Fetch.continueRequest"
    assert guard.answer(f"file://{site}/img/../img/a.png").method == "Fetch.continueRequest"
    outside = [
        "file:///etc/hostname",
        f"file://{site}/../secret.txt",
        f"file://{site}/%2e%2e/secret.txt",
        (site / "link.txt").as_uri(),  # a link inside, pointing out
        "file://otherhost/share/x.png",
    ]
    for url in outside:
        answer = guard.answer(url)
        assert answer.method == "Fetch.failRequest", url
    missing = guard.answer((site / "nope.png").as_uri())
    assert missing.params == {"errorReason": "FileNotFound"}
    assert guard.refused_count == len(outside) + 1
    assert guard.refused[0] == {
        "url": "file:///etc/hostname",
        "reason": "a local file outside the page's own folder",
    }


def test_remote_addresses_that_are_not_public_are_refused_even_when_allowed(site: Path) -> None:
    guard = _guard(site, allow=("127.0.0.1", "169.254.169.254", "localhost"))
    for url in (
        "http://127.0.0.1:8080/x.png",
        "http://169.254.169.254/latest/meta-data/",
        "https://localhost/",
    ):
        assert guard.answer(url).method == "Fetch.failRequest"
    assert guard.remote_fetches == 0
    assert "non-public address" in guard.refused[0]["reason"]


def test_not_allow_listed_methods_and_schemes(site: Path) -> None:
    guard = _guard(site)
    assert "allow-list" in _reason(guard, "https://example.com/a.css")
    assert "POST" in _reason(guard, "https://example.com/form", "POST")
    assert "scheme 'ws'" in _reason(guard, "ws://example.com/socket")
    assert "scheme 'chrome'" in _reason(guard, "chrome://settings")
    assert "over the limit" in _reason(_guard(site, max_remote=0), "https://example.com/a.png")


def _reason(guard: RequestGuard, url: str, method: str = "GET") -> str:
    assert guard.answer(url, method).method == "Fetch.failRequest"
    return guard.refused[-1]["reason"]


def test_refusals_listed_up_to_a_bound(site: Path) -> None:
    guard = _guard(site)
    for index in range(MAX_LISTED + 10):
        guard.answer(f"gopher://example.com/{index}")
    summary = guard.summary()
    assert summary["refused_count"] == MAX_LISTED + 10
    assert len(summary["refused"]) == MAX_LISTED
    long_data = "data:text/plain;base64," + base64.b64encode(b"x" * 500).decode()
    guard.answer(long_data.replace("data:", "weird:"))
    assert len(guard.summary()["refused"]) == MAX_LISTED
