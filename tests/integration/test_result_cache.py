"""The result cache on the job path: real worker processes keep results, a submission
that matches is a job served from the cache, and what must not be cached is not."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
import redis

from bench.scoring import corpus_root
from docworker.auth import Principal
from docworker.config import Settings, load_settings
from docworker.jobs.audit import AuditFilter, AuditLog
from docworker.jobs.events import JobEvents
from docworker.jobs.local import LocalExecutor
from docworker.jobs.queue import JobInput, JobQueue
from docworker.jobs.retention import purge_expired
from docworker.jobs.store import TERMINAL_STATUSES, JobRecord, JobStatus, JobStore
from docworker.result_cache import CACHE_KEY, ResultCache
from docworker.sealing import SecretKeys
from docworker.storage import BlobStore

CORPUS = corpus_root()
PDF = CORPUS / "pdf" / "minimal-document.pdf"
ENCRYPTED = CORPUS / "pdf" / "encrypted-password-1234.pdf"
OPEN = Principal.open()


class Harness:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = JobStore(settings.database_url)
        self.store.migrate()
        self.blobs = BlobStore(settings.storage_url)
        self.keys = SecretKeys.from_settings(settings)
        self.executor = LocalExecutor(settings, self.store, JobEvents(), keys=self.keys)
        self.cache = ResultCache(settings)
        self.queue = JobQueue(
            self.store,
            self.blobs,
            self.executor,
            self.executor.events,
            max_attempts=1,
            keys=self.keys,
            cache=self.cache,
        )

    def submit(
        self, path: Path, *, caller: Principal = OPEN, use_cache: bool = True, **params: object
    ) -> JobRecord:
        blob = self.blobs.put_file(path)
        record, _ = self.queue.submit(
            "extract",
            dict(params),
            JobInput(blob, name=path.name),
            caller=caller,
            use_cache=use_cache,
        )
        return record

    def finished(self, job_id: str, timeout: float = 60.0) -> JobRecord:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = self.store.get(job_id)
            if record.status in TERMINAL_STATUSES:
                return record
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} did not end")


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(load_settings(data_dir=tmp_path, executor={"workers": 1, "poll_interval": 0.1}))
    h.executor.start()
    try:
        yield h
    finally:
        h.executor.stop()
        h.store.close()


def test_a_second_submission_is_served_from_the_cache(harness: Harness) -> None:
    cold = harness.finished(harness.submit(PDF, output="markdown").id)
    assert cold.status is JobStatus.SUCCEEDED and not cold.cached
    assert cold.input is not None and cold.input[CACHE_KEY].startswith("extract:")

    hit = harness.submit(PDF, output="markdown")
    # Ended as it was submitted, on no worker.
    assert hit.status is JobStatus.SUCCEEDED and hit.cached
    assert hit.attempts == 0 and hit.worker is None and hit.id != cold.id
    assert harness.queue.result(hit) == harness.queue.result(cold)
    assert hit.pages == cold.pages
    # The job owns its copy: deleting the first job's results leaves it whole.
    harness.blobs.delete(BlobStore.results_of(cold.id))
    assert harness.queue.result(hit)["content"]
    events, _ = AuditLog(harness.store).list(AuditFilter(operation="extract"))
    assert [e.detail for e in events if e.job_id == hit.id] == [{"attempts": 0, "cached": True}]

    # Other parameters are another result.
    other = harness.submit(PDF, output="text")
    assert other.status is JobStatus.QUEUED and not other.cached
    harness.finished(other.id)


def test_cache_false_neither_answers_nor_keeps(harness: Harness) -> None:
    harness.finished(harness.submit(PDF, output="html").id)
    bypass = harness.submit(PDF, output="html", use_cache=False)
    assert bypass.status is JobStatus.QUEUED and not bypass.cached
    assert bypass.input is not None and CACHE_KEY not in bypass.input
    assert harness.finished(bypass.id).status is JobStatus.SUCCEEDED


def test_failed_results_and_other_tenants_are_not_served(harness: Harness, tmp_path: Path) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\n" + b"\x00 not a pdf body " * 64)
    failed = harness.finished(harness.submit(broken, output="text").id)
    assert failed.status is JobStatus.FAILED
    again = harness.submit(broken, output="text")
    assert again.status is JobStatus.QUEUED and not again.cached
    harness.finished(again.id)

    alpha = Principal(tenant="alpha", key_id=None, scopes=frozenset({"submit", "read"}))
    beta = Principal(tenant="beta", key_id=None, scopes=frozenset({"submit", "read"}))
    harness.finished(harness.submit(ENCRYPTED, caller=alpha, password="1234").id)
    assert harness.submit(ENCRYPTED, caller=alpha, password="1234").cached
    # Another tenant with the same bytes and password: its own entry, not alpha's.
    assert not harness.finished(harness.submit(ENCRYPTED, caller=beta, password="1234").id).cached
    # The wrong password is another key: it runs, and fails on its own.
    wrong = harness.submit(ENCRYPTED, caller=alpha, password="nope")
    assert not wrong.cached
    assert harness.finished(wrong.id).status is JobStatus.FAILED


def test_deleting_a_job_forgets_its_result(harness: Harness) -> None:
    harness.finished(harness.submit(PDF, output="json").id)
    served = harness.submit(PDF, output="json")
    assert served.cached
    anyio.run(harness.queue.purge, served.id, OPEN, 5.0)
    # The entry went with the job that was answered from it: the next one runs.
    again = harness.submit(PDF, output="json")
    assert not again.cached
    assert harness.finished(again.id).status is JobStatus.SUCCEEDED
    assert harness.submit(PDF, output="json").cached
    assert purge_expired(harness.store, harness.blobs, retention=0, cache=harness.cache) >= 2
    assert not harness.submit(PDF, output="json").cached


@pytest.mark.redis
def test_workers_keep_results_in_redis(tmp_path: Path, redis_url: str) -> None:
    prefix = f"test-cache:{uuid.uuid4().hex}"
    settings = load_settings(
        data_dir=tmp_path,
        executor={"workers": 1, "poll_interval": 0.1},
        cache={"url": redis_url, "key_prefix": prefix},
    )
    h = Harness(settings)
    h.executor.start()
    try:
        cold = h.finished(h.submit(PDF, output="text").id)
        assert cold.status is JobStatus.SUCCEEDED and not cold.cached
        hit = h.submit(PDF, output="text")
        assert hit.cached and h.queue.result(hit) == h.queue.result(cold)
        shared = {tier.tier: tier for tier in h.cache.stats()}["redis"]
        assert (shared.entries, shared.hits) == (1, 1)
        assert not (tmp_path / "result-cache").exists()
    finally:
        h.executor.stop()
        h.store.close()
        h.cache.delete("")
        h.cache.close()
        client = redis.Redis.from_url(redis_url)
        leftover = list(client.scan_iter(f"{prefix}:*"))
        if leftover:
            client.delete(*leftover)
        client.close()
