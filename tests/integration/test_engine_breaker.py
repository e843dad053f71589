"""Retries, dead letters and an engine's circuit breaker end to end: the API and the local
executor of one process, with real worker processes and a real LibreOffice.

LibreOffice is made unavailable by a setting: its program is a symbolic link that the
test points at nothing, then at the real program. Jobs that need it fail the real way
(the engine does not start), are retried later, die, open its breaker; while it is open,
work needing it is refused at once with a 503 naming it and other work goes on; once
the link points at the program again and the cool-down has passed, a dead job retried by
hand is the trial that closes it, and the replay runs the rest.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from bench.scoring import corpus_root
from docworker.api.app import create_app
from docworker.config import load_settings

DOCX = corpus_root() / "office" / "handbook-1p.docx"
TEXT = corpus_root() / "text" / "plain-utf8.txt"
PROBLEM = "application/problem+json"
SOFFICE = shutil.which("soffice")

pytestmark = pytest.mark.skipif(SOFFICE is None, reason="LibreOffice is not installed")


@pytest.fixture
def link(tmp_path: Path) -> Path:
    """LibreOffice's program as the service is told it: a link to nothing yet."""
    path = tmp_path / "bin" / "soffice"
    path.parent.mkdir()
    path.symlink_to(tmp_path / "bin" / "missing")
    return path


@pytest.fixture
def client(tmp_path: Path, link: Path) -> Iterator[TestClient]:
    settings = load_settings(
        data_dir=tmp_path / "data",
        executor={
            "workers": 1,
            "poll_interval": 0.1,
            "max_attempts": 2,
            "retry_delay": 0.2,
            "retry_max_delay": 0.4,
            "retry_jitter": 0,
        },
        # Long enough for the refusals below to come while it is open on a loaded machine.
        breaker={"threshold": 2, "cooldown": 6},
        libreoffice={"soffice_path": str(link)},
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _submit(client: TestClient, path: Path, operation: str, **params: Any) -> httpx.Response:
    data = {"operation": operation, "params": json.dumps(params)}
    with path.open("rb") as stream:
        return client.post("/api/v2/jobs", files={"file": (path.name, stream)}, data=data)


def _until(read: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            assert done(value), value
            return value
        time.sleep(0.05)


def _job(client: TestClient, job_id: str, *states: str) -> dict[str, Any]:
    body: dict[str, Any] = _until(
        lambda: client.get(f"/api/v2/jobs/{job_id}").json(), lambda j: j["status"] in states
    )
    return body


def _breaker(client: TestClient, engine: str = "libreoffice") -> dict[str, Any]:
    breaker: dict[str, Any] = client.get("/health").json()["checks"]["breakers"][engine]
    return breaker


def test_an_engine_that_fails_opens_its_breaker_and_recovers(
    client: TestClient, link: Path
) -> None:
    # Two jobs that need LibreOffice: two real failures open its breaker, the attempts
    # after it are refused without trying it; each is retried once, later, then dead.
    ids = [_submit(client, DOCX, "convert", to="pdf").json()["id"] for _ in range(2)]
    dead = [_job(client, job_id, "dead", "succeeded", "failed") for job_id in ids]
    assert [job["status"] for job in dead] == ["dead", "dead"]
    history = [entry for job in dead for entry in job["attempt_history"]]
    codes = sorted(entry["error"]["code"] for entry in history)
    assert codes == [
        "dependency-down",
        "dependency-down",
        "engine-unavailable",
        "engine-unavailable",
    ]
    for job in dead:
        first, second = job["attempt_history"]
        assert job["attempts"] == 2 and (first["outcome"], second["outcome"]) == ("retried", "dead")
        assert datetime.fromisoformat(second["started_at"]) >= datetime.fromisoformat(
            first["retry_at"]
        )
        assert first["worker"] and second["worker"]
    assert "LibreOffice" in history[0]["error"]["detail"]

    health = client.get("/health").json()
    assert health["status"] == "degraded"
    assert _breaker(client)["state"] == "open" and _breaker(client)["failures"] == 2
    assert _breaker(client, "tesseract")["state"] == "closed"

    # While open: refused at once, naming the engine; work needing it not queued.
    refused = _submit(client, DOCX, "convert", to="pdf")
    assert refused.status_code == 503 and refused.headers["content-type"] == PROBLEM
    problem = refused.json()
    assert problem["code"] == "engine-unavailable" and problem["engine"] == "LibreOffice"
    assert 1 <= int(refused.headers["retry-after"]) <= 6
    retry = client.post(f"/api/v2/jobs/{ids[0]}/retry")
    assert retry.status_code == 503 and retry.json()["engine"] == "LibreOffice"
    # Other work goes on.
    extract = _submit(client, TEXT, "extract")
    assert extract.status_code == 202
    assert _job(client, extract.json()["id"], "succeeded", "failed", "dead")["status"] == (
        "succeeded"
    )

    # Dead letters: filtered by operation, error and time.
    listed = client.get("/api/v2/dead-letters", params={"operation": "convert"}).json()
    assert sorted(job["id"] for job in listed["jobs"]) == sorted(ids)
    by_code = client.get("/api/v2/dead-letters", params={"error_code": "job-timeout"}).json()
    assert by_code["jobs"] == []
    later = client.get("/api/v2/dead-letters", params={"finished_after": "2999-01-01T00:00:00Z"})
    assert later.json()["jobs"] == []
    assert client.post(f"/api/v2/jobs/{extract.json()['id']}/retry").status_code == 409

    # The engine is back; after the cool-down the breaker half-opens, and a dead job
    # retried by hand is its trial: its success closes it.
    link.unlink()
    link.symlink_to(SOFFICE)  # type: ignore[arg-type]
    _until(lambda: _breaker(client)["state"], lambda state: state == "half_open", timeout=15)
    retried = client.post(f"/api/v2/jobs/{ids[0]}/retry")
    assert retried.status_code == 202, retried.text
    assert retried.json()["status"] == "queued" and retried.json()["max_attempts"] == 4
    done = _job(client, ids[0], "succeeded", "dead", "failed")
    assert done["status"] == "succeeded", done
    assert [e["outcome"] for e in done["attempt_history"]] == ["retried", "dead", "succeeded"]
    breakers = client.get("/health").json()["checks"]["breakers"]
    assert breakers["libreoffice"]["state"] == "closed" and breakers["libreoffice"]["failures"] == 0
    assert {breaker["state"] for breaker in breakers.values()} == {"closed"}

    # The rest of the dead letters, replayed in bulk.
    replay = client.post("/api/v2/dead-letters/replay", json={"operation": "convert"})
    assert replay.status_code == 200, replay.text
    assert [job["id"] for job in replay.json()["replayed"]] == [ids[1]]
    assert replay.json()["more"] is False
    assert _job(client, ids[1], "succeeded", "dead", "failed")["status"] == "succeeded"
    too_many = client.post("/api/v2/dead-letters/replay", json={"limit": 101})
    assert too_many.status_code == 422 and too_many.json()["parameter"] == "limit"
