"""Admission with a real job store and blob store: the engine a job needs, the engines'
queue bound, and the free-disk floor."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.scoring import corpus_root
from docworker.auth import Principal
from docworker.config import Settings, load_settings
from docworker.errors import InsufficientStorage, QueueFull
from docworker.jobs.admission import Admission, DiskFloor
from docworker.jobs.events import JobEvents
from docworker.jobs.queue import JobInput, JobQueue
from docworker.jobs.store import JobStore
from docworker.operations import get_operation, validate_params
from docworker.operations.base import Engine
from docworker.sealing import SecretKeys
from docworker.storage import BlobStore

CORPUS = corpus_root()
OPEN = Principal.open()
pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus not found at {CORPUS}")


def _queue(settings: Settings) -> JobQueue:
    store = JobStore(settings.database_url)
    store.migrate()
    blobs = BlobStore(settings.storage_url)
    admission = Admission(settings, store, blobs)
    keys = SecretKeys.from_settings(settings)
    return JobQueue(store, blobs, None, JobEvents(), max_attempts=1, keys=keys, admission=admission)


def _input(queue: JobQueue, path: Path, name: str | None = None) -> JobInput:
    return JobInput(queue.blobs.put_file(path), name=name or path.name)


@pytest.mark.parametrize(
    ("operation", "params", "corpus_file", "engine"),
    [
        ("extract", {}, "office/legacy-word.doc", Engine.LIBREOFFICE),
        ("extract", {}, "office/handbook-1p.docx", None),
        ("chunk", {}, "office/legacy-excel.xls", Engine.LIBREOFFICE),
        ("convert", {"to": "pdf"}, "office/handbook-1p.docx", Engine.LIBREOFFICE),
        ("convert", {"to": "markdown"}, "office/handbook-1p.docx", None),
        ("convert", {"to": "markdown"}, "office/legacy-powerpoint.ppt", Engine.LIBREOFFICE),
        ("render", {}, "office/handbook-1p.docx", Engine.LIBREOFFICE),
        ("render", {}, "pdf/minimal-document.pdf", None),
        ("ocr", {}, "images/ocr-text.png", None),
        ("screenshot", {}, "pdf/minimal-document.pdf", Engine.CHROMIUM),
        ("video", {"action": "probe"}, "media/video.mp4", None),
    ],
)
def test_the_engine_a_job_needs_is_read_from_the_content(
    tmp_path: Path, operation: str, params: dict[str, str], corpus_file: str, engine: Engine | None
) -> None:
    queue = _queue(load_settings(data_dir=tmp_path))
    assert queue.admission is not None
    op = get_operation(operation)
    # The name says nothing: the content decides.
    job_input = _input(queue, CORPUS / corpus_file, name="upload.bin")
    found = queue.admission.admit(op, validate_params(op, params), job_input.blob)
    assert found is engine
    record, _ = queue.submit(operation, params, job_input, caller=OPEN)
    assert (record.input or {}).get("engine") == (engine.value if engine else None)


def test_a_full_engine_refuses_new_jobs_with_retry_after(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path, executor={"workers": 1}, libreoffice={"max_queue": 1}
    )
    queue = _queue(settings)
    legacy = _input(queue, CORPUS / "office" / "legacy-word.doc")
    first, _ = queue.submit("convert", {"to": "pdf"}, legacy, caller=OPEN)
    queue.submit("extract", {}, legacy, caller=OPEN)  # one running on the worker, one waiting
    with pytest.raises(QueueFull, match=r"libreoffice\.max_queue") as refused:
        queue.submit("render", {}, legacy, caller=OPEN)
    assert refused.value.fields["retry_after"] > 0
    # Work for other engines, or none, is still taken.
    queue.submit(
        "screenshot", {}, _input(queue, CORPUS / "pdf" / "minimal-document.pdf"), caller=OPEN
    )
    queue.submit("extract", {}, _input(queue, CORPUS / "office" / "handbook-1p.docx"), caller=OPEN)
    # A job that ends makes room.
    queue.store.request_cancel(first.id)
    queue.submit("render", {}, legacy, caller=OPEN)


def test_under_the_disk_floor_no_work_is_taken(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, server={"min_free_disk_mb": 10**9})
    queue = _queue(settings)
    text = _input(queue, CORPUS / "text" / "plain-utf8.txt")
    with pytest.raises(InsufficientStorage, match="min_free_disk_mb") as refused:
        queue.submit("extract", {}, text, caller=OPEN)
    assert refused.value.fields["retry_after"] == settings.server.disk_retry_after
    status = DiskFloor.of(settings).status()
    assert status["status"] == "low" and status["floor_mb"] == 10**9
    assert all(disk["free_mb"] > 0 for disk in status["disks"])
    assert DiskFloor.of(load_settings(data_dir=tmp_path)).status()["status"] == "up"


def test_the_disk_floor_is_judged_on_a_recent_reading_without_reading_the_disk(
    tmp_path: Path,
) -> None:
    """The intake guard judges the floor on the event loop from the last reading, and
    reads the disks (in a thread) only when there is none recent."""
    floor = DiskFloor.of(load_settings(data_dir=tmp_path, server={"min_free_disk_mb": 10**9}))
    assert floor.check_read() is False  # nothing read yet: check() must read
    with pytest.raises(InsufficientStorage):
        floor.check()
    with pytest.raises(InsufficientStorage):
        floor.check_read()  # the same reading, judged again
    roomy = DiskFloor.of(load_settings(data_dir=tmp_path))
    roomy.check()
    assert roomy.check_read() is True
    off = DiskFloor.of(load_settings(data_dir=tmp_path, server={"min_free_disk_mb": 0}))
    assert off.check_read() is True
