"""The structure strategy on made-to-measure documents: tables, lists, headings; and
the options every strategy is checked against."""

from __future__ import annotations

import pytest
from chunk_checks import check_all

from docworker.chunking import (
    V1_METHODS,
    Chunk,
    ChunkOptions,
    Strategy,
    TokenizerName,
    chunk_document,
    token_counter,
)
from docworker.document import BlockKind, Document, DocumentBuilder, Table, TableCell
from docworker.errors import InvalidParameter


def table(rows: int, cols: int = 3, header: int = 1, cell: str = "value {r}.{c}") -> Table:
    cells = [
        TableCell(
            row=r,
            col=c,
            text=f"Head {c}" if r < header else cell.format(r=r, c=c),
            header=r < header,
        )
        for r in range(rows)
        for c in range(cols)
    ]
    return Table(n_rows=rows, n_cols=cols, cells=cells)


def build(*blocks: tuple[BlockKind, dict[str, object]]) -> Document:
    builder = DocumentBuilder("test", "application/x-test")
    for kind, fields in blocks:
        builder.add(kind, **fields)
    return builder.finish()


def structure(doc: Document, **options: object) -> list[Chunk]:
    chosen = ChunkOptions.model_validate({"strategy": "structure", **options})
    chunks = chunk_document(doc, chosen)
    check_all(doc, chunks, chosen)
    return chunks


def test_a_large_table_is_cut_between_rows_its_header_repeated() -> None:
    doc = build(
        (BlockKind.HEADING, {"text": "Prices", "level": 1}),
        (BlockKind.TABLE, {"table": table(40)}),
    )
    chunks = structure(doc, max_tokens=80, min_tokens=0)
    header = "| Head 0 | Head 1 | Head 2 |\n| --- | --- | --- |\n"
    parts = [c for c in chunks if "| --- |" in c.text]
    assert len(parts) > 3
    assert parts[0].text.startswith("Prices\n\n" + header)
    for part in parts[1:]:
        assert part.text.startswith(header)
        assert part.overlap_chars == len(header)
        assert part.heading_path == ["Prices"]
    rows = [line for c in parts for line in c.text[c.overlap_chars :].split("\n")]
    assert sum(line.startswith("| value") for line in rows) == 39


def test_several_header_rows_are_all_repeated() -> None:
    doc = build((BlockKind.TABLE, {"table": table(30, header=2)}))
    chunks = structure(doc, max_tokens=90, min_tokens=0)
    assert len(chunks) > 2
    header = "| Head 0 | Head 1 | Head 2 |\n| --- | --- | --- |\n| Head 0 | Head 1 | Head 2 |\n"
    assert all(c.text.startswith(header) for c in chunks)


def test_a_table_without_header_cells_repeats_its_first_row() -> None:
    doc = build((BlockKind.TABLE, {"table": table(30, header=0)}))
    chunks = structure(doc, max_tokens=60, min_tokens=0)
    first_line = chunks[0].text.split("\n")[0]
    assert len(chunks) > 2 and all(c.text.startswith(first_line + "\n| --- |") for c in chunks)


def test_a_table_that_fits_stays_whole_in_a_chunk_of_its_own() -> None:
    doc = build(
        (BlockKind.PARAGRAPH, {"text": "An introduction of some length. " * 8}),
        (BlockKind.TABLE, {"table": table(5)}),
    )
    chunks = structure(doc, max_tokens=110, min_tokens=0)
    whole = doc.text_of(doc.blocks[1])
    assert len(chunks) == 2 and chunks[1].block_ids == ["b2"]
    assert chunks[1].text.count("\n") == whole.count("\n") + 1  # plus the | --- | line


def test_a_table_whose_rows_are_too_large_is_cut_as_text() -> None:
    doc = build((BlockKind.TABLE, {"table": table(3, cell="word " * 60)}))
    chunks = structure(doc, max_tokens=40, min_tokens=0)
    assert len(chunks) > 3 and all(c.overlap_chars == 0 for c in chunks)


def test_a_list_that_fits_is_never_cut() -> None:
    items = [
        (BlockKind.LIST_ITEM, {"text": f"item number {i} of the list", "level": 1})
        for i in range(6)
    ]
    doc = build((BlockKind.PARAGRAPH, {"text": "A paragraph before the list, " * 4}), *items)
    chunks = structure(doc, max_tokens=64, min_tokens=0)
    assert [c.block_ids for c in chunks] == [["b1"], [f"b{i}" for i in range(2, 8)]]
    assert chunks[1].text == "\n".join(f"item number {i} of the list" for i in range(6))


def test_headings_in_a_row_stay_with_the_content_that_follows() -> None:
    doc = build(
        (BlockKind.HEADING, {"text": "Chapter 1", "level": 1}),
        (BlockKind.HEADING, {"text": "1.2 Scope", "level": 2}),
        (BlockKind.PARAGRAPH, {"text": "What this covers."}),
        (BlockKind.HEADING, {"text": "1.3 Terms", "level": 2}),
        (BlockKind.PARAGRAPH, {"text": "Words used."}),
        (BlockKind.HEADING, {"text": "Chapter 2", "level": 1}),
        (BlockKind.PARAGRAPH, {"text": "More."}),
    )
    chunks = structure(doc, min_tokens=0)
    assert [c.text.split("\n")[0] for c in chunks] == ["Chapter 1", "1.3 Terms", "Chapter 2"]
    assert chunks[0].heading_path == ["Chapter 1", "1.2 Scope"]
    assert chunks[0].parent == "b2" and chunks[0].section == "1.2 Scope"
    assert chunks[1].heading_path == ["Chapter 1", "1.3 Terms"]
    # Small sections of one chapter join; another chapter joins only when small too.
    merged = structure(doc, min_tokens=25)
    assert [c.text.split("\n")[0] for c in merged] == ["Chapter 1"]
    apart = structure(doc, min_tokens=9)
    assert [c.text.split("\n")[0] for c in apart] == ["Chapter 1", "Chapter 2"]


