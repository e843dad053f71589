"""Prometheus metrics end to end (docs/observability.md): a real server with keys on and
one worker process replaced after every job, real jobs on corpus files, real scrapes.

* Cardinality is bounded by design: requests with many distinct file names, job ids,
  tenants and unknown paths leave no job id, file name or raw path in any label, and a
  second round of new distinct requests adds no series.
* The worker processes' metrics reach the API's ``/metrics``, and stay there once the
  process that recorded them was recycled.
* On a Celery fleet (an API and a ``docworker worker`` on Redis): a running job cancelled
  is counted once over the API's and the worker's scrapes; the worker's liveness path.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.scoring import corpus_root
from tests.celery_worker import Worker, delete_queues, queue_prefix
from tests.e2e.server import Server, free_port
from tests.e2e.test_auth import SECRET, _as

CORPUS = corpus_root()
TEXT = CORPUS / "text" / "plain-utf8.txt"
OCR_IMAGE = CORPUS / "images" / "ocr-text.png"
TENANTS = ("t0", "t1", "t2")
HTTP_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER"}
#: What an id or a random segment looks like (a job id, a uuid, a 32-digit hex).
ID_LIKE = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}|[0-9a-f]{20,}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with Server(
        tmp_path_factory.mktemp("metrics"),
        DOCWORKER_AUTH__ENABLED="true",
        DOCWORKER_AUTH__SECRET=SECRET,
        DOCWORKER_USAGE__METRICS_BY_KEY="true",
        DOCWORKER_EXECUTOR__WORKERS="1",
        DOCWORKER_EXECUTOR__JOBS_PER_WORKER="1",
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def keys(server: Server) -> dict[str, str]:
    made = {"ops": server.keys("create", "--tenant", "ops", "--scope", "admin")}
    for tenant in TENANTS:
        made[tenant] = server.keys(
            "create", "--tenant", tenant, "--scope", "read", "--scope", "submit"
        )
    return made


def _key_id(token: str) -> str:
    return token.removeprefix("dw_").split(".", 1)[0]


def _until(check: Callable[[], Any], timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("the condition never held")


def _submit(client: httpx.Client, key: str, path: Path, name: str, operation: str) -> str:
    response = client.post(
        "/api/v2/jobs",
        files={"file": (name, path.read_bytes())},
        data={"operation": operation, "params": json.dumps({})},
        headers=_as(key),
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _ended(client: httpx.Client, key: str, job_id: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        job: dict[str, Any] = client.get(f"/api/v2/jobs/{job_id}", headers=_as(key)).json()
        return job if job["status"] not in {"queued", "running"} else None

    found: dict[str, Any] = _until(ended)
    return found


def _scrape(client: httpx.Client, admin: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample of the service's metrics, by sample name."""
    response = client.get("/metrics", headers={"Accept": "text/plain"} | _as(admin))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name.startswith("docworker_"):
                samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def _series(samples: dict[str, list[tuple[dict[str, str], float]]]) -> set[tuple[str, ...]]:
    return {
        (name, *sorted(f"{k}={v}" for k, v in labels.items()))
        for name, found in samples.items()
        for labels, _ in found
    }


def _round(client: httpx.Client, keys: dict[str, str], jobs: int) -> tuple[list[str], list[str]]:
    """Distinct requests: jobs of every tenant under new file names, reads of them and of
    unknown jobs, unknown paths and an unknown method. Returns the job ids and the names
    and path segments used."""
    used: list[str] = []
    ids = []
    for index in range(jobs):
        tenant = TENANTS[index % len(TENANTS)]
        name = f"report-{uuid.uuid4().hex[:12]}.txt"
        used.append(name)
        ids.append(_submit(client, keys[tenant], TEXT, name, "extract"))
    for index, job_id in enumerate(ids):
        key = keys[TENANTS[index % len(TENANTS)]]
        assert _ended(client, key, job_id)["status"] == "succeeded"
        assert client.get(f"/api/v2/jobs/{job_id}/result", headers=_as(key)).is_success
    for _ in range(5):
        segment = uuid.uuid4().hex
        used.append(segment)
        missing = client.get(f"/api/v2/jobs/{segment}", headers=_as(keys["t0"]))
        assert missing.status_code == 404
        unknown = client.get(f"/no/such/{segment}/path.pdf", headers=_as(keys["t1"]))
        assert unknown.status_code == 404
        assert client.get(f"/no/such/{segment}/path.pdf").status_code == 401  # no key
        assert client.request("PROPFIND", f"/coffee/{segment}").status_code in (401, 404, 405)
    return ids, used


