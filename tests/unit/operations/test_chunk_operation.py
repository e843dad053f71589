"""The chunk operation as a job runs it, and its route's contract."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from bench.scoring import corpus_root
from docworker.api.routes.chunk import router
from docworker.chunking import token_counter
from docworker.errors import InvalidParameter
from docworker.operations import validate_params
from docworker.operations.base import InputFile, OperationContext
from docworker.operations.chunk import ChunkOperation, ChunkParams

CORPUS = corpus_root()
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="test corpus not present")


def run(relative: str, **raw: Any) -> dict[str, Any]:
    operation = ChunkOperation()
    params = validate_params(operation, raw)
    path = CORPUS / relative
    return operation.run(OperationContext(), InputFile(path=path, name=path.name), params).payload


@needs_corpus
def test_a_document_comes_back_as_linked_chunks() -> None:
    payload = run("office/word-sample.docx", max_tokens=64)
    assert (payload["strategy"], payload["tokenizer"], payload["max_tokens"]) == (
        "structure",
        "cl100k",
        64,
    )
    assert payload["format"] == "docx" and payload["metadata"]["word_count"] > 50
    chunks = payload["chunks"]
    assert len(chunks) > 2
    counter = token_counter("cl100k")
    for i, chunk in enumerate(chunks):
        assert chunk["id"] == f"c{i + 1}" and counter.count(chunk["text"]) == chunk["tokens"] <= 64
        assert chunk["prev"] == (f"c{i}" if i else None)
    eat = next(c for c in chunks if c["section"] == "Let’s eat")
    assert eat["heading_path"] == ["Swimming in the lake", "Let’s swim!", "Let’s eat"]


@needs_corpus
def test_only_the_pages_asked_for_are_chunked() -> None:
    payload = run("pdf/ibm-redbook-sampled.pdf", pages="3-4", strategy="page")
    assert {p for c in payload["chunks"] for p in c["pages"]} == {3, 4}
    assert all(c["bboxes"] for c in payload["chunks"])


@needs_corpus
def test_semantic_chunking_runs_with_the_installed_model() -> None:
    payload = run("office/word-sample.docx", strategy="semantic", max_tokens=64)
    assert payload["strategy"] == "semantic" and payload["chunks"]


def test_parameters_are_checked_before_the_work() -> None:
    operation = ChunkOperation()
    with pytest.raises(InvalidParameter, match="overlap"):
        validate_params(operation, {"strategy": "page", "overlap": 5})
    with pytest.raises(InvalidParameter, match="max_tokens"):
        validate_params(operation, {"max_tokens": 4})
    with pytest.raises(InvalidParameter, match="pages"):
        validate_params(operation, {"pages": "x"})
    params = validate_params(operation, {"password": "secret", "strategy": "fixed"})
    assert isinstance(params, ChunkParams) and params.password is not None
    assert (ChunkOperation.name, ChunkOperation.queue) == ("chunk", "documents")


def test_the_route_takes_the_file_and_the_options_as_form_fields() -> None:
    app = FastAPI()
    app.include_router(router)
    operation = app.openapi()["paths"]["/api/v2/chunk"]["post"]
    assert operation["operationId"] == "chunk"
    form = operation["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    fields = app.openapi()["components"]["schemas"][form.rsplit("/", 1)[1]]["properties"]
    assert {"file", "strategy", "tokenizer", "max_tokens", "overlap", "separators", "ocr"} <= set(
        fields
    )
