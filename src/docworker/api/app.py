"""The application factory: builds the services, the routes and the middleware."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
import structlog
from fastapi import FastAPI
from opentelemetry import trace
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from docworker import __version__
from docworker.api.auth import Authenticate, Authenticator, document_security
from docworker.api.deps import Services
from docworker.api.docs import install_docs
from docworker.api.errors import install_error_handlers
from docworker.api.openapi import install_openapi
from docworker.api.quota import AuditRefusals, QuotaGate, document_quotas
from docworker.api.ratelimit import RateLimit, document_rate_limits
from docworker.api.routes import audio as audio_routes
from docworker.api.routes import audit as audit_routes
from docworker.api.routes import (
    batch_events,
    batches,
    chunk,
    dead_letters,
    extract,
    health,
    job_events,
    jobs,
    ocr,
    operations,
)
from docworker.api.routes import cache as cache_routes
from docworker.api.routes import capacity as capacity_routes
from docworker.api.routes import image as image_route
from docworker.api.routes import keys as keys_routes
from docworker.api.routes import pdf as pdf_routes
from docworker.api.routes import render as render_routes
from docworker.api.routes import screenshot as screenshot_route
from docworker.api.routes import unpack as unpack_route
from docworker.api.routes import usage as usage_routes
from docworker.api.routes import video as video_routes
from docworker.api.routes.convert import router as convert_router
from docworker.api.routing import mount_routes
from docworker.api.uploads import BodySizeLimit, IntakeGuard, UnclaimedInputs
from docworker.api.v1.install import install_v1
from docworker.auth import server_secret
from docworker.config import ExecutorKind, Settings, SettingsRefused
from docworker.engines.breaker import Breakers
from docworker.engines.sandbox import network_sandbox
from docworker.errors import DocworkerError
from docworker.files import make_private, restrict_umask
from docworker.flags import Flags, flag_problems
from docworker.guard import load_rules
from docworker.jobs.admission import Admission, DiskFloor, Drain
from docworker.jobs.audit import AuditLog, RefusalLog
from docworker.jobs.breaker_board import StoreBreakerBoard
from docworker.jobs.events import RedisJobEvents, event_bus
from docworker.jobs.keys import KeyStore
from docworker.jobs.local import LocalExecutor
from docworker.jobs.outbox import Outbox
from docworker.jobs.queue import Executor, JobQueue
from docworker.jobs.retention import purge_audit, purge_expired
from docworker.jobs.store import JobStore
from docworker.jobs.usage import QuotaCounters
from docworker.jobs.webhooks import WebhookDeliverer, journal
from docworker.memory import give_back
from docworker.metrics import (
    HTTP_IN_FLIGHT,
    HTTP_LATENCY,
    HTTP_REQUEST_BYTES,
    HTTP_REQUESTS,
    UNMATCHED_ROUTE,
    configure_usage_metrics,
    http_method,
)
from docworker.result_cache import ResultCache
from docworker.sealing import SecretKeys
from docworker.storage import BlobStore, storage_refusals
from docworker.tracing import jobs_of_request, set_attributes, trace_app

log = structlog.get_logger(__name__)

DESCRIPTION = """
Documents Worker turns documents into text, structure and Markdown.

