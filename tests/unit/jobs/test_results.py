"""A job's result in the blob store: written under the output limit, read back whole, and
streamed as JSON with its text spliced in, for results of this version and earlier ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from docworker.errors import LimitExceeded, ProcessingFailed
from docworker.jobs import results
from docworker.jobs.results import (
    CONTENT_BLOB,
    JsonAnswer,
    StoredResult,
    escaped_text,
    json_pieces,
    read_payload,
    store_result,
)
from docworker.operations.base import Artifact, Result
from docworker.storage import BlobStore

#: Text whose characters take 1, 2, 3 and 4 bytes in UTF-8, and ones JSON escapes.
TEXT = 'plain, Zürich, € sign, 𝄞 clef, "quoted", back\\slash, tab\there\nnew line\u2028'


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(f"file://{tmp_path / 'blobs'}")


def _payload(content: Any = TEXT * 50) -> dict[str, Any]:
    return {
        "output": "markdown",
        "format": "docx",
        "content": content,
        "metadata": {"title": "Tïtle", "page_count": 2},
        "pages": [{"page": 1, "content": "one"}, {"page": 2, "content": "two"}],
        "warnings": [],
    }


def _answer(store: BlobStore, ref: dict[str, Any], members: dict[str, Any]) -> Any:
    return json.loads(b"".join(JsonAnswer(store, StoredResult.of(ref), members)))


def _files(store: BlobStore, job_id: str) -> set[str]:
    folder = Path(store.url.removeprefix("file://")) / "results" / job_id
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def test_text_content_is_stored_apart_and_read_back(store: BlobStore) -> None:
    payload = _payload()
    ref = store_result(store, "job-1", Result(payload=payload))
    assert ref["content"]["output"] == "markdown"
    assert store.read_bytes(ref["content"]["uri"]) == payload["content"].encode()
    assert "content" not in json.loads(store.read_bytes(ref["uri"]))
    assert ref["size"] + ref["content"]["size"] == StoredResult.of(ref).total_size
    assert read_payload(store, ref) == payload
    assert _files(store, "job-1") == {"result.json", CONTENT_BLOB}


def test_the_json_answer_is_the_payload_with_members_first(store: BlobStore) -> None:
    payload = _payload()
    ref = store_result(store, "job-2", Result(payload=payload))
    body = b"".join(JsonAnswer(store, StoredResult.of(ref), {"job_id": "job-2"}))
    assert body.startswith(b'{"job_id":"job-2","output":"markdown"')
    assert json.loads(body) == {"job_id": "job-2", **payload}
    assert _answer(store, ref, {}) == payload


def test_characters_split_between_chunks_are_escaped_whole(
    store: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With chunks of 7 bytes, the 2-, 3- and 4-byte characters fall across chunk
    boundaries at every offset as the text repeats."""
    monkeypatch.setattr(results, "CHUNK", 7)
    ref = store_result(store, "job-3", Result(payload=_payload(TEXT * 7)))
    with store.open(ref["content"]["uri"]) as stream:
        inside = b"".join(escaped_text(stream))
    assert json.loads(b'"' + inside + b'"') == TEXT * 7
    assert _answer(store, ref, {"job_id": "x"})["content"] == TEXT * 7


def test_a_result_without_text_content_streams_as_stored(store: BlobStore) -> None:
    """JSON output: the content is the document model, kept inside the JSON."""
    payload = _payload(content={"blocks": [{"id": "b1", "text": TEXT}]})
    ref = store_result(store, "job-4", Result(payload=payload))
    assert ref["content"] is None
    assert not StoredResult.of(ref).legacy
    assert _answer(store, ref, {"job_id": "job-4"}) == {"job_id": "job-4", **payload}
    assert read_payload(store, ref) == payload
    empty = store_result(store, "job-5", Result(payload={}))
    assert _answer(store, empty, {}) == {}
    assert _answer(store, empty, {"job_id": "job-5"}) == {"job_id": "job-5"}


def test_a_result_stored_by_an_earlier_version_reads_the_same(store: BlobStore) -> None:
    """Before the text was stored apart, result.json held it, written by json.dumps with
    its default separators, and the reference had no "content" entry."""
    payload = _payload()
    blob = store.write_bytes(
        BlobStore.result_uri("old", "result.json"), json.dumps(payload, ensure_ascii=False).encode()
    )
    ref = {"uri": blob.uri, "mime": "application/json", "size": blob.size}
    stored = StoredResult.of(ref)
    assert stored.legacy and stored.content_uri is None and stored.total_size == blob.size
    assert read_payload(store, ref) == payload
    assert _answer(store, ref, {"job_id": "old"}) == {"job_id": "old", **payload}


def test_the_json_written_is_what_json_dumps_writes() -> None:
    payload = _payload() | {"chunks": [{"text": "a", "n": [1, 2.5, None, True]}], "e": {}}
    expected = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    assert "".join(json_pieces(payload)) == expected
    with pytest.raises(ProcessingFailed, match="JSON cannot carry"):
        "".join(json_pieces({"score": float("nan")}))


def test_past_the_output_limit_the_job_fails_and_nothing_is_kept(store: BlobStore) -> None:
    payload = _payload("x" * 100_000)
    with pytest.raises(LimitExceeded) as refused:
        store_result(store, "job-6", Result(payload=payload), max_bytes=50_000)
    assert refused.value.code == "limit-exceeded"
    assert refused.value.fields["limit"] == "output bytes"
    assert refused.value.fields["maximum"] == 50_000
    assert "limits.max_output_bytes" in refused.value.detail
    assert _files(store, "job-6") == set()
    # Under the limit the same result is kept whole.
    ref = store_result(store, "job-6", Result(payload=payload), max_bytes=200_000)
    assert read_payload(store, ref) == payload


def test_artifacts_count_and_are_refused_before_any_is_copied(
    store: BlobStore, tmp_path: Path
) -> None:
    made = tmp_path / "out.pdf"
    made.write_bytes(b"%PDF" + b"0" * 10_000)
    result = Result(payload={"pages": 1}, artifacts=[Artifact("out.pdf", made, "application/pdf")])
    with pytest.raises(LimitExceeded):
        store_result(store, "job-7", result, max_bytes=5_000)
    assert _files(store, "job-7") == set()
    ref = store_result(store, "job-7", result, max_bytes=20_000)
    assert [a["name"] for a in ref["artifacts"]] == ["out.pdf"]
    assert read_payload(store, ref)["artifacts"] == [
        {"name": "out.pdf", "mime": "application/pdf", "size": 10_004}
    ]
