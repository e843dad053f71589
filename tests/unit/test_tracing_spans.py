"""The API's side of a job's trace, read with an in-memory span exporter: the request's
span, the submission under it (admission, the job store's statements), and the trace
context and request id the job row keeps for the processes that run it; the request id
taken from X-Request-ID or made; log lines naming the current span.

The app runs in process without an executor: what the worker processes export is read
by tests/e2e/test_job_traces.py, through a real OTLP receiver."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from fastapi.testclient import TestClient
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pydantic import SecretStr

from docworker import tracing
from docworker.api.app import create_app, request_id_of
from docworker.config import TracingSettings, load_settings
from docworker.jobs.store import JobStore, NewJob
from docworker.jobs.template import worker_config
from docworker.jobs.worker import worker_settings
from docworker.sealing import SecretKeys

INPUT = {"uri": "blob://inputs/ab", "sha256": "ab" * 32, "size": 1000}


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    """This process's provider, exporting to memory; the libraries' instrumentation
    taken off again after the module (the provider stays, emptied: it cannot be
    uninstalled, and shut down it would warn of every span ended later)."""
    exporter = InMemorySpanExporter()
    provider = tracing.configure_tracing(TracingSettings(enabled=True), exporter=exporter)
    assert provider is not None
    yield exporter
    HTTPXClientInstrumentor().uninstrument()
    CeleryInstrumentor().uninstrument()  # type: ignore[no-untyped-call]
    exporter.clear()


@pytest.fixture
def client(tmp_path: Path, exporter: InMemorySpanExporter) -> Iterator[TestClient]:
    settings = load_settings(data_dir=tmp_path, tracing=TracingSettings(enabled=True))
    with TestClient(create_app(settings, start_executor=False)) as test_client:
        tracing.flush()
        exporter.clear()
        yield test_client


def _spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    tracing.flush()
    return list(exporter.get_finished_spans())


def _one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [span for span in spans if span.name == name]
    assert len(found) == 1, [span.name for span in spans]
    return found[0]


def _parent(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def test_a_submission_is_traced_under_its_request_and_its_job_keeps_the_context(
    client: TestClient, exporter: InMemorySpanExporter
) -> None:
    answer = client.post(
        "/api/v2/jobs",
        files={"file": ("a.txt", b"hello tracing")},
        data={"operation": "extract"},
        headers={"X-Request-ID": "req-42.a:b"},
    )
    assert answer.status_code == 202, answer.text
    assert answer.headers["x-request-id"] == "req-42.a:b"
    spans = _spans(exporter)
    request = _one(spans, "POST /api/v2/jobs")
    assert request.kind is SpanKind.SERVER and request.parent is None
    assert request.attributes is not None
    assert request.attributes["docworker.request_id"] == "req-42.a:b"
    submit = _one(spans, "job submit")
    admission = _one(spans, "job admission")
    assert _parent(submit) == request.context.span_id
    assert _parent(admission) == submit.context.span_id
    assert submit.attributes is not None
    job_id = answer.json()["id"]
    assert submit.attributes["docworker.job.id"] == job_id
    assert submit.attributes["docworker.operation"] == "extract"
    assert submit.attributes["docworker.input.bytes"] == len(b"hello tracing")
    # The job store's statements, by the SQLAlchemy instrumentation, in the submission.
    statements = [span for span in spans if _parent(span) == submit.context.span_id]
    assert any(span.name.startswith("INSERT") for span in statements), [s.name for s in spans]
    assert all(span.context.trace_id == request.context.trace_id for span in spans)
    # The upload went to the blob store under the request.
    write = _one(spans, "storage write")
    assert _parent(write) == request.context.span_id
    assert write.attributes is not None and write.attributes["docworker.storage.bytes"] == 13

    store = JobStore(client.app.state.services.settings.database_url)  # type: ignore[attr-defined]
    try:
        carried = store.get(job_id).trace
    finally:
        store.close()
    assert carried is not None
    assert carried["request_id"] == "req-42.a:b"
    version, trace_id, parent_id, flags = carried["traceparent"].split("-")
    assert version == "00" and int(flags, 16) & 1  # sampled
    assert int(trace_id, 16) == request.context.trace_id
    assert int(parent_id, 16) == submit.context.span_id


@pytest.mark.parametrize(
    "given",
    [
        pytest.param("x" * 129, id="too-long"),
        pytest.param("a b", id="space"),
        pytest.param('a"b', id="quote"),
        pytest.param("é", id="not-ascii"),
        pytest.param("", id="empty"),
    ],
)
def test_an_unfit_request_id_is_replaced(given: str) -> None:
    made = request_id_of({b"x-request-id": given.encode("latin-1", "replace")}, 128)
    assert made != given and len(made) == 32
    assert request_id_of({b"x-request-id": b"x" * 128}, 128) == "x" * 128


def test_a_request_without_an_id_gets_one_back(client: TestClient) -> None:
    answer = client.get("/api/v2/operations")
    assert answer.status_code == 200
    assert len(answer.headers["x-request-id"]) == 32


def test_probes_are_not_traced(client: TestClient, exporter: InMemorySpanExporter) -> None:
    assert client.get("/health/liveness").status_code == 200
    assert client.get("/metrics").status_code == 200
    assert _spans(exporter) == []


@pytest.mark.usefixtures("exporter")
def test_log_lines_name_the_current_span() -> None:
    lines: list[dict[str, Any]] = []

    def keep(_: Any, __: str, event: Any) -> Any:
        lines.append(dict(event))
        raise structlog.DropEvent

    logger = structlog.wrap_logger(None, processors=[tracing.add_trace_ids, keep])
    logger.info("outside")
    with tracing.tracer.start_as_current_span("inside") as span:
        logger.info("inside")
    context = span.get_span_context()
    assert "trace_id" not in lines[0]
    assert lines[1]["trace_id"] == format(context.trace_id, "032x")
    assert lines[1]["span_id"] == format(context.span_id, "016x")


def test_housekeeping_statements_outside_a_span_are_not_sampled(
    tmp_path: Path, exporter: InMemorySpanExporter
) -> None:
    store = JobStore(f"sqlite:///{tmp_path / 'jobs.db'}")
    try:
        store.migrate()
        tracing.flush()
        exporter.clear()
        store.ping()
        assert _spans(exporter) == []
        with tracing.tracer.start_as_current_span("job record"):
            store.ping()
        names = [span.name for span in _spans(exporter)]
        assert names[-1] == "job record" and any(n.startswith("SELECT") for n in names)
    finally:
        store.close()


def test_tracing_off_installs_nothing() -> None:
    assert tracing.configure_tracing(TracingSettings()) is None
    assert tracing.job_carrier() is None


def test_the_trace_stays_with_the_job_through_retries_and_goes_to_its_parts(
    tmp_path: Path,
) -> None:
    carrier = {"traceparent": f"00-{'a' * 32}-{'b' * 16}-01", "request_id": "req-9"}
    split_at = {"traceparent": f"00-{'a' * 32}-{'c' * 16}-01", "request_id": "req-9"}
    store = JobStore(f"sqlite:///{tmp_path / 'jobs.db'}")
    try:
        store.migrate()
        job, _ = store.create(NewJob("ocr", {}, INPUT, trace=carrier))
        claimed = store.claim_next("worker-1")
        assert claimed is not None and claimed.trace == carrier
        # Its worker died: taken back, claimed again by another, the same trace.
        (taken,) = store.requeue_worker("worker-1", reason="gone")
        again = store.claim_next("worker-2")
        assert again is not None and again.id == job.id and again.attempts == 2
        assert taken.trace == again.trace == carrier
        # Split: a part given the splitting attempt's context takes it, another the job's.
        _, parts = store.split(job.id, [{"params": {}, "trace": split_at}, {"params": {}}])
        assert [part.trace for part in parts] == [split_at, carrier]
    finally:
        store.close()


def test_a_local_worker_gets_the_collector_headers_its_settings_mask(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path,
        tracing=TracingSettings(enabled=True, headers=SecretStr("authorization=Bearer t0k")),
    )
    config = worker_config(settings, SecretKeys.from_settings(settings))
    assert "t0k" not in json.dumps(config["settings"])
    headers = worker_settings(config).tracing.headers
    assert headers is not None
    assert tracing.parse_headers(headers.get_secret_value()) == {"authorization": "Bearer t0k"}