Every request is a **job**: `POST /api/v2/extract` submits one and waits up to
`wait` seconds for it (200 with the result, else 202 with the job to poll);
`POST /api/v2/jobs` queues any operation listed by `GET /api/v2/operations`.
An `Idempotency-Key` header makes any submission safe to send again: the same key
answers the same job. A synchronous request whose client disconnects before its answer
has its job cancelled, unless it was sent with a key.
Errors are RFC 9457 `application/problem+json` bodies whose `code` names the fault.
"""


def build_services(
    settings: Settings, *, start_executor: bool = True, drain: Drain | None = None
) -> Services:
    """Open the stores (migrating the job store) and, if asked, the local executor;
    ``drain`` is the service's drain state (see :mod:`docworker.api.serving`): once it
    begins, admission refuses new work and the executor claims no more jobs.

    From here on, what the service writes is private to its user (see
    :mod:`docworker.files`). YARA rules that are configured but do not compile stop the
    service here, before any job is taken. Refuses (:class:`DependencyDown`) when
    ``sandbox.network`` requires network namespaces for the engines and this machine
    cannot make them; logs which holds."""
    restrict_umask()
    make_private(settings.data_dir)
    if settings.guard.enabled and settings.guard.yara_rules is not None:
        load_rules(settings.guard.yara_rules)
    sealing = SecretKeys.from_settings(settings)
    sandbox = network_sandbox(settings.sandbox)
    sandbox.require()
    log.info("engine sandbox", **sandbox.status())
    store = JobStore(settings.database_url, echo=settings.database.echo)
    store.migrate()
    outbox = Outbox(store)
    deliverer = None
    if settings.webhooks.deliver:
        deliverer = WebhookDeliverer(settings.webhooks, outbox, sealing)
    # Every change this process commits is announced on the bus (to the other processes
    # too with events.redis_url, whose changes are heard).
    events = event_bus(settings.events)
    store.journal = journal(settings, deliverer, events)
    blobs = BlobStore.of(settings)
    blobs.ping()
    configure_usage_metrics(by_key=settings.usage.metrics_by_key)
    audit = AuditLog(store)
    refusals = RefusalLog(
        audit, max_events=settings.audit.buffer_events, enabled=settings.audit.refusals
    )
    drain = drain or Drain.of(settings)
    # One set of engine breakers for the process: the executor records, the API refuses;
    # those that open are posted in the job store for the other processes.
    board = StoreBreakerBoard(store) if settings.breaker.shared else None
    breakers = Breakers(settings.breaker, board=board)
    cache = ResultCache.from_settings(settings)
    flags = Flags.of(settings)
    executor = None
    dispatch: Executor | None = None
    if start_executor and settings.executor.kind is ExecutorKind.LOCAL:
        executor = dispatch = LocalExecutor(
            settings, store, events, keys=sealing, breakers=breakers
        )
        drain.on_start(executor.hold)
    elif settings.executor.kind is ExecutorKind.CELERY:
        # The API runs no job: it publishes each to the broker (docs/distributed.md).
        from docworker.jobs.distributed import CeleryDispatch

        dispatch = CeleryDispatch(settings, breakers=breakers)
    queue = JobQueue(
        store,
        blobs,
        dispatch,
        events,
        max_attempts=settings.executor.max_attempts,
        keys=sealing,
        admission=Admission(settings, store, blobs, drain=drain),
        quotas=settings.quota,
        refusals=refusals,
        max_active_jobs=settings.executor.max_active_jobs,
        breakers=breakers,
        cache=cache,
        webhooks=settings.webhooks,
        max_queued_batch_files=settings.batches.max_queued_files or None,
        flags=flags,
    )
    configured = settings.auth.secret.get_secret_value() if settings.auth.secret else None
    keys = KeyStore(store, server_secret(configured, settings.data_dir))
    return Services(
        settings=settings,
        store=store,
        blobs=blobs,
        queue=queue,
        executor=executor,
        keys=keys,
        authenticator=Authenticator(keys, settings.auth.cache_ttl),
        audit=audit,
        refusals=refusals,
        counters=QuotaCounters(store),
        result_slots=anyio.CapacityLimiter(settings.server.loaded_results_at_once),
        breakers=breakers,
        fetch_slots=anyio.CapacityLimiter(settings.server.remote_inputs_at_once),
        cache=cache,
        outbox=outbox,
        deliverer=deliverer,
        flags=flags,
    )


def create_app(settings: Settings, *, start_executor: bool = True) -> FastAPI:
    """The ASGI application; the services start with it and stop with it.

    Raises :class:`SettingsRefused` when the settings are not safe to serve with
    (see :meth:`Settings.refusals`), name storage this machine cannot open (a driver
    not installed: :func:`~docworker.storage.storage_refusals`) or flags that cannot be
    loaded (:func:`~docworker.flags.flag_problems`).
    """
    if refusals := [
        *settings.refusals(),
        *storage_refusals(settings.storage),
        *flag_problems(settings),
    ]:
        raise SettingsRefused(refusals)
    drain = Drain.of(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await anyio.to_thread.run_sync(
            lambda: build_services(settings, start_executor=start_executor, drain=drain)
        )
        if services.executor is not None:
            await anyio.to_thread.run_sync(services.executor.start)
        if services.deliverer is not None:
            services.deliverer.start()
        app.state.services = services
        log.info("service started", profile=settings.profile.value, database=_safe(settings))
        janitor = asyncio.create_task(_purge_periodically(services))
        refusals = asyncio.create_task(_flush_refusals_periodically(services))
        trimmer = asyncio.create_task(_give_memory_back_periodically(settings))
        try:
            yield
        finally:
            for task in (janitor, refusals, trimmer):
                task.cancel()
            # A purge already running in a thread finishes before the store is closed: a
            # connection it holds would otherwise outlive the pool.
            await asyncio.gather(janitor, refusals, trimmer, return_exceptions=True)
            await _drain_jobs(services, drain)
            if (deliverer := services.deliverer) is not None:
                # An attempt cut short is claimed again once its lease runs out.
                await anyio.to_thread.run_sync(deliverer.stop, 2.0)
            await anyio.to_thread.run_sync(services.refusals.flush)
            if isinstance(bus := services.queue.events, RedisJobEvents):
                await anyio.to_thread.run_sync(bus.close)
            services.store.close()
            if services.cache is not None:
                services.cache.close()
            log.info("service stopped")

    app = FastAPI(
        title="Documents Worker",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs" if settings.server.docs else None,
        redoc_url=None,
    )
    #: Begun by the server when its shutdown begins (see :mod:`docworker.api.serving`).
    app.state.drain = drain
    install_error_handlers(app)
    for router in (
        *(
            module.router
            for module in (
                extract,
                chunk,
                ocr,
                jobs,
                job_events,
                batches,
                batch_events,
                operations,
                health,
            )
        ),
        dead_letters.router,
        pdf_routes.router,
        image_route.router,
        render_routes.router,
        video_routes.router,
        audio_routes.router,
        screenshot_route.router,
        unpack_route.router,
        convert_router,
        keys_routes.router,
        audit_routes.router,
        usage_routes.router,
        capacity_routes.router,
        cache_routes.router,
    ):
        mount_routes(app, router)
    # The last added runs first: v1's path rules, the request's context, the refusals
    # audit, the caller's key, its rate, its daily quotas, the drain and the disk's free
    # space, the body's size, then the sweep of what a refused request uploaded: no body
    # is read for a caller without a key, over its rate or with a quota spent, nor while
    # the service drains or the disk is too full.
    app.add_middleware(UnclaimedInputs)
    app.add_middleware(BodySizeLimit, server=settings.server)
    app.add_middleware(IntakeGuard, disk=DiskFloor.of(settings), drain=drain)
    app.add_middleware(QuotaGate, settings=settings)
    app.add_middleware(RateLimit, settings=settings)
    app.add_middleware(Authenticate, settings=settings)
    app.add_middleware(AuditRefusals)
    _observe(app, settings)
    install_v1(app, settings)
    install_docs(app, settings)
    document_security(app, settings)
    document_quotas(app, settings)
    document_rate_limits(app, settings)
    install_openapi(app)
    return app


def _observe(app: FastAPI, settings: Settings) -> None:
    """The request's context (its id, its log lines, its metrics), and the tracing of
    requests when it is on: installed before the stores open (in the lifespan), so that
    their engines are instrumented as they are made."""
    app.add_middleware(RequestContext, max_request_id=settings.log.max_request_id)
    trace_app(app, settings.tracing)


async def _drain_jobs(services: Services, drain: Drain) -> None:
    """Stop the executor once the jobs it runs have ended, or the drain's time is up
    (those still running then are queued again for the next start). The drain begins
    here when the server did not begin it (an application stopped without a signal)."""
    drain.start()
    executor = services.executor
    if executor is None:
        return
    remaining = drain.remaining()
    running = len(executor.busy())
    if running:
        log.info("waiting for running jobs", jobs=running, seconds=round(remaining, 1))
    if not await anyio.to_thread.run_sync(executor.wait_idle, remaining):
        log.warning("drain time is up: running jobs are queued again", jobs=len(executor.busy()))
    await anyio.to_thread.run_sync(executor.stop)


#: How often finished jobs past their retention are looked for.
PURGE_INTERVAL = 300.0


async def _purge_periodically(services: Services) -> None:
    """Delete expired jobs and their blobs, and old audit events and quota counters, now
    and then, for as long as the service runs."""
    while True:
        try:
            await anyio.to_thread.run_sync(
                lambda: purge_expired(
                    services.store,
                    services.blobs,
                    retention=services.settings.executor.job_retention,
                    tenant_retention=services.settings.executor.tenant_retention,
                    cache=services.cache,
                    history_retention=services.settings.capacity.history_retention,
                )
            )
            await anyio.to_thread.run_sync(
                lambda: purge_audit(services.audit, services.counters, services.settings.audit)
            )
        except DocworkerError as exc:
            log.warning("purge of expired jobs failed", error=exc.detail)
        await asyncio.sleep(PURGE_INTERVAL)


async def _flush_refusals_periodically(services: Services) -> None:
    """Write the refused requests gathered since the last time, every flush interval."""
    while True:
        await asyncio.sleep(services.settings.audit.flush_interval)
        await anyio.to_thread.run_sync(services.refusals.flush)


async def _give_memory_back_periodically(settings: Settings) -> None:
    """Give the memory the process freed back to the system, every trim interval
    (:mod:`docworker.memory`): a burst of requests does not leave its high-water mark."""
    interval = settings.server.memory_trim_interval
    if interval <= 0:
        return
    while True:
        await asyncio.sleep(interval)
        await anyio.to_thread.run_sync(give_back)


def _safe(settings: Settings) -> str:
    """The database URL without its password, for the log."""
    url = settings.database_url
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url


def _route_template(scope: Scope) -> str:
    """The template of the route a request is for (``/api/v2/jobs/{job_id}``), never the
    path asked for: the route the router chose, or, for a request refused before routing
    (a key missing, a rate limit), the route its path and method match; ``unmatched``
    when none does (a 404 of an unknown path)."""
    path = getattr(scope.get("route"), "path", None)
    if path:
        return str(path)
    router = getattr(scope.get("app"), "router", None)
    partial = None
    for candidate in getattr(router, "routes", ()):
        match, _ = candidate.matches(scope)
        if match is Match.FULL:
            return str(getattr(candidate, "path", UNMATCHED_ROUTE))
        if match is Match.PARTIAL and partial is None:
            partial = getattr(candidate, "path", None)
    return str(partial) if partial else UNMATCHED_ROUTE


#: What an X-Request-ID taken from a request may hold.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]+")


def request_id_of(headers: dict[bytes, bytes], max_length: int) -> str:
    """The request's id: its X-Request-ID when that is at most ``max_length`` letters,
    digits and ``._:-``; else a new one."""
    given = headers.get(b"x-request-id", b"").decode("latin-1")
    if 0 < len(given) <= max_length and _REQUEST_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


class RequestContext:
    """Binds a request id to every log line of a request (and to the jobs it submits),
    answers it in X-Request-ID, and records HTTP metrics."""

    def __init__(self, app: ASGIApp, max_request_id: int = 128) -> None:
        self.app = app
        self.max_request_id = max_request_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = request_id_of(headers, self.max_request_id)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        set_attributes(trace.get_current_span(), request_id=request_id)
        jobs = jobs_of_request()
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

        HTTP_IN_FLIGHT.inc()
        try:
            await self.app(scope, counting_receive, tagged_send)
        finally:
            HTTP_IN_FLIGHT.dec()
            path = _route_template(scope)
            method = scope["method"]
            label = http_method(method)
            elapsed = time.perf_counter() - started
            HTTP_REQUESTS.labels(label, path, str(status)).inc()
            HTTP_LATENCY.labels(label, path).observe(elapsed)
            HTTP_REQUEST_BYTES.labels(path).inc(received)
            log.info(
                "request",
                method=method,
                path=scope["path"],
                status=status,
                ms=round(elapsed * 1000, 1),
                **jobs.as_log(),
            )
            structlog.contextvars.unbind_contextvars("request_id", "tenant", "key_id", "job_id")
            jobs.close()
