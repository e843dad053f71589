"""Capacity planning end to end: a real server with keys on runs real jobs on corpus files
through its local executor; the route's figures match the jobs' own times, and the
command prints them, from the server (``--server``) and from the job store."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from bench.scoring import corpus_root
from tests.e2e.server import Server, finished
from tests.e2e.test_auth import SECRET

CORPUS = corpus_root()
TEXTS = [CORPUS / "text" / "plain-utf8.txt", CORPUS / "text" / "norwich-city.txt"]
OCR_IMAGE = CORPUS / "images" / "ocr-text.png"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with Server(
        tmp_path_factory.mktemp("capacity"),
        DOCWORKER_AUTH__ENABLED="true",
        DOCWORKER_AUTH__SECRET=SECRET,
    ) as srv:
        yield srv


def _seconds(later: str, earlier: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


def _docworker(
    server: Server, *args: str, key: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**server.env, "COLUMNS": "200"}
    env.pop("DOCWORKER_API_KEY", None)
    if key is not None:
        env["DOCWORKER_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "docworker", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def jobs(server: Server) -> list[dict[str, Any]]:
    submitter = server.keys("create", "--tenant", "acme", "--scope", "read", "--scope", "submit")
    headers = {"Authorization": f"Bearer {submitter}"}
    ended = []
    with server.client() as client:
        client.headers.update(headers)
        sent = [(path, "extract") for path in TEXTS * 2] + [(OCR_IMAGE, "ocr")]
        for path, operation in sent:
            answer = client.post(
                "/api/v2/jobs",
                files={"file": (path.name, path.read_bytes())},
                data={"operation": operation, "params": "{}"},
            )
            assert answer.status_code == 202, answer.text
            ended.append(finished(client, answer.json()))
    return ended


def test_the_route_measures_the_jobs_that_ran(server: Server, jobs: list[dict[str, Any]]) -> None:
    admin = server.keys("create", "--tenant", "ops", "--scope", "admin")
    with server.client() as client:
        answer = client.get(
            "/api/v2/capacity", params={"days": 1}, headers={"Authorization": f"Bearer {admin}"}
        )
        assert answer.status_code == 200, answer.text
        reader = server.keys("create", "--tenant", "acme", "--scope", "read")
        refused = client.get("/api/v2/capacity", headers={"Authorization": f"Bearer {reader}"})
        assert refused.status_code == 403
    body = answer.json()
    operations = {o["operation"]: o["figures"] for o in body["operations"]}
    assert operations["extract"]["jobs"] == 4 and operations["ocr"]["jobs"] == 1
    for name in ("extract", "ocr"):
        ran = [job for job in jobs if job["operation"] == name]
        busy = sum(
            _seconds(a["ended_at"], a["started_at"]) for job in ran for a in job["attempt_history"]
        )
        waited = sum(
            _seconds(job["attempt_history"][0]["started_at"], job["created_at"]) for job in ran
        )
        assert operations[name]["busy_seconds"] == pytest.approx(busy, abs=0.01)
        assert operations[name]["wait_mean"] == pytest.approx(waited / len(ran), abs=0.01)
    assert body["configured_workers"] == 2
    families = {f["family"]: f for f in body["families"]}
    assert set(families) == {"documents", "ocr", "all"}
    assert families["all"]["sizing"]["workers"] >= 1

    # The command prints the same figures, asked from the server or read from the store.
    remote = _docworker(
        server, "capacity", "--days", "1", "--json", "--server", server.url, key=admin
    )
    assert remote.returncode == 0, remote.stderr
    local = _docworker(server, "capacity", "--days", "1", "--json")
    assert local.returncode == 0, local.stderr
    for printed in (remote.stdout, local.stdout):
        figures = {o["operation"]: o["figures"] for o in json.loads(printed)["operations"]}
        assert figures["extract"]["jobs"] == 4
        assert figures["extract"]["busy_seconds"] == pytest.approx(
            operations["extract"]["busy_seconds"], abs=0.01
        )
    table = _docworker(server, "capacity", "--days", "1", "--server", server.url, key=admin)
    assert table.returncode == 0, table.stderr
    assert any(
        line.startswith("│ extract ") and "│    4 │" in line for line in table.stdout.splitlines()
    )
    assert "Jobs per day (all):" in table.stdout
    unkeyed = _docworker(server, "capacity", "--server", server.url)
    assert unkeyed.returncode == 1 and "401" in unkeyed.stderr
