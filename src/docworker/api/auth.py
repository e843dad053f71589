"""Authentication of every request, before its body is read.

:class:`Authenticate` (ASGI middleware) finds the caller's key in
``Authorization: Bearer``, ``X-API-Key`` or, for clients that cannot set a header,
the ``api_key`` query parameter; checks it (a recently checked key costs no
database read); and puts the :class:`~docworker.auth.Principal` in the request's
state, where routes take it with :data:`CallerDep`. A request without a valid key
is answered 401 before anything is uploaded. Health probes, the API documents and
CORS preflights need no key. With keys off, every caller is the open principal.
"""

from __future__ import annotations

import hashlib
from contextvars import ContextVar
from typing import Annotated, Any
from urllib.parse import parse_qsl

import anyio.to_thread
import structlog
from fastapi import Depends, FastAPI, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from docworker import errors
from docworker.api.errors import (
    ORIGINAL_PATH,
    PROBLEM_MEDIA_TYPE,
    problem,
    status_for,
    v1_framework_error,
)
from docworker.api.v1.http import is_v1_path
from docworker.auth import KeyCache, Principal, split_key
from docworker.config import Settings
from docworker.jobs.keys import KeyStore

#: Paths any caller may use: probes and the API's own documents.
PUBLIC_PATHS = frozenset(
    {
        "/health",
        "/health/liveness",
        "/health/readiness",
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
    }
)
PUBLIC_PREFIXES = ("/docs/assets/",)


def public_paths(settings: Settings) -> frozenset[str]:
    """The paths any caller may use with these settings (``/metrics`` when it is public)."""
    return PUBLIC_PATHS | ({"/metrics"} if settings.auth.public_metrics else set())


def is_public(path: str, public: frozenset[str]) -> bool:
    return path in public or path.startswith(PUBLIC_PREFIXES)


STATE_KEY = "principal"
#: State entry of a request refused for a key that is not valid: the key id it claims
#: ('' when it is not even shaped as a key), for the audit trail.
REFUSED_KEY = "refused_key"
#: The caller of the request being answered, for the helpers routes share.
_CALLER: ContextVar[Principal | None] = ContextVar("docworker_caller", default=None)


class Authenticator:
    """Turns the key a client sent into its principal."""

    def __init__(self, keys: KeyStore, ttl: float) -> None:
        self.keys = keys
        self.cache = KeyCache(ttl)

    def cached(self, token: str) -> tuple[bool, Principal | None]:
        return self.cache.get(_digest(token))

    def check(self, token: str) -> Principal | None:
        """The key's principal, or None; reads the database (call it off the event loop)."""
        record = self.keys.check(token)
        principal = record.principal() if record else None
        self.cache.put(_digest(token), principal)
        return principal

    def forget(self, key_id: str) -> None:
        self.cache.forget(key_id)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def client_address(scope: Scope) -> str | None:
    """The client's address as the server saw it."""
    client = scope.get("client")
    return str(client[0])[:64] if client else None