def test_labels_hold_no_ids_names_or_paths_and_series_stay_bounded(
    server: Server, keys: dict[str, str]
) -> None:
    with server.client() as client:
        first_ids, first_used = _round(client, keys, jobs=9)
        _scrape(client, keys["ops"])  # a scrape is a request too: its series made
        before = _scrape(client, keys["ops"])
        second_ids, second_used = _round(client, keys, jobs=6)
        after = _scrape(client, keys["ops"])

    values = {value for found in after.values() for labels, _ in found for value in labels.values()}
    for forbidden in [*first_ids, *second_ids, *first_used, *second_used]:
        assert not any(forbidden in value for value in values), forbidden
    assert not any(ID_LIKE.search(value) for value in values), sorted(values)
    routes = {labels["route"] for labels, _ in after["docworker_http_requests_total"]}
    assert "unmatched" in routes and "/api/v2/jobs/{job_id}" in routes
    assert all(route == "unmatched" or route.startswith("/") for route in routes)
    assert not any("/no/such" in route or "/coffee" in route for route in routes)
    methods = {labels["method"] for labels, _ in after["docworker_http_requests_total"]}
    assert methods <= HTTP_METHODS and "OTHER" in methods
    # The tenants and keys are those configured, nothing a request made up.
    usage = after["docworker_usage_jobs_total"]
    assert {labels["tenant"] for labels, _ in usage} == set(TENANTS)
    assert {labels["key_id"] for labels, _ in usage} == {_key_id(keys[t]) for t in TENANTS}
    # New distinct requests of the same kinds made no new series.
    assert _series(after) == _series(before)
    assert len(_series(after)) < 600


def test_a_worker_process_counts_survive_its_recycling(
    server: Server, keys: dict[str, str]
) -> None:
    with server.client() as client:
        samples = _scrape(client, keys["ops"])
        calls = _value(samples, "docworker_engine_calls_total", engine="tesseract", outcome="ok")
        recycled = _value(samples, "docworker_worker_restarts_total", reason="recycled")
        job = _ended(client, keys["t1"], _submit(client, keys["t1"], OCR_IMAGE, "scan.png", "ocr"))
        assert job["status"] == "succeeded", job
        # One worker, replaced after each job: the one that ran Tesseract is gone.
        _until(
            lambda: (
                _value(
                    _scrape(client, keys["ops"]),
                    "docworker_worker_restarts_total",
                    reason="recycled",
                )
                > recycled
            )
        )
        samples = _scrape(client, keys["ops"])
    assert (
        _value(samples, "docworker_engine_calls_total", engine="tesseract", outcome="ok")
        == calls + 1
    )
    assert _value(samples, "docworker_engine_call_duration_seconds_count", engine="tesseract") >= 1
    assert _value(samples, "docworker_jobs_started_total", operation="ocr") >= 1
    assert (
        _value(samples, "docworker_jobs_finished_total", operation="ocr", status="succeeded") >= 1
    )
    assert _value(samples, "docworker_job_duration_seconds_count", operation="ocr") >= 1
    # The ended processes' files were folded into the archive: one file per live process.
    folder = next((server.data_dir / "metrics").glob("api-*"))
    assert (folder / "counter_archive.db").exists()
    assert len(list(folder.glob("counter_[0-9]*.db"))) <= 4  # API, worker, template at most


def _value(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **want: str) -> float:
    return sum(
        value
        for labels, value in samples.get(name, [])
        if all(labels.get(k) == v for k, v in want.items())
    )


