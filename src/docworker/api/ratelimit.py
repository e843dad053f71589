"""Rate limits on every request, right after its caller is known and before its body is read.

:class:`RateLimit` (ASGI middleware, placed after :class:`~docworker.api.auth.Authenticate`)
counts the request against its caller's rate: an API key's own ``rate`` or the
configured default, per key; without keys, per client address. Every answer carries
the rate's state in the headers of the IETF draft (``RateLimit-Limit``,
``RateLimit-Remaining``, ``RateLimit-Reset`` in seconds, ``RateLimit-Policy``); a
request over the rate is answered 429 with ``Retry-After``, as problem+json, or with
v1's error body on v1 paths. Health probes, the API documents and CORS preflights are
never counted.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from fastapi import FastAPI
from limits import RateLimitItem
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from docworker import errors
from docworker.api.auth import (
    STATE_KEY,
    early_refusal,
    is_public,
    public_paths,
    refusal_response,
)
from docworker.api.v1.http import is_v1_path
from docworker.auth import Principal
from docworker.config import Settings
from docworker.ratelimit import RateLimiter, Verdict, parse_rate

log = structlog.get_logger(__name__)

#: A storage that stays down is reported at most this often (seconds).
_WARN_EVERY = 10.0


def identity_of(principal: Principal) -> str:
    """What a caller's requests are counted under: its key, else its address."""
    if principal.key_id is not None:
        return f"key:{principal.key_id}"
    return f"client:{principal.client or 'unknown'}"


class RateLimit:
    """ASGI middleware: each caller's requests counted against its rate; over it, 429."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.public = public_paths(settings)
        self.limiter = RateLimiter(settings.rate) if settings.rate_enabled else None
        self.fail_open = settings.rate.fail_open
        self._warned_at = -_WARN_EVERY

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limiter = self.limiter
        if scope["type"] == "lifespan" and limiter is not None:
            await self.app(scope, receive, self._closing(limiter, send))
            return
        principal = scope.get("state", {}).get(STATE_KEY) if scope["type"] == "http" else None
        if (
            limiter is None
            or principal is None
            or scope["method"] == "OPTIONS"
            or is_public(scope["path"], self.public)
        ):
            await self.app(scope, receive, send)
            return
        items = self._rate_of(principal, limiter)
        try:
            verdict = await limiter.hit(identity_of(principal), items)
        except errors.DependencyDown as exc:
            if not self.fail_open:
                await early_refusal(scope, receive, exc)(scope, receive, send)
                return
            self._warn(exc)
            await self.app(scope, receive, send)
            return
        if not verdict.allowed:
            await self._refuse(scope, receive, send, principal, verdict)
            return
        headers = verdict.headers()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    @staticmethod
    def _closing(limiter: RateLimiter, send: Send) -> Send:
        """``send`` of the lifespan, closing the storage's connections once the app stopped."""

        async def closing_send(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                await limiter.aclose()
            await send(message)

        return closing_send

    @staticmethod
    def _rate_of(principal: Principal, limiter: RateLimiter) -> tuple[RateLimitItem, ...]:
        own = principal.limits.get("rate")
        if not own:
            return limiter.default
        try:
            return parse_rate(own)
        except ValueError as exc:  # a key stored before rates were checked
            log.warning(
                "the key's rate is not one: the default applies",
                key_id=principal.key_id,
                reason=str(exc),
            )
            return limiter.default

    def _warn(self, exc: errors.DependencyDown) -> None:
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY:
            self._warned_at = now
            log.warning("requests go through uncounted", reason=exc.detail)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, principal: Principal, verdict: Verdict
    ) -> None:
        who = "this API key" if principal.key_id is not None else "this client address"
        refusal = errors.RateLimited(
            f"{who} may make {verdict.limit} requests in {verdict.window} s; "
            f"retry in {verdict.retry_after} s",
            retry_after=verdict.retry_after,
            limit=verdict.limit,
            window=verdict.window,
        )
        response = early_refusal(scope, receive, refusal)
        for name, value in verdict.headers():
            response.headers[name.decode()] = value.decode()
        await response(scope, receive, send)


#: The headers of a counted answer, as the OpenAPI document describes them.
RATE_HEADERS: dict[str, dict[str, Any]] = {
    "RateLimit-Limit": {
        "description": "Requests the rate closest to being spent allows in its window.",
        "schema": {"type": "integer"},
    },
    "RateLimit-Remaining": {
        "description": "Requests left in that window.",
        "schema": {"type": "integer"},
    },
    "RateLimit-Reset": {
        "description": "Seconds until that window lets a request through again.",
        "schema": {"type": "integer"},
    },
    "RateLimit-Policy": {
        "description": "Every rate of the caller: '<requests>;w=<seconds>', comma-separated.",
        "schema": {"type": "string"},
    },
}
_RETRY_AFTER = {
    "description": "Seconds to wait before the next request can pass.",
    "schema": {"type": "integer"},
}


def document_rate_limits(app: FastAPI, settings: Settings) -> None:
    """With rate limits on, the OpenAPI document says that every counted route answers
    429 when its caller is over the rate, and which headers every answer carries. (The
    routes that submit jobs list their own 429s: a full engine queue, a tenant's cap.)"""
    if not settings.rate_enabled:
        return
    build = app.openapi
    public = public_paths(settings)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        for path, operations in schema.get("paths", {}).items():
            if path in public:
                continue
            v1 = is_v1_path(path)
            for operation in operations.values():
                _document(operation.setdefault("responses", {}), v1)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document(responses: dict[str, Any], v1: bool) -> None:
    if v1:
        # Over the rate, v1's framework error; a refused job, the route's own error.
        responses["429"] = _v1_refusal()
    else:
        description = "Too many requests: the caller is over its rate"
        responses.setdefault("429", refusal_response(description, v1=False))
    responses["429"].setdefault("headers", {})["Retry-After"] = _RETRY_AFTER
    for response in responses.values():
        if "$ref" not in response:
            response.setdefault("headers", {}).update(RATE_HEADERS)


def _v1_refusal() -> dict[str, Any]:
    schemas = [
        {"$ref": "#/components/schemas/V1FrameworkError"},
        {"$ref": "#/components/schemas/V1ErrorBody"},
    ]
    return {
        "description": "Too many requests, with `Retry-After`: the caller is over its rate "
        "(v1's framework error), or a job the request submits is refused while too many "
        "jobs wait for the engine it needs or its tenant has as many jobs queued or running "
        "as it may (the route's own error)",
        "content": {"application/json": {"schema": {"anyOf": schemas}}},
    }