def test_headers_footers_and_page_breaks_are_left_out() -> None:
    doc = build(
        (BlockKind.HEADER, {"text": "ACME report", "page": 1}),
        (BlockKind.PARAGRAPH, {"text": "First page text.", "page": 1}),
        (BlockKind.FOOTER, {"text": "Page 1", "page": 1}),
        (BlockKind.PAGE_BREAK, {"page": 1}),
        (BlockKind.PARAGRAPH, {"text": "Second page text.", "page": 2}),
    )
    chunks = structure(doc)
    assert [c.text for c in chunks] == ["First page text.\n\nSecond page text."]
    assert chunks[0].pages == [1, 2] and chunks[0].block_ids == ["b2", "b5"]
    by_page = chunk_document(doc, ChunkOptions(strategy=Strategy.PAGE))
    assert [(c.text, c.pages) for c in by_page] == [
        ("First page text.", [1]),
        ("Second page text.", [2]),
    ]


def test_an_empty_document_has_no_chunks() -> None:
    assert structure(build()) == []
    assert structure(build((BlockKind.FOOTER, {"text": "only a footer"}))) == []


def test_recursive_honours_custom_separators() -> None:
    doc = build((BlockKind.PARAGRAPH, {"text": "; ".join(f"clause {i} here" for i in range(30))}))
    options = ChunkOptions(
        strategy=Strategy.RECURSIVE, tokenizer=TokenizerName.CHARS, max_tokens=40, separators=[";"]
    )
    chunks = chunk_document(doc, options)
    check_all(doc, chunks, options)
    assert all(c.text.endswith(";") for c in chunks[:-1])


def test_fixed_character_windows_are_exact() -> None:
    doc = build((BlockKind.PARAGRAPH, {"text": "abcdefghij" * 10}))
    options = ChunkOptions(
        strategy=Strategy.FIXED, tokenizer=TokenizerName.CHARS, max_tokens=30, overlap=10
    )
    chunks = chunk_document(doc, options)
    assert [c.chars for c in chunks] == [30, 30, 30, 30, 20]
    assert [c.overlap_chars for c in chunks] == [0, 10, 10, 10, 10]


@pytest.mark.parametrize(
    ("options", "parameter"),
    [
        ({"overlap": 512}, "overlap"),
        ({"strategy": "structure", "overlap": 10}, "overlap"),
        ({"strategy": "fixed", "separators": ["\n"]}, "separators"),
        ({"strategy": "recursive", "separators": []}, "separators"),
        ({"strategy": "page", "min_tokens": 10}, "min_tokens"),
        ({"strategy": "structure", "min_tokens": 600}, "min_tokens"),
        ({"strategy": "fixed", "threshold_percentile": 80}, "threshold_percentile"),
    ],
)
def test_contradictory_or_unused_options_are_refused(
    options: dict[str, object], parameter: str
) -> None:
    with pytest.raises(InvalidParameter) as caught:
        ChunkOptions.model_validate({"strategy": "fixed", **options})
    assert caught.value.fields["parameter"] == parameter


def test_defaults_and_derived_options() -> None:
    options = ChunkOptions()
    assert (options.strategy, options.tokenizer, options.max_tokens) == ("structure", "cl100k", 512)
    assert options.smallest() == 50
    assert ChunkOptions(max_tokens=40).smallest() == 10
    assert ChunkOptions(strategy=Strategy.RECURSIVE).separator_list() == [
        "\n\n",
        "\n",
        ". ",
        " ",
        "",
    ]
    assert ChunkOptions(strategy=Strategy.RECURSIVE, separators=[";"]).separator_list() == [";", ""]
    # An unused setting at its default value is not a contradiction.
    assert ChunkOptions.model_validate({"strategy": "structure", "overlap": 0}).overlap == 0


def test_v1_methods_keep_their_units() -> None:
    assert V1_METHODS["text"] == (Strategy.RECURSIVE, TokenizerName.CHARS)
    assert V1_METHODS["recursive"] == (Strategy.RECURSIVE, TokenizerName.CHARS)
    assert V1_METHODS["semantic"] == (Strategy.FIXED, TokenizerName.CL100K)
    assert V1_METHODS["smart"] == (Strategy.STRUCTURE, TokenizerName.CHARS)


def test_token_counts_match_the_encodings() -> None:
    cl100k, o200k, chars = (token_counter(n) for n in ("cl100k", "o200k", "chars"))
    assert token_counter("cl100k") is cl100k  # made once per process
    assert cl100k.count("hello world") == 2 and chars.count("hello world") == 11
    assert o200k.count("The quick brown fox") == 4
    assert cl100k.count("lone \ud800 surrogate") == cl100k.count("lone \ufffd surrogate")
    text = "Quarterly results, naïve Straße 😀 " * 50
    assert "".join(cl100k.pieces(text)) == text
    assert sum(cl100k.count(p) for p in cl100k.pieces(text)) == cl100k.count(text)
    cut = cl100k.longest_prefix(text, 40)
    assert cl100k.count(text[:cut]) <= 40 < cl100k.count(text[: cut + 1])
    assert cl100k.fits(text[:cut], 40) and not cl100k.fits(text, 40)