class Authenticate:
    """ASGI middleware: the caller of every request, or 401."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.enabled = settings.auth_enabled
        self.query_parameter = settings.auth.query_parameter
        self.public = public_paths(settings)
        self.authenticator: Authenticator | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = client_address(scope)
        state = scope.setdefault("state", {})
        if not self.enabled:
            state[STATE_KEY] = Principal.open(client)
            _CALLER.set(state[STATE_KEY])
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if scope["method"] == "OPTIONS" or is_public(path, self.public):
            await self.app(scope, receive, send)
            return
        token = self._token(scope)
        principal = None
        if token is not None:
            principal = await self._check(scope, token)
        if principal is None:
            reason = "no API key was sent" if token is None else "the API key is not valid"
            if token is not None:
                claimed = split_key(token)
                state[REFUSED_KEY] = claimed[0] if claimed else ""
            await self._refuse(scope, receive, send, reason)
            return
        state[STATE_KEY] = Principal(
            tenant=principal.tenant,
            key_id=principal.key_id,
            scopes=principal.scopes,
            client=client,
            limits=principal.limits,
        )
        _CALLER.set(state[STATE_KEY])
        # Every line of the request names its caller (RequestContext unbinds them).
        structlog.contextvars.bind_contextvars(tenant=principal.tenant, key_id=principal.key_id)
        await self.app(scope, receive, send)

    async def _check(self, scope: Scope, token: str) -> Principal | None:
        authenticator = self.authenticator
        if authenticator is None:
            services = scope["app"].state.services
            authenticator = self.authenticator = services.authenticator
        found, principal = authenticator.cached(token)
        if found:
            return principal
        return await anyio.to_thread.run_sync(authenticator.check, token)

    def _token(self, scope: Scope) -> str | None:
        headers: list[tuple[bytes, bytes]] = scope.get("headers") or []
        for name, raw in headers:
            value = raw.decode("latin-1").strip()
            if name == b"authorization":
                scheme, _, credentials = value.partition(" ")
                if scheme.lower() == "bearer" and credentials.strip():
                    return credentials.strip()
            elif name == b"x-api-key" and value:
                return value
        query: bytes = scope.get("query_string") or b""
        if self.query_parameter and query:
            for parameter, given in parse_qsl(query.decode("latin-1")):
                if parameter == self.query_parameter and given:
                    return given
        return None

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, reason: str) -> None:
        detail = f"{reason}: send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
        if self.query_parameter:
            detail += f", or as the '{self.query_parameter}' query parameter"
        await early_refusal(scope, receive, errors.Unauthorized(detail))(scope, receive, send)


def early_refusal(scope: Scope, receive: Receive, exc: errors.DocworkerError) -> Response:
    """The answer to a request that a middleware refuses before reading it (no key, over
    its rate, a quota spent, a full disk): problem+json, or v1's framework error on a v1
    path, with ``Retry-After`` and ``WWW-Authenticate`` where they apply."""
    if not is_v1_path(scope.get(ORIGINAL_PATH, scope["path"])):
        return problem(exc, scope["path"])
    response = v1_framework_error(Request(scope, receive), status_for(exc), exc.detail)
    if "retry_after" in exc.fields:
        response.headers["Retry-After"] = str(exc.fields["retry_after"])
    if isinstance(exc, errors.Unauthorized):
        response.headers["WWW-Authenticate"] = 'Bearer realm="docworker"'
    return response


async def get_caller(request: Request) -> Principal:
    """The caller of the request (set by :class:`Authenticate`); a coroutine, so that
    FastAPI calls it on the event loop, not in a worker thread."""
    principal = request.scope.get("state", {}).get(STATE_KEY)
    if principal is None:  # a public path: no key was asked for
        client = client_address(request.scope)
        return Principal(tenant=None, key_id=None, scopes=frozenset(), client=client)
    assert isinstance(principal, Principal)
    return principal


CallerDep = Annotated[Principal, Depends(get_caller)]


def current_caller() -> Principal:
    """The caller of the request being answered; a request on a public path has none
    and may not reach anything that asks."""
    principal = _CALLER.get()
    if principal is None:
        raise errors.Unauthorized("this request carries no API key")
    return principal


SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "An API key as a bearer token."},
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def document_security(app: FastAPI, settings: Settings) -> None:
    """With keys on, the OpenAPI document says how to send one, and that every route but
    the public ones answers 401 without one and 403 without the scope it needs."""
    if not settings.auth_enabled:
        return
    build = app.openapi
    schemes = dict(SECURITY_SCHEMES)
    if settings.auth.query_parameter:
        schemes["apiKeyQuery"] = {
            "type": "apiKey",
            "in": "query",
            "name": settings.auth.query_parameter,
        }
    public = public_paths(settings)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {})["securitySchemes"] = schemes
        for path, operations in schema.get("paths", {}).items():
            if path in public:
                continue
            v1 = is_v1_path(path)
            for operation in operations.values():
                operation["security"] = [{name: []} for name in schemes]
                responses = operation.setdefault("responses", {})
                for status, text in (
                    ("401", "No API key, or not a valid one"),
                    ("403", _FORBIDDEN),
                ):
                    responses.setdefault(status, refusal_response(text, v1))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


_FORBIDDEN = "The API key lacks the scope this request needs"


def refusal_response(description: str, v1: bool) -> dict[str, Any]:
    """An OpenAPI response of a refusal: problem+json, or v1's framework error."""
    if v1:
        ref = {"$ref": "#/components/schemas/V1FrameworkError"}
        return {"description": description, "content": {"application/json": {"schema": ref}}}
    ref = {"$ref": "#/components/schemas/Problem"}
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {"schema": ref}}}
