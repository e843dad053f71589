"""v1's handler errors (E1): ``{"error": ..., "details": ...}`` with v1's exact words.

Every v1 route names its own errors (``File upload error``, ``Job not found``,
``Text extraction failed``, ...). A route raises :class:`V1Error` with the
status and the ``error`` string its v1 contract gives; the handler installed by
:func:`install_v1_errors` answers it as v1 did. ``details`` is informational
text (v1 clients never parse it) and is left out where v1 left it out. The
framework errors (unknown route, 413, crashes) keep their own union body, made in
:mod:`docworker.api.errors`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from docworker.api.errors import status_for
from docworker.errors import (
    DocworkerError,
    Forbidden,
    RateLimited,
    ServiceError,
    Unauthorized,
)


class V1Error(Exception):
    """A v1 route's own error answer: ``status`` and the body ``{"error", "details"?, ...}``."""

    def __init__(
        self,
        status: int,
        error: str,
        details: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.details = details
        self.headers = headers
        self.extra = extra

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.error}
        if self.details is not None:
            body["details"] = self.details
        body.update(self.extra)
        return body

    @classmethod
    def wrapping(cls, status: int, error: str, exc: DocworkerError) -> V1Error:
        """The v1 error ``error`` whose details are the v2 error's own message.

        Refusals of the caller (no key, a scope it lacks, its limits) keep their own
        status; a refusal the client is to retry later (a full queue, a full disk, a
        rate limit, a service draining) keeps its status (429, 503) and ``Retry-After``
        too.
        """
        if "retry_after" in exc.fields and isinstance(exc, RateLimited | ServiceError):
            retry = {"Retry-After": str(exc.fields["retry_after"])}
            return cls(status_for(exc), error, exc.detail, headers=retry)
        for refusal, refused_status in _CALLER_REFUSALS.items():
            if isinstance(exc, refusal):
                return cls(refused_status, error, exc.detail)
        return cls(status, error, exc.detail)


_CALLER_REFUSALS: dict[type[DocworkerError], int] = {
    Unauthorized: 401,
    Forbidden: 403,
    RateLimited: 429,
}


#: The status of a v1 route whose job the content guard refused (v1 had no guard: 422 as
#: v2 answers it, in v1's error body).
REFUSED = 422


def refused(failure: str) -> tuple[int, str]:
    """A route's case for a job the content guard refused: :data:`REFUSED` with the
    route's own failure text; ``details`` name the refused findings."""
    return (REFUSED, failure)


#: The status of a v1 route sent an ``Idempotency-Key`` that was used for another request
#: (v1 had no such header: 409 as v2 answers it, in v1's error body).
REUSED_KEY = 409


def reused_key(failure: str) -> tuple[int, str]:
    """A route's case for an ``Idempotency-Key`` used before for another request (other
    files or parameters): :data:`REUSED_KEY` with the route's own failure text."""
    return (REUSED_KEY, failure)


class ResultRefused(Exception):
    """A finished v2 result that v1 would have failed (a type it could not read, a page
    range past the end): the v1 route answers its failure, the v1 job shows ``failed``."""


async def _on_v1_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, V1Error)
    # The route may have parsed a form it will not use now: its spooled files go.
    await request.close()
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


def install_v1_errors(app: FastAPI) -> None:
    app.add_exception_handler(V1Error, _on_v1_error)


class V1ErrorBody(BaseModel):
    """v1's handler error: a fixed ``error`` text per failure, and free ``details``."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(examples=["File upload error"])
    details: str | None = Field(
        None, description="What went wrong, for people; absent for some errors."
    )


class V1FrameworkError(BaseModel):
    """v1's framework error (unknown route, wrong method, 413, crash): both v1 shapes at once."""

    error: str = Field(examples=["Cannot GET /api/v1/nothing"])
    timestamp: str = Field(examples=["2025-08-26T15:01:51.123456Z"])
    path: str = Field(examples=["/api/v1/nothing"])
    code: int = Field(examples=[404])
    success: bool = Field(False)


def v1_responses(*cases: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for a v1 route's errors: each status with the ``error``
    strings it may carry, plus v1's framework errors."""
    by_status: dict[int, list[str]] = {}
    for status, error in cases:
        by_status.setdefault(status, []).append(error)
    responses: dict[int | str, dict[str, Any]] = {
        status: {
            "model": V1ErrorBody,
            "description": " · ".join(f"`{e}`" for e in errors),
        }
        for status, errors in by_status.items()
    }
    responses.setdefault(
        413, {"model": V1FrameworkError, "description": "`Request Entity Too Large`"}
    )
    responses.setdefault(
        429,
        {
            "model": V1ErrorBody,
            "description": "A request that submits a job, refused while its family's "
            "queue or the engine it needs holds as many jobs as it takes: the route's own "
            "error, with `Retry-After`",
        },
    )
    responses.setdefault(
        503,
        {
            "model": V1FrameworkError | V1ErrorBody,
            "description": "A request with a body, refused while the disk is under its "
            "free-space floor (`server.min_free_disk_mb`) or the service drains (it is "
            "shutting down), with `Retry-After`: v1's framework error when refused before "
            "its body is read, else the route's own error",
        },
    )
    return responses
