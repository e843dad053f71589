"""v1's router rules, in front of the whole application (an ASGI middleware).

v1 ran on Fiber with its defaults, and its clients rely on them:

* paths match without regard to case, and one trailing slash is ignored
  (``/API/V1/Queue/Stats/`` is ``/api/v1/queue/stats``); route parameters keep
  the case they were sent in;
* every ``GET`` route answers ``HEAD`` too (same status and headers, no body);
* every response carries ``Access-Control-Allow-Origin: *``, and any ``OPTIONS``
  request is a CORS preflight answered ``204`` with v1's allowed methods and headers.

The rewriting applies to the v1 routes only (``/api/v1/...`` and the health
probes): v2 paths are matched exactly, as their OpenAPI document says. The path
and method as sent are kept in the scope, so v1's ``Cannot GET /x`` names them.
"""

from __future__ import annotations

from collections.abc import Iterable

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


class V1Compat:
    """ASGI middleware applying :class:`V1Router`, ``HEAD`` on ``GET`` and CORS."""

    def __init__(self, app: ASGIApp, templates: Iterable[str]) -> None:
        self.app = app
        self.router = V1Router(templates)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            await _preflight(send)
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
                message = {**message, "headers": [*headers, (b"access-control-allow-origin", b"*")]}
            elif head and message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app(scope, receive, cors_send)


async def _preflight(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 204,
            "headers": [
                (b"access-control-allow-origin", b"*"),
                (b"access-control-allow-methods", ALLOW_METHODS),
                (b"access-control-allow-headers", ALLOW_HEADERS),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b"", "more_body": False})
