"""The dead-letter routes with API keys on: a tenant sees, retries and replays only its
own dead jobs, with the scopes it holds.

The app runs in process on a real job store, without an executor: the dead jobs are
made in the store the way the executor ends them, and a job queued again stays queued.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from docworker.api.app import create_app
from docworker.api.deps import Services
from docworker.config import load_settings
from docworker.jobs.store import JobRecord, NewJob

SECRET = "k7Hq2Lx9Vd3Rt8Wz1Mb6Np4Fs0Gc5Jy7Ae2Ku9"
CRASH = {"code": "engine-failed", "detail": "LibreOffice exited during the conversion"}
INPUT = {"uri": "blob://inputs/" + "0" * 64, "sha256": "0" * 64, "size": 1, "name": "a.docx"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = load_settings(
        data_dir=tmp_path, auth={"enabled": True, "secret": SECRET}, executor={"replay_max": 5}
    )
    with TestClient(create_app(settings, start_executor=False)) as test_client:
        yield test_client


def _services(client: TestClient) -> Services:
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    return services


def _key(client: TestClient, tenant: str, *scopes: str) -> dict[str, str]:
    _, token = _services(client).keys.create(tenant, scopes)
    return {"X-API-Key": token}


def _dead(client: TestClient, tenant: str, operation: str = "convert") -> JobRecord:
    store = _services(client).store
    job, _ = store.create(
        NewJob(operation=operation, params={}, input=INPUT, max_attempts=1, tenant=tenant)
    )
    claimed = store.claim_next("host:1:w")
    assert claimed is not None and claimed.id == job.id
    return store.mark_failed(job.id, CRASH, retry_delay=0)


def test_a_tenant_lists_retries_and_replays_only_its_own_dead_jobs_with_its_scopes(
    client: TestClient,
) -> None:
    ours, theirs = _dead(client, "acme"), _dead(client, "globex")
    reader = _key(client, "acme", "read")
    submitter = _key(client, "acme", "read", "submit")
    other = _key(client, "globex", "read", "submit")

    listed = client.get("/api/v2/dead-letters", headers=reader)
    assert listed.status_code == 200
    (job,) = listed.json()["jobs"]
    assert job["id"] == ours.id and job["error"]["code"] == "engine-failed"
    assert job["attempt_history"][0]["outcome"] == "dead"
    assert job["attempt_history"][0]["worker"] == "host:1:w"
    assert client.get("/api/v2/dead-letters").status_code == 401

    assert client.post(f"/api/v2/jobs/{ours.id}/retry", headers=reader).status_code == 403
    assert client.post(f"/api/v2/jobs/{ours.id}/retry", headers=other).status_code == 404
    retried = client.post(f"/api/v2/jobs/{ours.id}/retry", headers=submitter)
    assert retried.status_code == 202 and retried.json()["status"] == "queued"
    again = client.post(f"/api/v2/jobs/{ours.id}/retry", headers=submitter)
    assert again.status_code == 409 and again.json()["job_status"] == "queued"

    assert client.post("/api/v2/dead-letters/replay", json={}, headers=reader).status_code == 403
    replay = client.post("/api/v2/dead-letters/replay", json={"limit": 5}, headers=other)
    assert replay.status_code == 200
    assert [j["id"] for j in replay.json()["replayed"]] == [theirs.id]
    assert replay.json()["count"] == 1 and replay.json()["more"] is False

    # Bad filters and bounds are 422 problems naming what was wrong.
    admin = _key(client, "ops", "admin")
    bad_time = client.get("/api/v2/dead-letters?finished_after=yesterday", headers=admin)
    assert bad_time.status_code == 422 and bad_time.json()["parameter"] == "finished_after"
    over = client.post("/api/v2/dead-letters/replay", json={"limit": 6}, headers=admin)
    assert over.status_code == 422 and "executor.replay_max" in over.json()["detail"]
    unknown = client.post("/api/v2/dead-letters/replay", json={"status": "x"}, headers=admin)
    assert unknown.status_code == 422
    assert client.post("/api/v2/jobs/nope/retry", headers=admin).status_code == 404
