"""OpenTelemetry tracing: the tracer provider of a process, the spans of a job, and the
trace context a job carries in its row from its request to every process that runs it.

Off unless ``tracing.enabled``: then no SDK provider is installed, the spans below are
opentelemetry-api's no-op ones and nothing is exported. On, each process (the API, each
worker process of the local executor, each Celery worker process) installs its own
provider after it was forked, with a batch span processor posting to the OTLP/HTTP
endpoint, and instruments FastAPI, SQLAlchemy, httpx and Celery with the OpenTelemetry
packages.

One trace per job: :func:`job_carrier` captures, at submission, the W3C
``traceparent`` of the request's span and the request's id; the job row keeps them
(``Job.trace``), the parts of a split job and every attempt (retries included) read
them back (:func:`job_scope`), whichever process runs them.

Work done outside a request or a job (a claim that found nothing, heartbeats, purges,
webhook deliveries) makes root spans of kind CLIENT only; those are not sampled, so the
housekeeping of an idle service exports nothing.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.util.types import Attributes
    from sqlalchemy import Engine

    from docworker.config import TracingSettings

#: Every span of the service is made by this tracer (a proxy: no-op until a provider is
#: installed).
tracer = trace.get_tracer("docworker")

#: What is carried in the job row besides the trace context.
REQUEST_ID = "request_id"


class _Process:
    """This process's provider, once :func:`configure_tracing` installed one."""

    provider: TracerProvider | None = None
    flush_ms: int = 2000


def configure_tracing(
    settings: TracingSettings, *, exporter: SpanExporter | None = None
) -> TracerProvider | None:
    """Install this process's tracer provider and the instrumentations, when
    ``settings.enabled`` (else nothing: the no-op API stays). ``exporter`` replaces the
    OTLP exporter (tests give an in-memory one). Once per process: a second call returns
    the provider installed first. Call it after the process was forked, never before a
    fork: the batch processor's thread does not survive one."""
    if not settings.enabled:
        return None
    if _Process.provider is not None:
        return _Process.provider
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased

    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        headers = settings.headers.get_secret_value() if settings.headers else ""
        exporter = OTLPSpanExporter(
            endpoint=settings.otlp_endpoint,
            headers=parse_headers(headers),
            timeout=settings.export_timeout,
        )
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: settings.service_name, "process.pid": os.getpid()}),
        sampler=ParentBased(root=_root_sampler(settings.sample_ratio)),
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _Process.provider = provider
    _Process.flush_ms = int(settings.flush_timeout * 1000)
    _instrument_libraries(provider)
    return provider


def parse_headers(spec: str) -> dict[str, str]:
    """``name=value,name=value`` as a mapping (OTEL_EXPORTER_OTLP_HEADERS' form)."""
    found: dict[str, str] = {}
    for item in spec.split(","):
        name, sep, value = item.partition("=")
        if sep and name.strip():
            found[name.strip()] = value.strip()
    return found


def _root_sampler(ratio: float) -> Any:
    """Samples new traces at ``ratio``, but never a root span of kind CLIENT: a statement
    or an HTTP call made outside any request or job (housekeeping)."""
    from opentelemetry.sdk.trace.sampling import (
        Decision,
        Sampler,
        SamplingResult,
        TraceIdRatioBased,
    )

    class NoHousekeeping(Sampler):
        def __init__(self) -> None:
            self.ratio = TraceIdRatioBased(ratio)

        def should_sample(
            self,
            parent_context: otel_context.Context | None,
            trace_id: int,
            name: str,
            kind: SpanKind | None = None,
            attributes: Attributes = None,
            links: Sequence[trace.Link] | None = None,
            trace_state: trace.TraceState | None = None,
        ) -> SamplingResult:
            if kind is SpanKind.CLIENT:
                return SamplingResult(Decision.DROP)
            return self.ratio.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )

        def get_description(self) -> str:
            return f"NoHousekeeping({self.ratio.get_description()})"

    return NoHousekeeping()


