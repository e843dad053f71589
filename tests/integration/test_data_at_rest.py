"""Data at rest in the job store and the blob folder, on SQLite and PostgreSQL: sealed
parameters and idempotency, deleting a job with its parts, re-sealing every job's
secrets (``docworker secrets rotate``), retention of split jobs, private files."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from docworker.api.app import build_services
from docworker.auth import Principal
from docworker.cli import app
from docworker.config import load_settings
from docworker.errors import Conflict, NotFound
from docworker.jobs.queue import JobInput, JobQueue
from docworker.jobs.retention import purge_expired
from docworker.jobs.store import JobStatus, JobStore, NewJob
from docworker.jobs.webhooks import WebhookRequest
from docworker.sealing import SecretKeys, is_sealed, new_key
from docworker.storage import BlobStore
from tests.integration.test_job_store import add, split_job

OPEN = Principal.open()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def jobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    """A migrated job store on SQLite, then on PostgreSQL."""
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_db_url")
    job_store = JobStore(url)
    job_store.migrate()
    yield job_store
    job_store.close()


@pytest.fixture(autouse=True)
def _umask() -> Iterator[None]:
    """The service restricts its process's umask; the test process gets its own back."""
    before = os.umask(0o022)
    os.umask(before)
    yield
    os.umask(before)


def _queue(job_store: JobStore, tmp_path: Path, keys: SecretKeys) -> tuple[JobQueue, JobInput]:
    blobs = BlobStore(f"file://{tmp_path / 'blobs'}")
    blob = blobs.put_stream(io.BytesIO(b"%PDF-1.7 not really"))
    queue = JobQueue(job_store, blobs, None, None, max_attempts=3, keys=keys)  # type: ignore[arg-type]
    return queue, JobInput(blob, name="a.pdf")


def test_a_repeated_request_is_known_by_its_sealed_password(jobs: JobStore, tmp_path: Path) -> None:
    queue, job_input = _queue(jobs, tmp_path, SecretKeys([new_key()]))
    params = {"output": "text", "password": "Pass-One"}
    first, created = queue.submit("extract", params, job_input, caller=OPEN, idempotency_key="k1")
    again, created_again = queue.submit(
        "extract", params, job_input, caller=OPEN, idempotency_key="k1"
    )
    assert (created, created_again) == (True, False)
    assert again.id == first.id
    assert is_sealed(first.params["password"])
    with pytest.raises(Conflict):
        queue.submit(
            "extract",
            params | {"password": "Pass-Two"},
            job_input,
            caller=OPEN,
            idempotency_key="k1",
        )


def test_a_job_is_deleted_with_its_parts_once_all_have_ended(jobs: JobStore) -> None:
    parent, parts = split_job(jobs, parts=2)
    assert jobs.delete_job(parent.id) is None  # its parts are queued
    with pytest.raises(Conflict, match="is a part of job"):
        jobs.delete_job(parts[0].id)
    jobs.request_cancel(parent.id)
    deleted = jobs.delete_job(parent.id)
    assert deleted is not None
    assert sorted(r.id for r in deleted) == sorted([parent.id, *(p.id for p in parts)])
    for record in deleted:
        with pytest.raises(NotFound):
            jobs.get(record.id)
    with pytest.raises(NotFound):
        jobs.delete_job(parent.id)
    (alone,) = add(jobs)
    assert jobs.delete_job(alone.id) is None
    assert jobs.get(alone.id).status is JobStatus.QUEUED


def test_rewrite_params_walks_every_job_in_batches(jobs: JobStore) -> None:
    extracts = add(jobs, 5)
    add(jobs, 2, operation="ocr")
    changed = jobs.rewrite_params(
        lambda op, params: params | {"seen": True} if op == "extract" else None, batch=2
    )
    assert changed == 5
    assert all(jobs.get(job.id).params["seen"] is True for job in extracts)
    ocr, _ = jobs.list(operation="ocr")
    assert all("seen" not in record.params for record in ocr)


