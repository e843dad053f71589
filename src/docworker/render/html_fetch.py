"""WeasyPrint's fetcher of a page's resources, kept to the page's folder and the URL
policy (see :mod:`docworker.render.html_pdf`). A module of its own because it imports
WeasyPrint, which only the processes that lay pages out need."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from weasyprint.urls import URLFetcher, URLFetcherResponse

from docworker.document import Warning
from docworker.errors import DocworkerError
from docworker.url_policy import UrlPolicy


@dataclass
class GuardedFetcher(URLFetcher):  # type: ignore[misc]
    """WeasyPrint's fetcher of a page's resources, kept to ``root`` and the URL policy."""

    root: Path
    policy: UrlPolicy
    warnings: list[Warning] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(timeout=self.policy.timeout, allow_redirects=False)
        self.root = self.root.resolve()

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        scheme = urlsplit(url).scheme.lower()
        try:
            if scheme == "data":
                return super().fetch(url, headers)
            if scheme == "file":
                return self._local(url)
            if scheme in {"http", "https"}:
                body, mime, final = self.policy.fetch(url)
                return URLFetcherResponse(final, body, {"Content-Type": mime or ""})
            raise _Refused(f"the scheme '{scheme}' is never fetched")
        except DocworkerError as exc:
            self._refuse(url, exc.detail)
            raise
        except _Refused as exc:
            self._refuse(url, str(exc))
            raise

    def _local(self, url: str) -> URLFetcherResponse:
        path = Path(unquote(urlsplit(url).path))
        resolved = path.resolve()
        if not resolved.is_relative_to(self.root) or path.is_symlink():
            raise _Refused("it is outside the uploaded files")
        if not resolved.is_file():
            raise _Refused("no such file among the uploaded files")
        mime = mimetypes.guess_type(resolved.name)[0] or "application/octet-stream"
        return URLFetcherResponse(url, resolved.read_bytes(), {"Content-Type": mime})

    def _refuse(self, url: str, reason: str) -> None:
        shown = url if len(url) <= 200 else url[:200] + "…"
        if url.startswith("data:"):
            shown = "a data: URL"
        self.warnings.append(
            Warning(code="resource-refused", message=f"{shown} was not loaded: {reason}")
        )


class _Refused(ValueError):
    """A resource the fetcher does not load (the reason is its message)."""
