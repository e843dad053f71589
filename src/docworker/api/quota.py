"""Daily quotas at the door, and refused requests into the audit trail.

:class:`QuotaGate` refuses a request that is bound to be refused before its body
is read: one whose key has spent a daily quota already, or whose declared
``Content-Length`` cannot fit in what is left of its bytes quota. It looks ahead
only; the count itself is exact and happens when the job is queued
(:meth:`docworker.jobs.queue.JobQueue.submit`), in the job's transaction.

:class:`AuditRefusals` records the requests refused for an API key that is not
valid (401) or a scope the key lacks (403) in the :class:`~docworker.jobs.audit.RefusalLog`,
which writes them in batches: a normal request costs no audit write.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from docworker import errors
from docworker.api.auth import (
    REFUSED_KEY,
    STATE_KEY,
    client_address,
    early_refusal,
    refusal_response,
)
from docworker.api.errors import ORIGINAL_PATH
from docworker.api.v1.http import is_v1_path
from docworker.auth import Principal
from docworker.config import Settings
from docworker.jobs.audit import AuditKind
from docworker.jobs.usage import Quotas

#: Bytes of a multipart body that are not the file (boundaries, part headers, small
#: fields): a body is refused early only when it would not fit even without them.
MULTIPART_ALLOWANCE = 64 * 1024
#: Methods that may submit work.
_SUBMITTING = frozenset({"POST", "PUT", "PATCH"})
#: Routes under these paths submit no job: managing keys, reading audit and usage.
_EXEMPT = ("/api/v2/keys", "/api/v2/audit", "/api/v2/usage")


def _services(scope: Scope) -> Any:
    return scope["app"].state.services


def _declared_length(scope: Scope) -> int:
    for name, value in scope.get("headers") or []:
        if name == b"content-length" and value.isdigit():
            return int(value)
    return 0


class QuotaGate:
    """ASGI middleware: 429 before the upload for a key whose daily quota is spent."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.defaults = settings.quota

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = self._caller(scope)
        if principal is None or principal.key_id is None:
            await self.app(scope, receive, send)
            return
        quotas = Quotas.of(principal.limits, self.defaults)
        if not quotas.any:
            await self.app(scope, receive, send)
            return
        incoming = max(0, _declared_length(scope) - MULTIPART_ALLOWANCE)
        services = _services(scope)
        key_id = principal.key_id
        try:
            await anyio.to_thread.run_sync(
                lambda: services.counters.check(key_id, quotas, incoming)
            )
        except (errors.QuotaExceeded, errors.PayloadTooLarge) as exc:
            response = early_refusal(scope, receive, exc)
            services.refusals.quota_exceeded(
                principal,
                exc,
                response.status_code,
                method=scope["method"],
                path=scope["path"],
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _caller(scope: Scope) -> Principal | None:
        if scope["type"] != "http" or scope["method"] not in _SUBMITTING:
            return None
        if scope["path"].startswith(_EXEMPT):
            return None
        principal = (scope.get("state") or {}).get(STATE_KEY)
        return principal if isinstance(principal, Principal) else None


class AuditRefusals:
    """ASGI middleware: requests refused with 401 for an invalid key, or with 403, are
    recorded in the refusal log (written in batches, off the request's path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def watching_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in (401, 403):
                self._record(scope, message["status"])
            await send(message)

        await self.app(scope, receive, watching_send)

    @staticmethod
    def _record(scope: Scope, status: int) -> None:
        state = scope.get("state") or {}
        services = getattr(scope["app"].state, "services", None)
        if services is None:
            return
        path = scope.get(ORIGINAL_PATH, scope["path"])
        if status == 401:
            if REFUSED_KEY not in state:  # no key was sent: not worth a record
                return
            services.refusals.add(
                AuditKind.INVALID_KEY,
                key_id=state[REFUSED_KEY] or None,
                tenant=None,
                client=client_address(scope),
                status=status,
                method=scope["method"],
                path=path,
            )
            return
        principal = state.get(STATE_KEY)
        if not isinstance(principal, Principal):
            return
        services.refusals.add(
            AuditKind.FORBIDDEN,
            key_id=principal.key_id,
            tenant=principal.tenant,
            client=principal.client,
            status=status,
            method=scope["method"],
            path=path,
        )


def document_quotas(app: FastAPI, settings: Settings) -> None:
    """With keys on, the OpenAPI document says that every route taking a body may answer
    429 when a daily quota of the key is spent, and 413 for an input larger than the
    whole bytes quota."""
    if not settings.auth_enabled:
        return
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        for path, operations in schema.get("paths", {}).items():
            if path.startswith(_EXEMPT):
                continue
            v1 = is_v1_path(path)
            for method, operation in operations.items():
                if method.upper() not in _SUBMITTING:
                    continue
                responses = operation.setdefault("responses", {})
                responses.setdefault("429", refusal_response(_SPENT, v1))
                responses.setdefault("413", refusal_response(_LARGER, v1))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


_SPENT = "A daily quota of the API key is spent (Retry-After: the next UTC midnight)"
_LARGER = "The request body is larger than allowed, or than the key's whole daily bytes quota"