def _instrument_libraries(provider: TracerProvider) -> None:
    """httpx's clients and Celery's tasks, by the OpenTelemetry instrumentation packages
    (SQLAlchemy's engines one by one: :func:`instrument_engine`)."""
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    CeleryInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]


def instrument_engine(engine: Engine) -> None:
    """Trace the statements of a SQLAlchemy ``engine``, when this process traces.

    With opentelemetry-instrumentation-sqlalchemy's engine tracer, attached to the
    engine: the package's ``SQLAlchemyInstrumentor().instrument()`` would also patch
    ``create_async_engine``, whose import needs greenlet, which the service does not
    install (it has no asyncio engine); and its declared range stops below SQLAlchemy
    2.1, whose engine events the tracer hooks are unchanged (the tests read the
    statements' spans)."""
    if _Process.provider is None:
        return
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.instrumentation.sqlalchemy.version import __version__
    from opentelemetry.metrics import get_meter

    sql_tracer = trace.get_tracer(
        "opentelemetry.instrumentation.sqlalchemy", __version__, _Process.provider
    )
    usage = get_meter("opentelemetry.instrumentation.sqlalchemy", __version__)
    connections = usage.create_up_down_counter("db.client.connections.usage", unit="connections")
    EngineTracer(sql_tracer, engine, connections)  # type: ignore[no-untyped-call]


def trace_app(app: FastAPI, settings: TracingSettings) -> None:
    """When ``settings.enabled``: install this process's provider (:func:`configure_tracing`)
    and trace every request of ``app`` but those of ``settings.excluded_urls``."""
    provider = configure_tracing(settings)
    if provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls=settings.excluded_urls,
        # A span per chunk of the body read or sent says nothing a request's span does not.
        exclude_spans=["receive", "send"],
    )


def flush() -> None:
    """Export the spans ended so far, waiting ``tracing.flush_timeout`` at most: a local
    worker process calls it after its last job, as it is replaced (killed) right after."""
    if _Process.provider is not None:
        _Process.provider.force_flush(_Process.flush_ms)


def shutdown() -> None:
    """Export what is left and stop the exporter: the process is ending (it traces no
    more: the statements of engines made from now on are not traced)."""
    if _Process.provider is not None:
        _Process.provider.shutdown()
        _Process.provider = None


def job_carrier() -> dict[str, str] | None:
    """What a new job keeps of the request submitting it (``Job.trace``): the W3C trace
    context of the current span (when a span is current and recording) and the request's
    id (when the request has one); None when there is neither."""
    carrier: dict[str, str] = {}
    inject(carrier)
    request_id = structlog.contextvars.get_contextvars().get(REQUEST_ID)
    if request_id:
        carrier[REQUEST_ID] = str(request_id)
    return carrier or None


def with_span(carrier: Mapping[str, str] | None, span: Span) -> dict[str, str] | None:
    """``carrier`` with ``span`` for parent: the same request id, the span's trace
    context (``carrier`` as it is when the span is not recording)."""
    if not span.get_span_context().is_valid:
        return dict(carrier) if carrier else None
    moved = {k: v for k, v in (carrier or {}).items() if k not in ("traceparent", "tracestate")}
    inject(moved, context=trace.set_span_in_context(span))
    return moved


@contextlib.contextmanager
def job_scope(
    name: str,
    carrier: Mapping[str, str] | None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    start_time: int | None = None,
    log_context: Mapping[str, Any] | None = None,
    attributes: Attributes = None,
) -> Iterator[Span]:
    """A span ``name`` continuing the job's trace from its ``carrier`` (``Job.trace``,
    or None), current in the block, with the job's log context bound (its request id,
    and ``log_context``: job id, tenant, key id) for every line logged in the block.
    ``start_time`` (ns since the epoch) dates the span back to work already done."""
    parent = extract(dict(carrier or {}), context=otel_context.Context())
    bound = dict(log_context or {})
    if carrier and carrier.get(REQUEST_ID):
        bound[REQUEST_ID] = carrier[REQUEST_ID]
    token = otel_context.attach(parent)
    try:
        with (
            structlog.contextvars.bound_contextvars(**bound),
            tracer.start_as_current_span(
                name, kind=kind, start_time=start_time, attributes=attributes
            ) as span,
        ):
            yield span
    finally:
        otel_context.detach(token)


