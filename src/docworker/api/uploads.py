"""Uploaded files into the blob store, the guards in front of them, and the sweep
behind them.

The multipart parser spools a file part to a temporary file (a megabyte in
memory at most); from there it is streamed in chunks to the blob store, its
sha256 computed on the way. :class:`BodySizeLimit` refuses a request as soon as
its body passes the size configured for its route, before the spool fills the
disk; :class:`IntakeGuard` refuses a request with a body before reading it while
the service drains or the disk is under its free-space floor.
:class:`UnclaimedInputs` deletes what a request stored and no job names once the
request is answered: a refusal after the upload was stored leaves nothing behind.
"""

from __future__ import annotations

import functools
import threading
import typing
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from types import UnionType
from urllib.parse import parse_qs

import anyio
import anyio.to_thread
import structlog
from fastapi import Depends
from fastapi.params import File
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from docworker.api.auth import early_refusal
from docworker.api.deps import Services
from docworker.api.errors import too_large_response
from docworker.api.routing import route_queues
from docworker.config import ServerSettings
from docworker.errors import (
    DocworkerError,
    InsufficientStorage,
    InvalidParameter,
    QueueFull,
    ServiceDraining,
)
from docworker.jobs.admission import DiskFloor, Drain
from docworker.jobs.queue import MAX_PRIORITY, MIN_PRIORITY, JobInput
from docworker.jobs.store import JobStore
from docworker.operations.base import Family
from docworker.storage import BlobStore, StoredBlob

log = structlog.get_logger(__name__)


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

    def put() -> StoredBlob:
        upload.file.seek(0)
        return services.blobs.put_stream(upload.file, max_bytes=limit)

    blob = await anyio.to_thread.run_sync(store_input, put)
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


async def refuse_repeated_files(request: Request) -> None:
    """Refuse (422, naming the field) a request whose form holds several parts for a
    field its route takes one file from: the route would read one and drop the rest.
    A route's dependency (:data:`ONE_FILE_PER_FIELD`); the form is the one the route's
    body was read into."""
    route = request.scope.get("route")
    fields = single_file_fields(getattr(route, "endpoint", None))
    if not fields:
        return
    form = await request.form()
    for name in fields:
        count = len(form.getlist(name))
        if count > 1:
            raise InvalidParameter(
                name,
                f"takes one file, and {count} parts named '{name}' were sent: send one "
                "file per request, or send them all to POST /api/v2/batches (a job each)",
            )


#: The dependency of every router whose routes take files: see :func:`refuse_repeated_files`.
ONE_FILE_PER_FIELD = Depends(refuse_repeated_files)


@functools.cache
def single_file_fields(endpoint: Callable[..., object] | None) -> tuple[str, ...]:
    """The form fields ``endpoint`` takes one file from (its parameters typed
    ``UploadFile``, not a list of them), by the names clients send."""
    if endpoint is None:
        return ()
    fields: list[str] = []
    for name, hint in typing.get_type_hints(endpoint, include_extras=True).items():
        if typing.get_origin(hint) is not typing.Annotated:
            continue
        kind, *extras = typing.get_args(hint)
        marks = [extra for extra in extras if isinstance(extra, File)]
        if marks and UploadFile in _types_of(kind):
            fields.append(marks[0].alias or name)
    return tuple(fields)


def _types_of(hint: object) -> tuple[object, ...]:
    """``hint`` itself, or the members of a union (``UploadFile | None``); a list's
    element is not taken (a list of files is several by design)."""
    members = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, UnionType) else ()
    return tuple(_base(member) for member in members) or (_base(hint),)


def _base(hint: object) -> object:
    """Starlette's ``UploadFile`` for FastAPI's (its subclass), else ``hint``."""
    return UploadFile if isinstance(hint, type) and issubclass(hint, UploadFile) else hint


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


class IntakeGuard:
    """ASGI middleware: refusals before the body is read, for a request with a body (an
    upload, a job to queue). Requests without one (reads, cancels, deletes, which free
    space) pass.

    * 503 with ``Retry-After`` while the service drains (it takes no new work) or the
      disk is under ``server.min_free_disk_mb`` free;
    * 429 ``queue-full`` with ``Retry-After`` for a route whose jobs all wait in one
      queue (it declares it: :func:`~docworker.api.routing.feeds`) when the counts the
      admission keeps show that queue full for the request's priority band
      (:meth:`Backlog.refusal <docworker.jobs.backlog.Backlog.refusal>`: no look at
      the job store). The band is the one of the ``priority`` query parameter, or
      normal without one: a priority given only in the body is known once the body is
      read, and counts then. A request with an ``Idempotency-Key`` passes (the key may
      name a job made already, which takes no place). Under overload this is where most
      refusals are answered: reading a body it then refuses cost the API process a
      hundred times more than the refusal."""

    def __init__(self, app: ASGIApp, disk: DiskFloor, drain: Drain) -> None:
        self.app = app
        self.disk = disk
        self.drain = drain
        self._queues: dict[tuple[str, str], Family] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _has_body(scope):
            try:
                self.drain.check()
                if not self.disk.check_read():
                    await anyio.to_thread.run_sync(self.disk.check)
                self._check_queue(scope)
            except (ServiceDraining, InsufficientStorage, QueueFull) as exc:
                response = early_refusal(scope, receive, exc)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _check_queue(self, scope: Scope) -> None:
        """Raise :class:`QueueFull` when the request's queue is known full (see above)."""
        if self._queues is None:
            self._queues = route_queues(scope["app"])
        family = self._queues.get((scope["method"], scope["path"]))
        if family is None or _header(scope, b"idempotency-key") is not None:
            return
        services = getattr(scope["app"].state, "services", None)
        admission = services.queue.admission if services is not None else None
        if admission is None:
            return
        priority = _query_priority(scope)
        if priority is None:
            return
        refusal = admission.refusal(family, priority)
        if refusal is not None:
            raise refusal


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return bytes(value)
    return None


