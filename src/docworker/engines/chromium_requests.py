"""What a page rendered by Chromium may load: the answer to every request it makes.

The browser pauses every request of the page (and of its frames and workers)
and asks; :class:`RequestGuard` answers by these rules:

* ``data:``, ``blob:`` and ``about:`` URLs load (they carry their content, or name none);
* ``file:`` URLs load only when the file, its links resolved, lies inside the
  render's own folder (the uploaded page and its assets); anything else on the
  disk is refused;
* ``http:`` and ``https:`` URLs are never fetched by the browser: a ``GET`` that
  :class:`~docworker.url_policy.UrlPolicy` allows (allow-listed, public address)
  is fetched by :meth:`UrlPolicy.fetch` and handed to the browser as the answer,
  up to ``max_remote`` per render; everything else (another method, a host not
  allowed, a private, loopback or link-local address) is refused;
* every other scheme is refused.

Each refusal is recorded (URL and reason) for the render's result.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from docworker.errors import DocworkerError
from docworker.url_policy import UrlPolicy

#: How many refusals a result lists (the count covers them all).
MAX_LISTED = 50
_LOCAL_SCHEMES = frozenset({"data", "blob", "about"})


@dataclass(frozen=True)
class Answer:
    """The command that answers a paused request, and its parameters."""

    method: str
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def go_on(cls) -> Answer:
        return cls("Fetch.continueRequest")

    @classmethod
    def refuse(cls, reason: str = "BlockedByClient") -> Answer:
        return cls("Fetch.failRequest", {"errorReason": reason})

    @classmethod
    def fulfil(cls, body: bytes, mime: str | None) -> Answer:
        headers = [{"name": "Content-Type", "value": mime or "application/octet-stream"}]
        return cls(
            "Fetch.fulfillRequest",
            {
                "responseCode": 200,
                "responseHeaders": headers,
                "body": base64.b64encode(body).decode("ascii"),
            },
        )


class RequestGuard:
    """The rules for one render: its folder, the URL policy and the remote budget."""

    def __init__(self, root: Path, policy: UrlPolicy, max_remote: int) -> None:
        self.root = Path(os.path.realpath(root))
        self.policy = policy
        self.max_remote = max_remote
        self.remote_fetches = 0
        self.refused_count = 0
        self.refused: list[dict[str, str]] = []

    def answer(self, url: str, method: str = "GET") -> Answer:
        """How to answer the browser's request for ``url``."""
        scheme = urlsplit(url).scheme.lower()
        if scheme in _LOCAL_SCHEMES:
            return Answer.go_on()
        if scheme == "file":
            return self._local_file(url)
        if scheme in {"http", "https"}:
            return self._remote(url, method)
        return self._refuse(url, f"the scheme '{scheme}' is never loaded")

    def _local_file(self, url: str) -> Answer:
        parts = urlsplit(url)
        if parts.netloc not in {"", "localhost"}:
            return self._refuse(url, "a file on another host")
        path = Path(os.path.realpath(unquote(parts.path)))
        if not path.is_relative_to(self.root):
            return self._refuse(url, "a local file outside the page's own folder")
        if not path.is_file():
            return self._refuse(url, "no such file in the page's folder", "FileNotFound")
        return Answer.go_on()

    def _remote(self, url: str, method: str) -> Answer:
        if method.upper() not in {"GET", "HEAD"}:
            return self._refuse(url, f"a {method.upper()} request (only GET is fetched)")
        if self.remote_fetches >= self.max_remote:
            return self._refuse(url, f"over the limit of {self.max_remote} remote resources")
        try:
            self.policy.check(url)
            self.remote_fetches += 1
            body, mime, _ = self.policy.fetch(url)
        except DocworkerError as exc:
            return self._refuse(url, exc.detail)
        return Answer.fulfil(body, mime)

    def _refuse(self, url: str, reason: str, error: str = "BlockedByClient") -> Answer:
        self.refused_count += 1
        if len(self.refused) < MAX_LISTED:
            self.refused.append({"url": _short(url), "reason": reason})
        return Answer.refuse(error)

    def summary(self) -> dict[str, Any]:
        """What was refused and fetched, for the render's result."""
        return {
            "remote_fetches": self.remote_fetches,
            "refused_count": self.refused_count,
            "refused": list(self.refused),
        }


def _short(url: str) -> str:
    """A URL as a result lists it: ``data:`` URLs cut, anything else up to 300 characters."""
    if url.startswith("data:"):
        return url[:40] + "…"
    return url[:300]