def job_attributes(
    job_id: str, operation: str, *, attempt: int | None = None, **more: Any
) -> dict[str, Any]:
    """The attributes of a job's spans (those whose value is None left out)."""
    found: dict[str, Any] = {"docworker.job.id": job_id, "docworker.operation": operation}
    if attempt is not None:
        found["docworker.job.attempt"] = attempt
    for name, value in more.items():
        if value is not None:
            found[f"docworker.{name}"] = value
    return found


@contextlib.contextmanager
def engine_span(name: str, **attributes: Any) -> Iterator[Span]:
    """A span around one call of an engine or a store (``docworker.*`` attributes, those
    whose value is None left out); a failure is recorded on it and raised again."""
    attrs = {f"docworker.{key}": value for key, value in attributes.items() if value is not None}
    with tracer.start_as_current_span(name, attributes=attrs) as span:
        yield span


def set_attributes(span: Span, **attributes: Any) -> None:
    """Add ``docworker.*`` attributes to ``span`` (those whose value is None left out)."""
    if span.is_recording():
        for key, value in attributes.items():
            if value is not None:
                span.set_attribute(f"docworker.{key}", value)


def mark_failed(span: Span, code: str, detail: str) -> None:
    """Record on ``span`` that the work it covers failed with the error ``code``."""
    if span.is_recording():
        span.set_status(Status(StatusCode.ERROR, detail[:200]))
        span.set_attribute("docworker.error.code", code)


def now_ns() -> int:
    """The time in ns since the epoch, as spans are dated."""
    return time.time_ns()


def job_log_ids(carrier: Mapping[str, str] | None) -> dict[str, str]:
    """What a line about a job logged outside its spans says of the job's request and trace
    (``Job.trace``): its ``request_id``, and the ``trace_id`` and ``span_id`` its trace
    context names when no span is current (a current span's are added by
    :func:`add_trace_ids`)."""
    if not carrier:
        return {}
    found = {REQUEST_ID: carrier[REQUEST_ID]} if carrier.get(REQUEST_ID) else {}
    parts = carrier.get("traceparent", "").split("-")
    if len(parts) == 4 and not trace.get_current_span().get_span_context().is_valid:
        found |= {"trace_id": parts[1], "span_id": parts[2]}
    return found


def add_trace_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: ``trace_id`` and ``span_id`` of the current span, if any."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


class RequestJobs:
    """The jobs a request submitted, for its ``request`` log line (:func:`note_job`)."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self._token = _REQUEST_JOBS.set(self)

    def as_log(self) -> dict[str, Any]:
        """``job_id`` of the request's job; ``job_ids`` too when it submitted several."""
        if not self.ids:
            return {}
        if len(self.ids) == 1:
            return {"job_id": self.ids[0]}
        return {"job_id": self.ids[0], "job_ids": self.ids}

    def close(self) -> None:
        _REQUEST_JOBS.reset(self._token)


_REQUEST_JOBS: ContextVar[RequestJobs | None] = ContextVar("request_jobs", default=None)


def jobs_of_request() -> RequestJobs:
    """Begin gathering the jobs the current request submits (in this context and the
    threads it hands work to)."""
    return RequestJobs()


def note_job(job_id: str) -> None:
    """The current request (if any) submitted ``job_id``: its lines from here on, and its
    ``request`` line, name it."""
    structlog.contextvars.bind_contextvars(job_id=job_id)
    if (jobs := _REQUEST_JOBS.get()) is not None and job_id not in jobs.ids:
        jobs.ids.append(job_id)
