"""v1's router rules, in front of the whole application (an ASGI middleware).

v1 ran on Fiber with its defaults, and its clients rely on them:

* paths match without regard to case, and one trailing slash is ignored
  (``/API/V1/Queue/Stats/`` is ``/api/v1/queue/stats``); route parameters keep
  the case they were sent in;
* every ``GET`` route answers ``HEAD`` too (same status and headers, no body);
* every response carries ``Access-Control-Allow-Origin: *``, and any ``OPTIONS``
  request is a CORS preflight answered ``204`` with v1's allowed methods and headers.
  The origins allowed are a setting (``cors.allow_origins``, ``*`` by default as in
  v1): with a list, an allowed ``Origin`` is echoed back and others get no CORS
  headers (browsers send keys as ``Authorization: Bearer``).

The rewriting applies to the v1 routes only (``/api/v1/...`` and the health
probes): v2 paths are matched exactly, as their OpenAPI document says. The path
and method as sent are kept in the scope, so v1's ``Cannot GET /x`` names them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from docworker.api.errors import ORIGINAL_METHOD, ORIGINAL_PATH

ALLOW_METHODS = b"GET,POST,PUT,DELETE,OPTIONS"
ALLOW_HEADERS = b"Origin,Content-Type,Accept,Authorization"
#: The v1 paths outside ``/api/v1``.
V1_ROOT_PATHS = ("/health", "/health/liveness", "/health/readiness", "/metrics")


def is_v1_path(path: str) -> bool:
    lowered = path.lower()
    return (
        lowered == "/api/v1"
        or lowered.startswith("/api/v1/")
        or lowered.rstrip("/") in (V1_ROOT_PATHS)
    )


class V1Router:
    """Matches a request path against v1's route templates (``/api/v1/job/{id}``) the way
    Fiber did, and answers the path to route to."""

    def __init__(self, templates: Iterable[str]) -> None:
        self._templates: dict[int, list[list[str]]] = {}
        for template in templates:
            parts = template.strip("/").split("/")
            self._templates.setdefault(len(parts), []).append(parts)

    def canonical(self, path: str) -> str | None:
        """The route's own spelling of ``path``, parameters as sent; None if none matches."""
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]
        parts = path.removeprefix("/").split("/")
        for template in self._templates.get(len(parts), ()):
            if all(_matches(t, p) for t, p in zip(template, parts, strict=True)):
                return "/" + "/".join(
                    p if t.startswith("{") else t for t, p in zip(template, parts, strict=True)
                )
        return None


def _matches(template: str, part: str) -> bool:
    if template.startswith("{"):
        return bool(part)
    return template.lower() == part.lower()


@dataclass(frozen=True)
class CorsPolicy:
    """Which origins a browser may call from, and whether with credentials."""

    origins: tuple[str, ...] = ("*",)
    credentials: bool = False
    max_age: int = 600

    def headers(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        """The CORS headers of an answer to this request (none for a refused origin)."""
        origin = next((v for k, v in scope.get("headers") or [] if k == b"origin"), None)
        if "*" in self.origins and not self.credentials:
            return [(b"access-control-allow-origin", b"*")]
        allowed = origin is not None and (
            "*" in self.origins or origin.decode("latin-1") in self.origins
        )
        if not allowed or origin is None:
            return [(b"vary", b"Origin")]
        found = [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]
        if self.credentials:
            found.append((b"access-control-allow-credentials", b"true"))
        return found


class V1Compat:
    """ASGI middleware applying :class:`V1Router`, ``HEAD`` on ``GET`` and CORS."""

    def __init__(
        self, app: ASGIApp, templates: Iterable[str], cors: CorsPolicy | None = None
    ) -> None:
        self.app = app
        self.router = V1Router(templates)
        self.cors = cors or CorsPolicy()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cors = self.cors.headers(scope)
        if scope["method"] == "OPTIONS":
            await _preflight(send, cors, self.cors.max_age)
            return
        head = False
        if is_v1_path(scope["path"]):
            scope = dict(scope)
            scope[ORIGINAL_PATH] = scope["path"]
            scope[ORIGINAL_METHOD] = scope["method"]
            canonical = self.router.canonical(scope["path"])
            if canonical is not None:
                scope["path"] = canonical
                scope["raw_path"] = canonical.encode()
            if scope["method"] == "HEAD":
                head = True
                scope["method"] = "GET"

        async def cors_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() != b"access-control-allow-origin"
                ]
                message = {**message, "headers": [*headers, *cors]}
            elif head and message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app(scope, receive, cors_send)


async def _preflight(send: Send, cors: list[tuple[bytes, bytes]], max_age: int) -> None:
    headers = list(cors)
    if any(k == b"access-control-allow-origin" for k, _ in cors):
        headers += [
            (b"access-control-allow-methods", ALLOW_METHODS),
            (b"access-control-allow-headers", ALLOW_HEADERS),
            (b"access-control-max-age", str(max_age).encode()),
        ]
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
