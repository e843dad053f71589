"""The semantic strategy: topic changes from sentence embeddings, bounds enforced."""

from __future__ import annotations

import numpy as np
import pytest
from chunk_checks import check_all

from docworker.chunking import SEMANTIC_UNAVAILABLE, ChunkOptions, Strategy, chunk_document
from docworker.chunking.semantic import topic_starts
from docworker.document import BlockKind, Document, DocumentBuilder
from docworker.engines.embeddings import default_embedder
from docworker.errors import InvalidParameter

DUCKS = (
    "Ducks are water birds of the family Anatidae. They swim on ponds, lakes and rivers. "
    "A duck feeds on aquatic plants, insects and small fish. Male ducks are called drakes. "
    "Ducklings follow their mother to the water soon after hatching."
)
DATABASES = (
    "A relational database stores data in tables of rows and columns. "
    "SQL queries select, join and aggregate those rows. "
    "An index makes lookups on a column much faster. "
    "Transactions keep the data consistent when many users write at once."
)


def document(*paragraphs: str) -> Document:
    builder = DocumentBuilder("test", "application/x-test")
    for text in paragraphs:
        builder.add(BlockKind.PARAGRAPH, text)
    return builder.finish()


def semantic(**options: object) -> ChunkOptions:
    return ChunkOptions.model_validate({"strategy": "semantic", **options})


def test_topic_starts_fall_where_neighbouring_windows_differ_most() -> None:
    first, second = np.eye(4, dtype=np.float32)[:2]
    vectors = np.vstack([first] * 5 + [second] * 5)
    assert topic_starts(vectors, 90) == {5}
    assert topic_starts(vectors[:1], 90) == set()
    noisy = vectors + np.random.default_rng(1).normal(0, 0.05, vectors.shape).astype(np.float32)
    assert 5 in topic_starts(noisy, 50)


def test_a_change_of_topic_ends_a_chunk() -> None:
    embed = default_embedder()
    if embed is None:
        pytest.skip("no embedding model installed")
    doc = document(DUCKS, DATABASES)
    options = semantic(min_tokens=0)
    chunks = chunk_document(doc, options, embed)
    check_all(doc, chunks, options)
    assert [c.text for c in chunks] == [DUCKS, DATABASES]
    finer = chunk_document(doc, semantic(min_tokens=0, threshold_percentile=70), embed)
    assert len(finer) > 2 and finer[0].text == DUCKS


def test_small_groups_join_and_the_bound_holds() -> None:
    embed = default_embedder()
    if embed is None:
        pytest.skip("no embedding model installed")
    doc = document(DUCKS * 3, DATABASES * 3)
    options = semantic(max_tokens=40)
    chunks = chunk_document(doc, options, embed)
    check_all(doc, chunks, options)
    assert len(chunks) > 4 and all(c.tokens <= 40 for c in chunks)


def test_without_a_model_semantic_chunking_is_refused() -> None:
    with pytest.raises(InvalidParameter) as caught:
        chunk_document(document(DUCKS), semantic())
    assert SEMANTIC_UNAVAILABLE in str(caught.value)
    assert caught.value.fields["parameter"] == "strategy"
    assert ChunkOptions(strategy=Strategy.SEMANTIC).threshold_percentile == 90
