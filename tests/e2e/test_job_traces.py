"""A real ``docworker serve`` in the production profile, tracing on and exporting to a
real OTLP/HTTP receiver on loopback (tests/otlp_receiver.py): one trace per job, from
the request through the job store and the worker process (another process, exporting
its own spans) to the engine calls and the blob store, the parts of a split job in it;
and every log line JSON, naming its request, its job and its span."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pypdfium2
import pytest

from tests.celery_worker import Worker, delete_queues, queue_prefix
from tests.e2e.server import Server
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan, render, span_tree

CORPUS = Path(os.environ.get("DOCWORKER_CORPUS", "/work/shared/corpus"))
SCAN_IMAGE = CORPUS / "images" / "ocr-text.png"
ARTICLE = CORPUS / "pdf" / "multi-page-article.pdf"
SERVER_KIND = 2  # OTLP's SPAN_KIND_SERVER


class Traced:
    """The service, its receiver and an API key."""

    def __init__(self, server: Server, receiver: OtlpReceiver, key: str) -> None:
        self.server = server
        self.receiver = receiver
        self.key = key

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.url, timeout=120, headers={"Authorization": f"Bearer {self.key}"}
        )

    def trace_of(self, job_id: str, runs: int = 1) -> list[ReceivedSpan]:
        """Every span of the trace of ``job_id`` once ``runs`` ``job run`` spans came."""

        def trace_id(spans: list[ReceivedSpan]) -> str | None:
            for span in spans:
                if span.name == "job submit" and span.attributes.get("docworker.job.id") == job_id:
                    return span.trace_id
            return None

        def complete(spans: list[ReceivedSpan]) -> bool:
            found = trace_id(spans)
            ours = [s for s in spans if s.trace_id == found]
            return (
                sum(s.name == "job run" for s in ours) >= runs
                and sum(s.name == "job record" for s in ours) >= runs
                and any(s.kind == SERVER_KIND for s in ours)
            )

        spans = self.receiver.wait_for(complete)
        found = trace_id(spans)
        return [span for span in spans if span.trace_id == found]


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traced]:
    data_dir = tmp_path_factory.mktemp("traced")
    with OtlpReceiver() as receiver:
        server = Server(
            data_dir,
            DOCWORKER_PROFILE="production",
            DOCWORKER_AUTH__SECRET=secrets.token_urlsafe(32),
            DOCWORKER_SECRETS__KEYS=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            # The profile's own: JSON lines.
            DOCWORKER_LOG__FORMAT="auto",
            DOCWORKER_TRACING__ENABLED="true",
            DOCWORKER_TRACING__OTLP_ENDPOINT=receiver.endpoint,
            # The SDK's batch processor exports every 0.2 s, not 5 s: the tests wait less.
            OTEL_BSP_SCHEDULE_DELAY="200",
            # A scan of two pages or more is read by parts, a page each.
            DOCWORKER_EXECUTOR__SPLIT_MIN_PAGES="2",
            DOCWORKER_EXECUTOR__SPLIT_PARTS="2",
        )
        with server:
            key = server.keys("create", "--tenant", "tracing", "--scope", "admin")
            yield Traced(server, receiver, key.split()[-1])


@pytest.fixture(scope="module")
def scanned_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An image-only PDF: the first two pages of a corpus article, rendered (a scan)."""
    pdf = pypdfium2.PdfDocument(str(ARTICLE))
    try:
        pages = [pdf[index].render(scale=100 / 72, grayscale=True).to_pil() for index in range(2)]
    finally:
        pdf.close()
    target = tmp_path_factory.mktemp("scan") / "scanned-article.pdf"
    pages[0].save(target, save_all=True, append_images=pages[1:], resolution=100)
    return target


def _only(spans: list[ReceivedSpan], name: str) -> ReceivedSpan:
    found = [span for span in spans if span.name == name]
    assert len(found) == 1, f"{name}: {len(found)} in\n{render(spans)}"
    return found[0]


def _children(span: ReceivedSpan, name: str) -> list[ReceivedSpan]:
    return [child for child in span.children if child.name == name]