def test_retention_removes_split_jobs_with_their_parts_results(
    jobs: JobStore, tmp_path: Path
) -> None:
    blobs = BlobStore(f"file://{tmp_path / 'blobs'}")
    blob = blobs.put_stream(io.BytesIO(b"an input"))
    spec = {"uri": blob.uri, "sha256": blob.sha256, "size": blob.size}
    parent, parts = split_job(jobs, parts=2, input=spec)
    for job in (parent, *parts):
        blobs.write_bytes(BlobStore.result_uri(job.id, "page-1.png"), b"image")
    jobs.request_cancel(parent.id)
    assert purge_expired(jobs, blobs, retention=0) == 3
    assert not list((tmp_path / "blobs" / "results").iterdir())
    assert not blobs.exists(blob.uri)


def test_rotate_seals_every_stored_secret_with_the_first_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = new_key(), new_key()
    monkeypatch.setenv("DOCWORKER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DOCWORKER_SECRETS__KEYS", old)
    settings = load_settings()
    job_store = JobStore(settings.database_url)
    job_store.migrate()
    queue, job_input = _queue(job_store, tmp_path, SecretKeys.from_settings(settings))
    sealed, _ = queue.submit("pdf", {"action": "decrypt", "password": "p1"}, job_input, caller=OPEN)
    # A job an older version stored with its password in clear.
    clear, _ = job_store.create(
        NewJob(operation="extract", params={"password": "p2"}, input=job_input.as_dict())
    )
    plain, _ = queue.submit("extract", {"output": "text"}, job_input, caller=OPEN)
    hook = WebhookRequest("https://93.184.215.14/hook", secret="whsec_" + "A" * 40)
    hooked, _ = queue.submit("extract", {}, job_input, caller=OPEN, webhook=hook)
    runner = CliRunner()

    monkeypatch.setenv("DOCWORKER_SECRETS__KEYS", f"{new},{old}")
    rotated = runner.invoke(app, ["secrets", "rotate"])
    assert rotated.exit_code == 0, rotated.output
    assert rotated.output.startswith("2 jobs")
    only_new = SecretKeys([new])
    assert only_new.open(job_store.get(sealed.id).params["password"]) == "p1"
    assert only_new.open(job_store.get(clear.id).params["password"]) == "p2"
    assert job_store.get(plain.id).params == plain.params  # nothing secret: left alone
    assert "1 jobs had their webhook secret" in rotated.output
    assert only_new.open(job_store.get(hooked.id).webhook["secret"]) == hook.secret
    again = runner.invoke(app, ["secrets", "rotate"]).output
    assert again.startswith("0 jobs") and "0 jobs had their webhook secret" in again

    monkeypatch.setenv("DOCWORKER_SECRETS__KEYS", old)
    refused = runner.invoke(app, ["secrets", "rotate"])
    assert refused.exit_code == 1
    assert "no longer has" in refused.output
    job_store.close()
    fresh = runner.invoke(app, ["secrets", "new-key"])
    assert SecretKeys([fresh.output.strip()]).open(SecretKeys([fresh.output.strip()]).seal("x"))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_service_makes_what_it_keeps_private(tmp_path: Path) -> None:
    # Left by an earlier version: readable by everyone.
    data = tmp_path / "data"
    (data / "blobs" / "inputs").mkdir(parents=True, mode=0o755)
    data.chmod(0o755)
    earlier = JobStore(f"sqlite:///{data / 'docworker.db'}")
    earlier.migrate()
    earlier.close()
    (data / "docworker.db").chmod(0o644)

    services = build_services(load_settings(data_dir=data), start_executor=False)
    try:
        services.store.create(NewJob(operation="extract", params={}, input=None))
        blob = services.blobs.put_stream(io.BytesIO(b"a new input"))
        database = [data / f"docworker.db{suffix}" for suffix in ("", "-wal", "-shm")]
        assert {_mode(path) for path in database} == {0o600}
        assert _mode(data) == _mode(data / "blobs") == 0o700
        assert _mode(data / "secret.key") == 0o600
        result = services.blobs.write_bytes(BlobStore.result_uri("job-1", "result.json"), b"{}")
        for uri in (blob.uri, result.uri):
            path = data / "blobs" / uri.removeprefix("blob://")
            assert _mode(path) == 0o600
        assert _mode(data / "blobs" / "results" / "job-1") == 0o700
    finally:
        services.store.close()
