"""Chunking random documents: the bound, the cover, the relations and the heading
paths hold whatever the blocks (headings of any level, paragraphs of any length,
very long words, any script, tables, lists, page headers and footers, pages)."""

from __future__ import annotations

from typing import Any

from chunk_checks import check_all
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from docworker.chunking import ChunkOptions, chunk_document
from docworker.document import BBox, BlockKind, Document, DocumentBuilder, Table, TableCell

WORDS = st.sampled_from(
    [
        "the", "duck", "swims", "Quarterly", "report.", "Results:", "naïve", "Straße",
        "日本語の文章。", "한국어", "مرحبا", "😀🦆", "x" * 300, "a|b", "e.g.", "1.2.3",
        "\u0301", "—", "…", "end!", "Why?", "(aside)", "\t",
    ]
)  # fmt: skip
WORD = st.one_of(WORDS, st.text(min_size=1, max_size=12))
TEXT = st.lists(
    st.tuples(WORD, st.sampled_from([" ", " ", " ", "\n", "\n\n", ". ", ""])),
    min_size=1,
    max_size=60,
).map(lambda pairs: "".join(w + s for w, s in pairs))
SHORT = st.lists(WORD, min_size=1, max_size=6).map(" ".join)


@st.composite
def tables(draw: st.DrawFn) -> Table:
    rows, cols = draw(st.integers(1, 12)), draw(st.integers(1, 4))
    header = draw(st.integers(0, min(2, rows)))
    cells = [
        TableCell(row=r, col=c, text=draw(SHORT), header=r < header)
        for r in range(rows)
        for c in range(cols)
    ]
    return Table(n_rows=rows, n_cols=cols, cells=cells)


@st.composite
def documents(draw: st.DrawFn) -> Document:
    builder = DocumentBuilder("test", "application/x-test")
    page = 1
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(list(_KINDS)))
        if kind is BlockKind.PAGE_BREAK:
            page += 1
        builder.add(kind, page=page, **draw(_KINDS[kind]))
    return builder.finish()


def _fields(text: Any, **extra: Any) -> Any:
    box = st.just(BBox(x0=10, y0=20, x1=300, y1=40)) | st.none()
    return st.fixed_dictionaries({"text": text, "bbox": box, **extra})


_KINDS: dict[BlockKind, Any] = {
    BlockKind.TITLE: _fields(SHORT),
    BlockKind.HEADING: _fields(SHORT, level=st.integers(1, 4)),
    BlockKind.PARAGRAPH: _fields(TEXT),
    BlockKind.LIST_ITEM: _fields(SHORT, level=st.integers(1, 2)),
    BlockKind.TABLE: st.fixed_dictionaries({"table": tables()}),
    BlockKind.CODE: _fields(TEXT),
    BlockKind.HEADER: _fields(SHORT),
    BlockKind.FOOTER: _fields(SHORT),
    BlockKind.PAGE_BREAK: st.just({}),
}

OPTIONS = st.one_of(
    st.fixed_dictionaries(
        {
            "strategy": st.sampled_from(["fixed", "recursive"]),
            "tokenizer": st.sampled_from(["cl100k", "o200k", "chars"]),
            "max_tokens": st.sampled_from([16, 24, 40, 64, 200]),
            "overlap": st.sampled_from([0, 3, 10]),
        }
    ),
    st.fixed_dictionaries(
        {
            "strategy": st.just("structure"),
            "tokenizer": st.sampled_from(["cl100k", "chars"]),
            "max_tokens": st.sampled_from([16, 24, 40, 64, 200]),
            "min_tokens": st.sampled_from([0, 8, 16]),
        }
    ),
    st.fixed_dictionaries(
        {
            "strategy": st.just("page"),
            "tokenizer": st.sampled_from(["cl100k", "chars"]),
            "max_tokens": st.sampled_from([16, 64]),
        }
    ),
)

EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@EXAMPLES
@given(doc=documents(), raw=OPTIONS)
def test_any_document_chunks_within_bound_once_and_linked(
    doc: Document, raw: dict[str, Any]
) -> None:
    options = ChunkOptions.model_validate(raw)
    chunks = chunk_document(doc, options)
    check_all(doc, chunks, options)
    assert [c.model_dump() for c in chunk_document(doc, options)] == [
        c.model_dump() for c in chunks
    ]


@EXAMPLES
@given(doc=documents(), max_tokens=st.sampled_from([24, 64]), min_tokens=st.sampled_from([0, 10]))
def test_structure_never_runs_into_another_top_section_unless_both_are_small(
    doc: Document, max_tokens: int, min_tokens: int
) -> None:
    options = ChunkOptions(
        strategy="structure",  # type: ignore[arg-type]
        max_tokens=max_tokens,
        min_tokens=min_tokens,
    )
    top_level = min((b.level or 1 for b in doc.blocks if b.kind is BlockKind.HEADING), default=1)
    opens_top = {
        b.id
        for b in doc.blocks
        if b.kind is BlockKind.TITLE
        or (b.kind is BlockKind.HEADING and (b.level or 1) <= top_level)
    }
    for chunk in chunk_document(doc, options):
        if any(b in opens_top for b in chunk.block_ids[1:]):
            # Only sections both under min_tokens are merged: together they are
            # under twice that (a separator may add a token or two).
            assert chunk.tokens <= 2 * min_tokens + 2, chunk.id