@pytest.mark.redis
def test_docworker_worker_serves_the_metrics_of_its_processes(
    tmp_path: Path, redis_url: str
) -> None:
    """``docworker worker`` with a metrics port: a job run in a pool process that Celery
    replaced after it (one task per process) shows in the worker's own /metrics."""
    port = free_port()
    env = {
        "DOCWORKER_EXECUTOR__KIND": "celery",
        "DOCWORKER_CELERY__BROKER_URL": redis_url,
        "DOCWORKER_CELERY__QUEUE_PREFIX": queue_prefix(),
        "DOCWORKER_EVENTS__REDIS_URL": redis_url,
        "DOCWORKER_CELERY__MAX_TASKS_PER_CHILD": "1",
    }
    with contextlib.ExitStack() as closing:
        server = Server(tmp_path, **env)
        closing.callback(delete_queues, server.env)
        closing.callback(server.stop)
        worker = Worker(
            tmp_path,
            dict(server.env)
            | {
                "DOCWORKER_METRICS__WORKER_PORT": str(port),
                "DOCWORKER_METRICS__WORKER_HOST": "127.0.0.1",
            },
            concurrency=1,
        )
        closing.callback(worker.stop)
        worker.start()
        server.start()
        worker.wait_ready()
        before = worker.pids()
        with server.client() as client:
            response = client.post(
                "/api/v2/jobs",
                files={"file": ("scan.png", OCR_IMAGE.read_bytes())},
                data={"operation": "ocr", "params": "{}"},
            )
            assert response.status_code == 202, response.text
            job_id = response.json()["id"]

            def ended() -> dict[str, Any] | None:
                job: dict[str, Any] = client.get(f"/api/v2/jobs/{job_id}").json()
                return job if job["status"] not in {"queued", "running"} else None

            assert _until(ended)["status"] == "succeeded"
        _until(lambda: worker.pids() and set(worker.pids()).isdisjoint(before))

        def scraped() -> dict[str, list[tuple[dict[str, str], float]]]:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
            found: dict[str, list[tuple[dict[str, str], float]]] = {}
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    found.setdefault(sample.name, []).append((sample.labels, sample.value))
            return found

        samples = _until(
            lambda: (
                (found := scraped())
                and _value(found, "docworker_engine_calls_total", engine="tesseract", outcome="ok")
                and found
            )
        )
        assert _value(samples, "docworker_jobs_started_total", operation="ocr") == 1
        finished = _value(
            samples, "docworker_jobs_finished_total", operation="ocr", status="succeeded"
        )
        assert finished == 1
        assert _value(samples, "docworker_job_duration_seconds_count", operation="ocr") == 1
        assert _value(samples, "docworker_usage_pages_total", operation="ocr") >= 1
        assert _value(samples, "docworker_workers_busy") == 0


HUGE_PDF = CORPUS / "pdf" / "huge-619-pages.pdf"


@pytest.mark.redis
def test_a_job_cancelled_on_a_celery_fleet_is_counted_once_over_api_and_worker(
    tmp_path: Path, redis_url: str
) -> None:
    """A running job cancelled through the API and stopped by the worker's watch: its end
    is in ``docworker_jobs_finished_total`` once, summed over the API's and the worker's
    scrapes (each counts only the ends it commits). The worker's liveness path answers
    while it runs and is gone with it."""
    port = free_port()
    env = {
        "DOCWORKER_EXECUTOR__KIND": "celery",
        "DOCWORKER_CELERY__BROKER_URL": redis_url,
        "DOCWORKER_CELERY__QUEUE_PREFIX": queue_prefix(),
        "DOCWORKER_EVENTS__REDIS_URL": redis_url,
    }
    with contextlib.ExitStack() as closing:
        server = Server(tmp_path, **env)
        closing.callback(delete_queues, server.env)
        closing.callback(server.stop)
        worker = Worker(
            tmp_path,
            dict(server.env)
            | {
                "DOCWORKER_METRICS__WORKER_PORT": str(port),
                "DOCWORKER_METRICS__WORKER_HOST": "127.0.0.1",
            },
            concurrency=1,
        )
        closing.callback(worker.stop)
        worker.start()
        server.start()
        worker.wait_ready()
        alive = httpx.get(f"http://127.0.0.1:{port}/favicon.ico", timeout=10)
        assert alive.status_code == 200 and alive.content == b""

        def cancelled(text: str) -> float:
            return sum(
                sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
                if sample.name == "docworker_jobs_finished_total"
                and sample.labels == {"operation": "ocr", "status": "cancelled"}
            )

        with server.client() as client:
            response = client.post(
                "/api/v2/jobs",
                files={"file": (HUGE_PDF.name, HUGE_PDF.read_bytes())},
                data={"operation": "ocr", "params": "{}"},
            )
            assert response.status_code == 202, response.text
            job_id = response.json()["id"]
            _until(lambda: client.get(f"/api/v2/jobs/{job_id}").json()["status"] == "running")
            assert client.delete(f"/api/v2/jobs/{job_id}").status_code < 300
            _until(lambda: client.get(f"/api/v2/jobs/{job_id}").json()["status"] == "cancelled")

            def both() -> tuple[float, float]:
                api = client.get("/metrics", headers={"Accept": "text/plain"}).text
                own = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
                return cancelled(api), cancelled(own)

            # The end is counted after its commit; give a scrape time to see it.
            counts = _until(lambda: found if sum(found := both()) else None, timeout=30)
            time.sleep(1)
            assert sum(both()) == sum(counts) == 1, counts
        worker.stop()
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/favicon.ico", timeout=5)
