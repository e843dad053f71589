"""What a flag decides is written into the job at submission, so the result cache keys a
result on the engine that really made it: a real worker pool, cache and HTML → PDF."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from docworker.auth import Principal
from docworker.config import FlagDefinition, FlagSettings, load_settings
from docworker.flags import HTML_ENGINE_FLAG, Flags
from docworker.jobs.events import JobEvents
from docworker.jobs.local import LocalExecutor
from docworker.jobs.queue import JobInput, JobQueue
from docworker.jobs.store import TERMINAL_STATUSES, JobRecord, JobStatus, JobStore
from docworker.result_cache import ResultCache
from docworker.sealing import SecretKeys
from docworker.storage import BlobStore

PAGE = b"<!doctype html><html><body><h1>Flags</h1><p>One page.</p></body></html>"
CALLER = Principal(tenant="acme", key_id="k1", scopes=frozenset({"read", "submit"}))


def _engine(default: str) -> FlagSettings:
    variants = {"weasyprint": "weasyprint", "chromium": "chromium"}
    flag = FlagDefinition(variants=variants, default=default)
    return FlagSettings(definitions={HTML_ENGINE_FLAG: flag})


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        settings = load_settings(data_dir=tmp_path, executor={"workers": 1, "poll_interval": 0.1})
        self.store = JobStore(settings.database_url)
        self.store.migrate()
        self.blobs = BlobStore(settings.storage_url)
        keys = SecretKeys.from_settings(settings)
        self.executor = LocalExecutor(settings, self.store, JobEvents(), keys=keys)
        self.flags = Flags(_engine("weasyprint"))
        self.queue = JobQueue(
            self.store,
            self.blobs,
            self.executor,
            self.executor.events,
            max_attempts=1,
            keys=keys,
            cache=ResultCache(settings),
            flags=self.flags,
        )
        self.page = tmp_path / "page.html"
        self.page.write_bytes(PAGE)

    def convert(self, **params: object) -> JobRecord:
        blob = self.blobs.put_file(self.page)
        record, _ = self.queue.submit(
            "convert", {"to": "pdf", **params}, JobInput(blob, name="page.html"), caller=CALLER
        )
        deadline = time.monotonic() + 90
        while record.status not in TERMINAL_STATUSES:
            assert time.monotonic() < deadline, record
            time.sleep(0.05)
            record = self.store.get(record.id)
        assert record.status is JobStatus.SUCCEEDED, record.error
        return record


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    h.executor.start()
    try:
        yield h
    finally:
        h.executor.stop()
        h.store.close()


def test_the_engine_a_flag_chose_is_in_the_params_and_the_cache_key(harness: Harness) -> None:
    first = harness.convert()
    assert first.params["engine"] == "weasyprint" and not first.cached
    assert harness.queue.result(first)["engine"] == "weasyprint"
    # The flag now gives chromium (as a reload would): the same request is new work,
    # not the result weasyprint made.
    harness.flags.reload(_engine("chromium"))
    second = harness.convert()
    assert second.params["engine"] == "chromium" and not second.cached
    assert harness.queue.result(second)["engine"] == "chromium"
    # Each result is found again under the engine that made it.
    assert harness.convert(engine="weasyprint").cached
    again = harness.convert()
    assert again.cached and again.params["engine"] == "chromium"
