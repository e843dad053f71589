"""The application factory: builds the services, the routes and the middleware."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
import structlog
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from docworker import __version__
from docworker.api.deps import Services
from docworker.api.docs import install_docs
from docworker.api.errors import install_error_handlers
from docworker.api.openapi import install_openapi
from docworker.api.routes import chunk, extract, health, jobs, ocr, operations
from docworker.api.routes import image as image_route
from docworker.api.routes import pdf as pdf_routes
from docworker.api.routes import render as render_routes
from docworker.api.routes import screenshot as screenshot_route
from docworker.api.routes import video as video_routes
from docworker.api.routes.convert import router as convert_router
from docworker.api.uploads import BodySizeLimit, UnclaimedInputs
from docworker.api.v1.install import install_v1
from docworker.config import ExecutorKind, Settings
from docworker.errors import DocworkerError
from docworker.jobs.events import JobEvents
from docworker.jobs.local import LocalExecutor
from docworker.jobs.queue import JobQueue
from docworker.jobs.retention import purge_expired
from docworker.jobs.store import JobStore
from docworker.storage import BlobStore
from docworker.telemetry import HTTP_LATENCY, HTTP_REQUEST_BYTES, HTTP_REQUESTS

log = structlog.get_logger(__name__)

DESCRIPTION = """
Documents Worker turns documents into text, structure and Markdown.

Every request is a **job**: `POST /api/v2/extract` submits one and waits up to
`wait` seconds for it (200 with the result, else 202 with the job to poll);
`POST /api/v2/jobs` queues any operation listed by `GET /api/v2/operations`.
Errors are RFC 9457 `application/problem+json` bodies whose `code` names the fault.
"""


def build_services(settings: Settings, *, start_executor: bool = True) -> Services:
    """Open the stores (migrating the job store) and, if asked, the local executor."""
    store = JobStore(settings.database_url, echo=settings.database.echo)
    store.migrate()
    blobs = BlobStore(settings.storage_url)
    blobs.ping()
    events = JobEvents()
    executor = None
    if start_executor and settings.executor.kind is ExecutorKind.LOCAL:
        executor = LocalExecutor(settings, store, events)
    queue = JobQueue(store, blobs, executor, events, max_attempts=settings.executor.max_attempts)
    return Services(settings=settings, store=store, blobs=blobs, queue=queue, executor=executor)


def create_app(settings: Settings, *, start_executor: bool = True) -> FastAPI:
    """The ASGI application; the services start with it and stop with it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await anyio.to_thread.run_sync(
            lambda: build_services(settings, start_executor=start_executor)
        )
        if services.executor is not None:
            await anyio.to_thread.run_sync(services.executor.start)
        app.state.services = services
        log.info("service started", profile=settings.profile.value, database=_safe(settings))
        janitor = asyncio.create_task(_purge_periodically(services))
        try:
            yield
        finally:
            janitor.cancel()
            if services.executor is not None:
                await anyio.to_thread.run_sync(services.executor.stop)
            services.store.close()
            log.info("service stopped")

    app = FastAPI(
        title="Documents Worker",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs" if settings.server.docs else None,
        redoc_url=None,
    )
    install_error_handlers(app)
    for module in (extract, chunk, ocr, jobs, operations, health):
        app.include_router(module.router)
    app.include_router(pdf_routes.router)
    app.include_router(image_route.router)
    app.include_router(render_routes.router)
    app.include_router(video_routes.router)
    app.include_router(screenshot_route.router)
    app.include_router(convert_router)
    app.add_middleware(UnclaimedInputs)
    app.add_middleware(BodySizeLimit, max_bytes=settings.server.max_upload_bytes)
    app.add_middleware(RequestContext)
    install_v1(app, settings)
    install_docs(app, settings)
    install_openapi(app)
    return app


#: How often finished jobs past their retention are looked for.
PURGE_INTERVAL = 300.0


async def _purge_periodically(services: Services) -> None:
    """Delete expired jobs and their blobs now and then, for as long as the service runs."""
    while True:
        try:
            await anyio.to_thread.run_sync(
                lambda: purge_expired(
                    services.store,
                    services.blobs,
                    retention=services.settings.executor.job_retention,
                )
            )
        except DocworkerError as exc:
            log.warning("purge of expired jobs failed", error=exc.detail)
        await asyncio.sleep(PURGE_INTERVAL)


def _safe(settings: Settings) -> str:
    """The database URL without its password, for the log."""
    url = settings.database_url
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url


class RequestContext:
    """Binds a request id to every log line of a request, and records HTTP metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:100] or uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            return message

        async def tagged_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, counting_receive, tagged_send)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            method = scope["method"]
            elapsed = time.perf_counter() - started
            HTTP_REQUESTS.labels(method, path, str(status)).inc()
            HTTP_LATENCY.labels(method, path).observe(elapsed)
            HTTP_REQUEST_BYTES.labels(path).inc(received)
            log.info(
                "request",
                method=method,
                path=scope["path"],
                status=status,
                ms=round(elapsed * 1000, 1),
            )
            structlog.contextvars.unbind_contextvars("request_id")