def test_a_job_is_one_trace_from_its_request_to_its_engine_call(traced: Traced) -> None:
    with traced.client() as client:
        answer = client.post(
            "/api/v2/ocr",
            files={"file": (SCAN_IMAGE.name, SCAN_IMAGE.read_bytes())},
            headers={"X-Request-ID": "trace-test-1"},
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-request-id"] == "trace-test-1"
    job_id = answer.headers["x-job-id"]
    spans = traced.trace_of(job_id)
    tree = render(spans)
    (root,) = span_tree(spans)
    assert (root.name, root.kind) == ("POST /api/v2/ocr", SERVER_KIND), tree
    assert root.attributes["docworker.request_id"] == "trace-test-1"
    # The API process: the upload stored, the job submitted (admitted, inserted).
    assert _children(root, "storage write"), tree
    submit = _only(root.children, "job submit")
    assert submit.attributes["docworker.job.id"] == job_id
    assert _children(submit, "job admission"), tree
    assert any(child.name.startswith("INSERT") for child in submit.children), tree
    # The executor's supervisor (the API process) claims it and records its end.
    claim = _only(submit.children, "job claim")
    record = _only(submit.children, "job record")
    assert record.attributes["docworker.outcome"] == "done"
    assert any(child.name.startswith("UPDATE") for child in record.children), tree
    # The worker process, exporting its own spans.
    run = _only(claim.children, "job run")
    assert run.pid is not None and run.pid != root.pid, (run.pid, root.pid)
    assert run.attributes["docworker.job.id"] == job_id
    assert run.attributes["docworker.job.attempt"] == 1
    assert run.attributes["docworker.input.bytes"] == SCAN_IMAGE.stat().st_size
    assert run.attributes["docworker.outcome"] == "done"
    read = _only(run.children, "storage read")
    assert read.attributes["docworker.storage.bytes"] == SCAN_IMAGE.stat().st_size
    assert _children(run, "storage write"), tree
    operation = [s for s in run.children if s.attributes.get("docworker.operation.step") == "run"]
    assert [s.name for s in operation] == ["operation ocr"], tree
    assert operation[0].attributes["docworker.pages"] == 1
    (page,) = _children(operation[0], "tesseract page")
    assert page.attributes["docworker.engine"] == "tesseract"
    assert page.attributes["docworker.image.width"] > 0
    assert {span.service for span in spans} == {"documents-worker"}


@pytest.mark.slow
def test_the_parts_of_a_split_job_are_in_its_trace(traced: Traced, scanned_pdf: Path) -> None:
    with traced.client() as client:
        answer = client.post(
            "/api/v2/jobs",
            files={"file": (scanned_pdf.name, scanned_pdf.read_bytes())},
            data={"operation": "ocr"},
        )
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["id"]
        done = client.get(f"/api/v2/jobs/{job_id}", params={"wait": 60}).json()
    assert done["status"] == "succeeded", done
    # The attempt that split it, a part each, the attempt that merged them.
    spans = traced.trace_of(job_id, runs=4)
    tree = render(spans)
    runs = [span for span in spans if span.name == "job run"]
    assert len(runs) == 4, tree
    own = [run for run in runs if run.attributes["docworker.job.id"] == job_id]
    parts = [run for run in runs if run.attributes.get("docworker.job.parent_id") == job_id]
    assert len(own) == 2 and len(parts) == 2, tree
    split, merge = sorted(own, key=lambda span: span.start_ns)
    assert split.attributes["docworker.outcome"] == "split"
    assert merge.attributes["docworker.outcome"] == "done"
    by_id = {span.span_id: span for span in spans}
    for part in parts:
        claim = by_id[part.parent_id]
        assert claim.name == "job claim", tree
        # A part's claim continues the attempt that split the job.
        assert claim.parent_id == split.span_id, tree
        assert {child.name for child in part.children} >= {"storage read", "operation ocr"}
        pages = [s for s in spans if s.name == "tesseract page" and s.parent_id in _ids(part)]
        assert len(pages) == 1, tree
    assert sorted(part.attributes["docworker.job.part"] for part in parts) == [0, 1]


def _ids(span: ReceivedSpan) -> set[str]:
    """The ids of ``span`` and every span under it."""
    found = {span.span_id}
    for child in span.children:
        found |= _ids(child)
    return found


def _lines(server: Server) -> list[str]:
    return [line for line in server.log.read_text().splitlines() if line.strip()]


def test_every_log_line_is_json_naming_its_request_job_and_span(traced: Traced) -> None:
    with traced.client() as client:
        answer = client.post(
            "/api/v2/extract",
            files={"file": ("note.txt", b"a short note for the log test")},
            data={"output": "text"},
            headers={"X-Request-ID": "log-test-1"},
        )
    assert answer.status_code == 200, answer.text
    job_id = answer.headers["x-job-id"]
    spans = traced.trace_of(job_id)
    trace_id = spans[0].trace_id
    lines = _lines(traced.server)
    events: list[dict[str, Any]] = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line: {line}")
    loggers = {event.get("logger") for event in events}
    assert {"uvicorn.error", "alembic.runtime.migration"} <= loggers, loggers
    ours = [event for event in events if event.get("job_id") == job_id]
    assert len(ours) >= 4, ours  # queued, running, succeeded, the request
    assert all(event.get("request_id") == "log-test-1" for event in ours), ours
    request = [event for event in ours if event["event"] == "request"]
    assert len(request) == 1 and request[0]["tenant"] == "tracing" and request[0]["key_id"]
    # Each names the job's trace: the span current when it was logged, or (the claim's
    # line, logged before the claim knows its job) the span that submitted the job.
    assert {event.get("trace_id") for event in ours} == {trace_id}, ours
    assert all(event["span_id"] in {span.span_id for span in spans} for event in ours)
    # Every line of the request names its job.
    about = [e for e in events if e.get("request_id") == "log-test-1"]
    assert all(e.get("job_id") == job_id for e in about), about


@pytest.mark.redis
def test_a_job_run_by_a_celery_worker_process_is_in_its_trace(
    tmp_path: Path, redis_url: str
) -> None:
    """``docworker worker``'s processes export their spans too: the run and the record
    of the job, in the trace of its request, with Celery's own spans of the task."""
    env = {
        "DOCWORKER_EXECUTOR__KIND": "celery",
        "DOCWORKER_DATABASE__URL": f"sqlite:///{tmp_path / 'jobs.db'}",
        "DOCWORKER_CELERY__BROKER_URL": redis_url,
        "DOCWORKER_CELERY__QUEUE_PREFIX": queue_prefix(),
        "DOCWORKER_TRACING__ENABLED": "true",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    with OtlpReceiver() as receiver, contextlib.ExitStack() as stack:
        env["DOCWORKER_TRACING__OTLP_ENDPOINT"] = receiver.endpoint
        stack.callback(delete_queues, env)
        server = Server(tmp_path, **env)
        stack.callback(server.stop)
        worker = Worker(tmp_path, {**server.env})
        stack.callback(worker.stop)
        worker.start()
        server.start()
        worker.wait_ready()
        with server.client() as client:
            answer = client.post(
                "/api/v2/extract",
                files={"file": ("note.txt", b"a note for the celery worker")},
                data={"output": "text"},
                headers={"X-Request-ID": "celery-trace-1"},
            )
        assert answer.status_code == 200, answer.text
        job_id = answer.headers["x-job-id"]
        spans = Traced(server, receiver, "").trace_of(job_id)
        pids = set(worker.pids())
        entry = worker.wait_for_event("job transition", job_id)
        # Every line JSON until the worker stops (Celery's signal handler then prints its
        # "Warm shutdown" notice, not a log line).
        lines = [line for line in worker.log.read_text().splitlines() if line]
    tree = render(spans)
    (root,) = span_tree(spans)
    assert root.name == "POST /api/v2/extract", tree
    submit = _only(spans, "job submit")
    run = _only(spans, "job run")
    record = _only(spans, "job record")
    assert run.parent_id == submit.span_id and record.parent_id == submit.span_id, tree
    assert run.pid in pids and record.pid in pids, (run.pid, record.pid, pids)
    assert any(child.name.startswith("UPDATE") for child in record.children), tree
    assert {"storage read", "operation extract", "storage write"} <= {
        child.name for child in run.children
    }, tree
    # Celery's instrumentation: the task published by the API and run by the worker.
    assert any(s.name.startswith("apply_async/") and s.pid == root.pid for s in spans), tree
    assert any(s.name.startswith("run/") and s.pid in pids for s in spans), tree
    # The worker's lines: JSON, with the job's request.
    assert entry["request_id"] == "celery-trace-1"
    assert all(line.startswith("{") for line in lines), lines


@pytest.mark.slow
@pytest.mark.parametrize(
    ("route", "document", "data", "engine"),
    [
        pytest.param(
            "/api/v2/convert",
            "office/word-sample.docx",
            {},
            "libreoffice convert",
            id="libreoffice",
        ),
        pytest.param(
            "/api/v2/video",
            "media/quicktime-metadata.mov",
            {"action": "probe"},
            "ffprobe run",
            id="ffmpeg",
        ),
    ],
)
def test_an_engine_call_is_a_span_of_its_operation(
    traced: Traced, route: str, document: str, data: dict[str, str], engine: str
) -> None:
    path = CORPUS / document
    with traced.client() as client:
        answer = client.post(route, files={"file": (path.name, path.read_bytes())}, data=data)
    assert answer.status_code == 200, answer.text
    spans = traced.trace_of(answer.headers["x-job-id"])
    tree = render(spans)
    span_tree(spans)
    by_id = {span.span_id: span for span in spans}
    calls = [span for span in spans if span.name == engine]
    assert calls, tree
    for call in calls:
        operation = by_id[call.parent_id]
        assert operation.name.startswith("operation "), tree
        assert by_id[operation.parent_id].name == "job run", tree
        assert call.status != 2, tree  # not ERROR
    if engine == "libreoffice convert":
        (call,) = calls
        assert call.attributes["docworker.target"] == "pdf"
        assert call.attributes["docworker.input.bytes"] == path.stat().st_size
        assert call.attributes["docworker.output.bytes"] > 1000
    else:
        assert all(call.attributes["docworker.exit_code"] == 0 for call in calls)
