"""Holding under load, on a real server: a Word bomb (a body of hundreds of megabytes
packed in under one) fails with ``limit-exceeded`` while it is read, in a worker kept
small; a large result that fits a raised limit is fetched by several clients at once
while the API's memory stays flat and its liveness probe keeps answering.

Both documents are written by the tests (:mod:`bench.large_docx`); nothing of the kind
is kept in the repository.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.large_docx import PARAGRAPH_CHARS, RUN_TEXT, RUNS, paragraphs_for, write_docx
from bench.result_memory import extract_job, fetch_in_parallel
from tests.e2e.server import Server

MIB = 1024 * 1024
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
#: The bomb's server: output limit of 2 million characters, each worker kept under
#: 512 MiB (a bomb read whole would pass that many times over), results loaded whole
#: (v1's shapes) up to 4 KiB.
BOMB_LIMIT = 2_000_000
#: The large document: 55 million characters, its text result about 57 MB.
LARGE_CHARS = 55_000_000


@pytest.fixture(scope="module")
def bomb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with Server(
        tmp_path_factory.mktemp("bomb"),
        DOCWORKER_EXECUTOR__WORKERS="1",
        DOCWORKER_EXECUTOR__MEMORY_LIMIT_MB="512",
        DOCWORKER_LIMITS__MAX_OUTPUT_CHARS=str(BOMB_LIMIT),
        DOCWORKER_SERVER__MAX_LOADED_RESULT_BYTES="4096",
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def large_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    raised = str(2 * LARGE_CHARS)
    with Server(
        tmp_path_factory.mktemp("large"),
        DOCWORKER_EXECUTOR__WORKERS="1",
        DOCWORKER_LIMITS__MAX_TEXT_CHARS=raised,
        DOCWORKER_LIMITS__MAX_OUTPUT_CHARS=raised,
    ) as srv:
        yield srv


def test_a_word_bomb_fails_with_limit_exceeded(bomb_server: Server, tmp_path: Path) -> None:
    bomb = write_docx(tmp_path / "bomb.docx", 141_000)  # 200 MB of XML
    assert bomb.stat().st_size < MIB
    with bomb_server.client() as client, bomb.open("rb") as body:
        answer = client.post("/api/v2/extract", files={"file": ("bomb.docx", body, DOCX)})
        assert answer.status_code == 422, answer.text
        problem = answer.json()
        assert problem["code"] == "limit-exceeded"
        assert problem["limit"] == "output characters"
        assert problem["maximum"] == BOMB_LIMIT
        assert problem["value"] == BOMB_LIMIT + len(RUN_TEXT)
        assert "limits.max_output_chars" in problem["detail"]
        (job,) = client.get("/api/v2/jobs", params={"operation": "extract"}).json()["jobs"]
    # Not retried: the same document would pass the limit again.
    assert (job["status"], job["attempts"]) == ("failed", 1)


def test_v1_refuses_to_reshape_a_result_over_its_bound(bomb_server: Server) -> None:
    text = ("A line of plain text for the v1 route. " * 200).encode()
    with bomb_server.client() as client:
        answer = client.post("/api/v1/extract/text", files={"file": ("a.txt", text)})
    assert answer.status_code == 500
    body = answer.json()
    assert body["error"] == "Text extraction failed"
    assert "server.max_loaded_result_bytes" in body["details"]
    assert "/result, which streams it" in body["details"]


def test_a_large_result_is_served_to_clients_at_once_in_flat_memory(
    large_server: Server, tmp_path: Path
) -> None:
    document = write_docx(tmp_path / "large.docx", paragraphs_for(LARGE_CHARS))
    assert large_server.process is not None
    with large_server.client() as client:
        job_id = extract_job(client, document, "text", timeout=240)
    path = f"/api/v2/jobs/{job_id}/result"
    measure = fetch_in_parallel(large_server.url, path, 4, large_server.process.pid)
    assert len(set(measure.sizes)) == 1 and measure.sizes[0] > 50 * MIB
    assert measure.growth < 100 * MIB, f"the API grew by {measure.growth / MIB:.0f} MiB"
    assert max(measure.liveness) < 1.0, f"liveness took up to {max(measure.liveness):.2f} s"
    with httpx.Client(base_url=large_server.url, timeout=120) as client:
        result = json.loads(client.get(path).content)
    paragraph = RUN_TEXT * RUNS
    assert result["content"].startswith(paragraph + "\n\n" + paragraph)
    assert len(result["content"]) >= LARGE_CHARS
    assert result["metadata"]["char_count"] == paragraphs_for(LARGE_CHARS) * PARAGRAPH_CHARS
