"""The cap on a document's text (``limits.max_text_chars``): cut, said, and the job partial."""

from __future__ import annotations

from pathlib import Path

from docworker.config import Settings
from docworker.document import BlockKind, DocumentBuilder, Table, TableCell
from docworker.formats.base import ParseContext, ParseLimits
from docworker.formats.registry import TEXT_TRUNCATED, cap_text, parse_path
from docworker.operations import get_operation, validate_params
from docworker.operations.base import InputFile, operation_context


def _document() -> DocumentBuilder:
    builder = DocumentBuilder("text", "text/plain")
    builder.add(BlockKind.PARAGRAPH, "a" * 40)
    builder.add(BlockKind.PARAGRAPH, "b" * 40)
    table = Table(n_rows=1, n_cols=1, cells=[TableCell(row=0, col=0, text="c" * 30)])
    builder.add(BlockKind.TABLE, table=table)
    builder.add(BlockKind.PARAGRAPH, "d" * 40)
    return builder


def test_a_document_under_the_cap_is_untouched() -> None:
    doc = _document().finish()
    assert cap_text(doc, 10_000) is doc


def test_the_text_is_cut_where_it_passes_the_cap() -> None:
    doc = _document().finish()
    cut = cap_text(doc, 60)
    assert [b.text for b in cut.blocks] == ["a" * 40, "b" * 20]
    [warning] = cut.warnings
    assert warning.code == TEXT_TRUNCATED and "cut at 60 of its" in warning.message
    # The metadata still describes the whole document.
    assert cut.metadata.char_count == doc.metadata.char_count


def test_a_table_that_does_not_fit_is_left_out_whole() -> None:
    doc = _document().finish()
    cut = cap_text(doc, 90)
    assert [b.kind for b in cut.blocks] == [BlockKind.PARAGRAPH, BlockKind.PARAGRAPH]


def test_parsing_and_extracting_honour_the_setting(tmp_path: Path) -> None:
    text = tmp_path / "long.txt"
    text.write_text("word " * 2000)
    parsed = parse_path(text, ParseContext(limits=ParseLimits(max_text_chars=1000)))
    assert sum(len(b.text) for b in parsed.blocks) == 1000
    settings = Settings(limits={"max_text_chars": 1000})
    operation = get_operation("extract")
    params = validate_params(operation, {"output": "text"})
    result = operation.run(operation_context(settings), InputFile(text, text.name), params)
    assert len(result.payload["content"]) <= 1000
    assert [w["code"] for w in result.payload["warnings"]] == [TEXT_TRUNCATED]
    # A result that lost text makes its job partial.
    assert [e["code"] for e in result.errors] == [TEXT_TRUNCATED]
