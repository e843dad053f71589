"""What the command-line modules share: how a command fails, and a call to a server."""

from __future__ import annotations

import os
import sys
from typing import Any

import httpx
import typer


def fail(message: str, code: int = 1) -> typer.Exit:
    """An exit with ``code`` after ``docworker: message`` on standard error."""
    sys.stderr.write(f"docworker: {message}\n")
    return typer.Exit(code)


def server_call(
    server: str, method: str, path: str, *, timeout: float = 30.0, **kwargs: Any
) -> Any:
    """A request to a running server with the key in ``DOCWORKER_API_KEY``: its JSON body
    (None when empty), or a failure naming the server or the problem's detail."""
    key = os.environ.get("DOCWORKER_API_KEY", "")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        with httpx.Client(base_url=server.rstrip("/"), timeout=timeout, headers=headers) as c:
            response = c.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise fail(f"cannot reach {server}: {exc}") from None
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail") or response.text
        except ValueError:
            detail = response.text
        raise fail(f"{response.status_code}: {detail}")
    return response.json() if response.content else None
