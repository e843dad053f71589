"""A long PDF rendered by parts on two real worker processes: the same images as whole."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from unittest.mock import ANY

import pytest

from bench.scoring import corpus_root
from docworker.config import load_settings
from docworker.jobs.store import JobStatus
from docworker.jobs.worker import SECURITY_BLOB
from docworker.operations import get_operation, validate_params
from docworker.operations.base import InputFile, operation_context
from docworker.storage import BlobStore
from tests.integration.test_local_executor import Harness, _done

ARTICLE = corpus_root() / "pdf" / "multi-page-article.pdf"
pytestmark = pytest.mark.skipif(not ARTICLE.is_file(), reason="test corpus not present")


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    settings = load_settings(
        data_dir=tmp_path,
        executor={
            "workers": 2,
            "split_min_pages": 2,
            "split_parts": 3,
            "retry_delay": 0.1,
            "poll_interval": 0.1,
        },
        render={"split_min_pages": 2},
    )
    h = Harness(settings)
    h.executor.start()
    try:
        yield h
    finally:
        h.executor.stop()
        h.store.close()


def test_a_pdf_rendered_by_parts_equals_the_pdf_rendered_whole(
    harness: Harness, tmp_path: Path
) -> None:
    params = {"dpi": 50, "format": "jpeg"}
    record = harness.submit(ARTICLE, "render", **params)
    done = harness.wait_until(record.id, _done, timeout=120)
    assert done.status is JobStatus.SUCCEEDED, done.error
    parts = harness.store.parts_of(done.id)
    assert [(p.operation, p.params["pages"]) for p in parts] == [
        ("render", "1-2"),
        ("render", "3-4"),
        ("render", "5"),
    ]
    assert all(p.status is JobStatus.SUCCEEDED for p in parts)
    payload = harness.queue.result(done)

    operation = get_operation("render")
    workdir = tmp_path / "whole"
    workdir.mkdir()
    ctx = operation_context(harness.executor.settings, workdir=workdir)
    whole = operation.run(ctx, InputFile(ARTICLE, ARTICLE.name), validate_params(operation, params))
    assert {k: v for k, v in payload.items() if k not in {"artifacts", "security"}} == (
        whole.payload
    )
    # The input was scanned once, before the split; the parts were not scanned again.
    assert payload["security"] == {
        "detected": {"mime": "application/pdf", "format": "pdf"},
        "claimed": {"name": ARTICLE.name, "mime": "application/pdf"},
        "findings": ANY,
    }
    assert harness.blobs.exists(BlobStore.result_uri(done.id, SECURITY_BLOB))
    assert all("security" not in harness.queue.result(part) for part in parts)
    assert payload["artifacts"] == [
        {"name": f"page-000{n}.jpg", "mime": "image/jpeg", "size": ANY} for n in range(1, 6)
    ]
    for artifact in whole.artifacts:
        _entry, stream = harness.queue.artifact(done, artifact.name)
        with stream:
            assert stream.read() == artifact.path.read_bytes()