def _query_priority(scope: Scope) -> int | None:
    """The ``priority`` query parameter (0 without one); None when it is not a valid
    priority (the route refuses it then)."""
    query = scope.get("query_string", b"")
    if b"priority" not in query:
        return 0
    values = parse_qs(query.decode("latin-1")).get("priority")
    if not values:
        return 0
    try:
        priority = int(values[-1])
    except ValueError:
        return None
    return priority if MIN_PRIORITY <= priority <= MAX_PRIORITY else None


#: How far back jobs are looked at when an input a request made is swept: jobs another
#: API process created with a clock this far behind ours are still seen.
CLOCK_MARGIN = timedelta(minutes=5)


@dataclass
class _Held:
    """An input that requests of this process being answered have stored."""

    requests: int
    #: One of them made it (it was not in the store before).
    made: bool
    #: When the first of them began.
    since: datetime


@dataclass
class Intake:
    """The inputs one request has stored, and when it began."""

    sweep: UnclaimedInputs
    blobs: BlobStore
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    stored: list[str] = field(default_factory=list)


#: The request being answered, for :func:`store_input` (a worker thread gets a copy of
#: the context, and with it the same intake).
_INTAKE: ContextVar[Intake | None] = ContextVar("docworker_intake", default=None)


def store_input(put: Callable[[], StoredBlob]) -> StoredBlob:
    """The blob ``put`` stores (in a worker thread), held for the request being answered
    until it is, and then swept unless a job names it (:class:`UnclaimedInputs`).
    ``put`` must be repeatable: it runs again when the same content was swept by another
    request between being found in the store and being held."""
    intake = _INTAKE.get()
    while True:
        blob = put()
        if intake is None or intake.sweep.hold(intake, blob):
            return blob


class UnclaimedInputs:
    """ASGI middleware: once a request is answered, the inputs it made that no job names
    are deleted.

    Inputs are content-addressed, so a job may already name the content a refused
    request uploaded, or another request may be storing it at the same time. So an input
    is deleted only when a request of this process made it (it was not in the store),
    no request of this process still holds it, and no job created since the first of
    those requests began (less :data:`CLOCK_MARGIN`) names it: a look along the jobs'
    creation-time index, not through every job. Two API processes given the same new
    content at the same moment, one of them refusing it, may still race: the other's
    job may then find its input gone, and fail saying so.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._held: dict[str, _Held] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services = getattr(getattr(scope.get("app"), "state", None), "services", None)
        if scope["type"] != "http" or not isinstance(services, Services):
            await self.app(scope, receive, send)
            return
        intake = Intake(self, services.blobs)
        token = _INTAKE.set(intake)
        try:
            await self.app(scope, receive, send)
        finally:
            _INTAKE.reset(token)
            if intake.stored:
                with anyio.CancelScope(shield=True):
                    try:
                        await anyio.to_thread.run_sync(self.release, intake, services.store)
                    except DocworkerError as exc:  # the answer is sent: only the log can say
                        log.warning("unclaimed inputs not swept", error=exc.detail)

    def hold(self, intake: Intake, blob: StoredBlob) -> bool:
        """Hold ``blob`` for ``intake``'s request; False when it is gone (swept since it
        was found in the store), to be stored again."""
        with self._lock:
            if not intake.blobs.exists(blob.uri):
                return False
            held = self._held.setdefault(blob.uri, _Held(0, False, intake.started))
            held.requests += 1
            held.made = held.made or blob.created
            held.since = min(held.since, intake.started)
            intake.stored.append(blob.uri)
            return True

    def release(self, intake: Intake, store: JobStore) -> None:
        """Let go of what ``intake``'s request held; delete what it leaves unclaimed."""
        with self._lock:
            ended: dict[str, datetime] = {}
            for uri in intake.stored:
                held = self._held[uri]
                held.requests -= 1
                if held.requests == 0:
                    del self._held[uri]
                    if held.made:
                        ended[uri] = held.since
            if not ended:
                return
            since = min(ended.values()) - CLOCK_MARGIN
            named = store.inputs_in_use(ended, created_since=since)
            for uri in ended.keys() - named:
                intake.blobs.delete(uri)
                log.info("unclaimed input deleted", uri=uri)
