"""Uploaded files into the blob store, and the guards in front of them.

The multipart parser spools a file part to a temporary file (a megabyte in
memory at most); from there it is streamed in chunks to the blob store, its
sha256 computed on the way. :class:`BodySizeLimit` refuses a request as soon as
its body passes the size configured for its route, before the spool fills the
disk; :class:`DiskFloorGuard` refuses a request with a body before reading it
while the disk is under its free-space floor.
"""

from __future__ import annotations

from pathlib import PurePosixPath

import anyio.to_thread
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from docworker.api.deps import Services
from docworker.api.errors import refusal_response, too_large_response
from docworker.config import ServerSettings
from docworker.errors import InsufficientStorage, InvalidParameter
from docworker.jobs.admission import DiskFloor
from docworker.jobs.queue import JobInput


def _client_name(upload: UploadFile) -> str | None:
    if not upload.filename:
        return None
    # Only the last component: a client's path says nothing we should keep.
    return PurePosixPath(upload.filename.replace("\\", "/")).name[:255] or None


async def store_upload(services: Services, upload: UploadFile | None) -> JobInput:
    """Stream an uploaded file part to the blob store."""
    if upload is None:
        raise InvalidParameter(
            "file", "a multipart part named 'file' with the document is required"
        )
    # The route's own limit was held by BodySizeLimit; this bounds any upload.
    limit = services.settings.server.largest_upload
    blob = await anyio.to_thread.run_sync(
        lambda: services.blobs.put_stream(upload.file, max_bytes=limit)
    )
    await upload.close()
    return JobInput(blob=blob, name=_client_name(upload))


async def store_uploads(
    services: Services, uploads: list[UploadFile], *, field: str = "file"
) -> list[JobInput]:
    """Stream several uploaded file parts to the blob store, in order: the first is the
    job's input, the others its further inputs (``queue.submit(..., others=...)``)."""
    if not uploads:
        raise InvalidParameter(field, f"at least one multipart part named '{field}' is required")
    return [await store_upload(services, upload) for upload in uploads]


class RequestTooLarge(StarletteHTTPException):
    """Raised while the body is read; an HTTP exception so that body parsing passes it on."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(413, "Request Entity Too Large")
        self.size = size
        self.limit = limit


class BodySizeLimit:
    """ASGI middleware: 413 once a request body passes its route's limit
    (``server.upload_limits``, else ``server.max_upload_bytes``)."""

    def __init__(self, app: ASGIApp, server: ServerSettings) -> None:
        self.app = app
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.server.upload_limit(scope["path"])
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, int(declared), limit)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise RequestTooLarge(received, limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except RequestTooLarge:
            if not started:
                await self._refuse(scope, receive, send, received, limit)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, size: int, limit: int
    ) -> None:
        response = too_large_response(Request(scope, receive), size, limit)
        await response(scope, receive, send)


def _has_body(scope: Scope) -> bool:
    headers = dict(scope.get("headers") or [])
    length = headers.get(b"content-length", b"0")
    return b"transfer-encoding" in headers or (length.isdigit() and int(length) > 0)


class DiskFloorGuard:
    """ASGI middleware: 503 with ``Retry-After``, before the body is read, for a request
    with a body (an upload, a job to queue) while the disk is under
    ``server.min_free_disk_mb`` free. Requests without one (reads, cancels, deletes,
    which free space) pass."""

    def __init__(self, app: ASGIApp, disk: DiskFloor) -> None:
        self.app = app
        self.disk = disk

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _has_body(scope):
            try:
                await anyio.to_thread.run_sync(self.disk.check)
            except InsufficientStorage as exc:
                response = refusal_response(Request(scope, receive), exc)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
