"""Chunking real documents of the corpus with every strategy that needs no model."""

from __future__ import annotations

import time
from functools import cache

import pytest
from chunk_checks import check_all

from bench.scoring import corpus_root
from docworker.chunking import Chunk, ChunkOptions, chunk_document
from docworker.document import BlockKind, Document
from docworker.formats.base import ParseContext
from docworker.formats.registry import parse_path

CORPUS = corpus_root()
pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="test corpus not present")

FILES = [
    "text/norwich-city.txt",
    "pdf/ibm-redbook-sampled.pdf",
    "office/word-sample.docx",
    "web/wiki-duck.html",
]
OPTIONS = [
    {"strategy": "structure"},
    {"strategy": "structure", "max_tokens": 128, "min_tokens": 0, "tokenizer": "o200k"},
    {"strategy": "fixed", "overlap": 64},
    {"strategy": "fixed", "tokenizer": "chars", "max_tokens": 1000, "overlap": 100},
    {"strategy": "recursive", "overlap": 50},
    {"strategy": "recursive", "tokenizer": "chars", "max_tokens": 400},
    {"strategy": "page", "max_tokens": 256},
]


@cache
def parsed(relative: str) -> Document:
    return parse_path(CORPUS / relative, ParseContext())


def chunked(relative: str, **options: object) -> tuple[Document, list[Chunk], ChunkOptions]:
    doc = parsed(relative)
    chosen = ChunkOptions.model_validate(options)
    return doc, chunk_document(doc, chosen), chosen


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(map(str, o.values())))
@pytest.mark.parametrize("relative", FILES)
def test_chunks_hold_the_bound_cover_the_text_and_link_up(
    relative: str, options: dict[str, object]
) -> None:
    doc, chunks, chosen = chunked(relative, **options)
    assert chunks
    check_all(doc, chunks, chosen)


def test_structure_carries_the_heading_path_of_each_section() -> None:
    _, chunks, _ = chunked("web/wiki-duck.html")
    taxonomy = [c for c in chunks if c.section == "Taxonomy"]
    assert taxonomy and all(c.heading_path == ["Duck", "Taxonomy"] for c in taxonomy)
    assert taxonomy[0].text.startswith("Taxonomy\n\nAll ducks belong to the biological order")
    feeding = next(c for c in chunks if c.section == "Feeding")
    assert feeding.heading_path == ["Duck", "Behaviour", "Feeding"]
    assert feeding.parent is not None and feeding.parent in feeding.block_ids


def test_structure_starts_a_chunk_at_each_heading_with_content() -> None:
    doc, chunks, _ = chunked("office/word-sample.docx", min_tokens=0)
    headings = {b.id for b in doc.blocks if b.kind in (BlockKind.HEADING, BlockKind.TITLE)}
    for chunk in chunks:
        # Once a chunk holds more than headings, no heading follows in it.
        kinds = ["heading" if b in headings else "body" for b in chunk.block_ids]
        if "body" in kinds:
            assert "heading" not in kinds[kinds.index("body") :], chunk.id
    swim = next(c for c in chunks if c.section == "Let’s swim!")
    assert swim.text.startswith("Let’s swim!\n\nTo get started with swimming")


def test_page_headers_and_footers_are_dropped() -> None:
    doc, chunks, _ = chunked("pdf/ibm-redbook-sampled.pdf", strategy="page")
    footers = [b for b in doc.blocks if b.kind is BlockKind.FOOTER]
    assert footers
    used = {b for c in chunks for b in c.block_ids}
    assert not used & {b.id for b in footers}
    assert not any("© Copyright IBM Corp. 2014" in c.text for c in chunks)


def test_page_strategy_keeps_to_one_page_and_boxes_come_along() -> None:
    _, chunks, _ = chunked("pdf/ibm-redbook-sampled.pdf", strategy="page")
    assert all(len(c.pages) == 1 for c in chunks)
    pages_with_text = sorted({p for c in chunks for p in c.pages})
    assert pages_with_text == sorted({c.pages[0] for c in chunks})
    assert len(pages_with_text) >= 15
    first = chunks[0]
    assert first.bboxes and all(box.page == 1 for box in first.bboxes)


def test_fixed_windows_are_full_and_overlap_as_asked() -> None:
    _, chunks, _ = chunked("text/norwich-city.txt", strategy="fixed", overlap=64)
    assert all(c.tokens >= 500 for c in chunks[:-1])
    assert all(c.overlap_chars > 0 for c in chunks[1:])
    assert chunks[1].text[: chunks[1].overlap_chars] == chunks[0].text[-chunks[1].overlap_chars :]


def test_recursive_cuts_at_line_ends_before_words() -> None:
    _, chunks, _ = chunked("text/norwich-city.txt", strategy="recursive")
    source = parsed("text/norwich-city.txt").blocks[0].text
    lines = set(source.split("\n"))
    # The file is hard-wrapped prose: every chunk ends where a line ends.
    assert all(c.text.split("\n")[-1] in lines for c in chunks)


def test_chunking_is_deterministic() -> None:
    for options in OPTIONS[:3]:
        _, first, _ = chunked("web/wiki-duck.html", **options)
        _, second, _ = chunked("web/wiki-duck.html", **options)
        assert [c.model_dump() for c in first] == [c.model_dump() for c in second]


def test_speed_on_the_48_kb_text() -> None:
    doc = parsed("text/norwich-city.txt")
    options = ChunkOptions(strategy="recursive")  # type: ignore[arg-type]
    started = time.perf_counter()
    chunks = chunk_document(doc, options)
    elapsed = time.perf_counter() - started
    assert len(chunks) > 20 and elapsed < 2.0
