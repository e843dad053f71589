"""Errors become HTTP here, and only here: one table from error code to status.

Domain code raises :mod:`docworker.errors` exceptions (or stores their dict
form with a failed job); this module answers them as RFC 9457
``application/problem+json``. Anything unexpected is a plain 500 whose detail
stays in the log. Paths outside ``/api/v2`` keep the v1 error body instead.
"""

from __future__ import annotations

import html
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from docworker import errors
from docworker.api.v1.encoding import v1_time
from docworker.url_policy import UrlUnreadable

log = structlog.get_logger(__name__)

PROBLEM_TYPE = "urn:docworker:problem:"
#: Scope keys where v1's router rules keep the request line as the client sent it.
ORIGINAL_PATH = "docworker.original_path"
ORIGINAL_METHOD = "docworker.original_method"
PROBLEM_MEDIA_TYPE = "application/problem+json"

#: Error class → HTTP status. Looked up along the class's ancestry, so a new
#: subclass answers like its parent until it is given a row of its own.
STATUS: dict[type[errors.DocworkerError], int] = {
    errors.DocworkerError: 500,
    errors.InputError: 400,
    errors.UnsupportedFormat: 415,
    errors.CorruptDocument: 422,
    errors.PasswordRequired: 422,
    errors.LimitExceeded: 422,
    errors.PayloadTooLarge: 413,
    errors.HostileInput: 422,
    errors.ContentRefused: 422,
    errors.ProcessingFailed: 422,
    errors.InvalidParameter: 422,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.RateLimited: 429,
    errors.ServiceError: 503,
    errors.EngineFailed: 503,
    errors.EngineTimeout: 503,
    errors.JobTimeout: 503,
    errors.MemoryLimitExceeded: 422,
    errors.QueueFull: 429,
    errors.InsufficientStorage: 503,
    errors.ServiceDraining: 503,
    errors.DependencyDown: 503,
    errors.EngineUnavailable: 503,
    UrlUnreadable: 422,
}


def status_for(exc: errors.DocworkerError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def problem(exc: errors.DocworkerError, instance: str | None = None) -> JSONResponse:
    """The problem+json response for ``exc``."""
    status = status_for(exc)
    body: dict[str, Any] = {
        "type": f"{PROBLEM_TYPE}{exc.code}",
        "title": exc.title,
        "status": status,
        "detail": exc.detail,
        "code": exc.code,
    }
    # The error's own fields extend the problem; they never replace its RFC 9457 members.
    body.update((name, value) for name, value in exc.fields.items() if name not in body)
    if instance:
        body["instance"] = instance
    headers = {}
    if "retry_after" in exc.fields:  # a full queue or disk, a drain: the client may come back
        headers["Retry-After"] = str(exc.fields["retry_after"])
    if isinstance(exc, errors.Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="docworker"'
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def v1_framework_error(request: Request, status: int, message: str) -> JSONResponse:
    """The error body v1 clients know: the union of both v1 framework error shapes."""
    body = {
        "error": message,
        "timestamp": v1_time(),
        # The path as the client sent it, before v1's router rules rewrote it.
        "path": request.scope.get(ORIGINAL_PATH, request.url.path),
        "code": status,
        "success": False,
    }
    return JSONResponse(body, status_code=status)


def too_large_response(request: Request, size: int, limit: int) -> JSONResponse:
    """413: problem+json under /api/v2, the v1 error body elsewhere."""
    if _is_v2(request):
        return problem(errors.PayloadTooLarge("request body size", size, limit))
    return v1_framework_error(request, 413, "Request Entity Too Large")


def _is_v2(request: Request) -> bool:
    return request.url.path.lower().startswith("/api/v2")


async def _on_docworker_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.DocworkerError)
    if status_for(exc) >= 500:
        log.warning("request failed", code=exc.code, detail=exc.detail)
    return problem(exc, request.url.path)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": ("request",), "msg": "invalid"}
    loc = [str(p) for p in first.get("loc", ()) if p not in {"body", "query", "path", "header"}]
    if not _is_v2(request):
        # A malformed request is a framework error for v1 clients.
        return v1_framework_error(request, 400, f"{'.'.join(loc) or 'request'}: {first['msg']}")
    return problem(errors.InvalidParameter(".".join(loc) or "request", str(first["msg"])))


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 413:
        return too_large_response(request, getattr(exc, "size", 0), getattr(exc, "limit", 0))
    if exc.status_code == 404 and not _is_v2(request):
        return v1_framework_error(request, 404, _cannot(request))
    if exc.status_code == 405 and not _is_v2(request):
        # v1 (Fiber) has no 405: a wrong method is an unknown route.
        return v1_framework_error(request, 404, _cannot(request))
    if not _is_v2(request):
        # Any other framework refusal (a malformed body, ...) in v1's framework shape.
        return v1_framework_error(request, exc.status_code, str(exc.detail))
    if exc.status_code == 400:
        # The framework refuses only a body it cannot parse (malformed multipart or JSON).
        return problem(errors.InvalidParameter("body", str(exc.detail)), request.url.path)
    body = {
        "type": "about:blank",
        "title": str(exc.detail),
        "status": exc.status_code,
        "detail": str(exc.detail),
    }
    return JSONResponse(
        body, status_code=exc.status_code, media_type=PROBLEM_MEDIA_TYPE, headers=exc.headers
    )


def _cannot(request: Request) -> str:
    """v1's text for an unknown route: ``Cannot GET /path``, the path HTML-escaped."""
    path = request.scope.get(ORIGINAL_PATH, request.url.path)
    method = request.scope.get(ORIGINAL_METHOD, request.method)
    return f"Cannot {method} {html.escape(path, quote=False)}"


#: The status logged for a request whose client left before it was answered (nginx's
#: "client closed request"); nobody receives it.
CLIENT_GONE = 499


async def _on_client_gone(request: Request, exc: Exception) -> Response:
    """The client left while its body was read or its job waited for: nobody is there
    to answer, and nothing went wrong on this side (see :mod:`docworker.api.submitting`)."""
    log.info("client left before the answer", path=request.url.path)
    return Response(status_code=CLIENT_GONE)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", path=request.url.path, exc_info=exc)
    if not _is_v2(request):
        return v1_framework_error(request, 500, "Internal Server Error")
    body = {
        "type": f"{PROBLEM_TYPE}internal-error",
        "title": "Internal error",
        "status": 500,
        "detail": "the server failed to answer; the fault is logged",
    }
    return JSONResponse(body, status_code=500, media_type=PROBLEM_MEDIA_TYPE)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.DocworkerError, _on_docworker_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(ClientDisconnect, _on_client_gone)
    app.add_exception_handler(Exception, _on_unexpected)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the problem statuses a route may answer, as
    they are sent: ``application/problem+json``."""
    from docworker.api.openapi import model_ref
    from docworker.api.schemas import Problem

    return {
        status: {
            "description": "Problem (RFC 9457)",
            "content": {PROBLEM_MEDIA_TYPE: {"schema": model_ref(Problem)}},
        }
        for status in statuses
    }
