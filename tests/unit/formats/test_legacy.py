"""Legacy Office files read through the real LibreOffice, with one engine for the module.

``fixtures/encrypted-password-docworker.doc`` and ``.xls`` were written by LibreOffice
7.4 from the corpus's ``word6.doc`` and ``legacy-excel.xls``, saved as Word 97 and
Excel 97 with the password ``docworker`` (RC4 CryptoAPI encryption). The workbooks
saved both as xls and xlsx are in ``tests/fixtures/spreadsheets`` (its README says how).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from corpus_scoring import CORPUS, needs_corpus, parse, render, token_f1, truth

from docworker.config import LibreOfficeSettings
from docworker.engines.libreoffice import LibreOfficeEngine
from docworker.errors import CorruptDocument, PasswordRequired, UnsupportedFormat, WrongPassword
from docworker.formats.base import ParseContext
from docworker.formats.ooxml.legacy import LegacyOfficeParser
from docworker.formats.ooxml.spreadsheet import XLSX_MIME, XlsxParser
from docworker.render.document import render_markdown, render_text

FIXTURES = Path(__file__).parent / "fixtures"
SPREADSHEETS = Path(__file__).parents[2] / "fixtures" / "spreadsheets"
PARSER = LegacyOfficeParser()
DOC, XLS, PPT = (
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
)

pytestmark = [
    needs_corpus,
    pytest.mark.skipif(
        not LibreOfficeEngine(LibreOfficeSettings()).status()["installed"],
        reason="LibreOffice (soffice, python3-uno) is not installed",
    ),
]


@pytest.fixture(scope="module")
def engine() -> Iterator[LibreOfficeEngine]:
    with LibreOfficeEngine(LibreOfficeSettings()) as libreoffice:
        yield libreoffice


@pytest.fixture
def ctx(engine: LibreOfficeEngine) -> ParseContext:
    return ParseContext(convert=engine.convert)


@pytest.mark.parametrize(
    ("relative", "mime", "floor"),
    [
        ("office/legacy-word.doc", DOC, 0.996),
        # The sheet's name is a heading, as for every workbook; the truth leaves it out.
        ("office/legacy-excel.xls", XLS, 0.95),
        ("office/legacy-powerpoint.ppt", PPT, 0.912),
    ],
)
def test_corpus_files_score_their_floor(
    ctx: ParseContext, relative: str, mime: str, floor: float
) -> None:
    document = parse(PARSER, CORPUS / relative, mime, ctx)
    assert token_f1(render(document), truth(relative)) >= floor


def test_a_word_document_keeps_its_format_type_and_metadata(ctx: ParseContext) -> None:
    document = parse(PARSER, CORPUS / "office" / "legacy-word.doc", DOC, ctx)
    assert (document.format, document.mime) == ("doc", DOC)
    assert document.metadata.authors == ["Christoph Auer"]
    # The file's own producer, not LibreOffice, which wrote the converted copy.
    assert document.metadata.producer == "Microsoft Office Word"
    assert document.metadata.encrypted is False


def test_word_6_and_excel_95_are_read(ctx: ParseContext) -> None:
    word6 = parse(PARSER, CORPUS / "office" / "word6.doc", DOC, ctx)
    assert "The quick brown fox jumps over the lazy dog" in render(word6)
    assert word6.metadata.title == "The quick brown fox jumps over the lazy dog"
    assert word6.metadata.producer is None
    excel95 = parse(PARSER, CORPUS / "office" / "excel95.xls", XLS, ctx)
    assert (excel95.format, excel95.mime) == ("xls", XLS)
    assert "Foglio1" in render(excel95)


def test_without_libreoffice_the_file_is_refused_saying_why() -> None:
    with pytest.raises(UnsupportedFormat, match="LibreOffice, which is not available here"):
        parse(PARSER, CORPUS / "office" / "legacy-word.doc", DOC)


@pytest.mark.parametrize(
    ("name", "mime", "text"),
    [
        ("encrypted-password-docworker.doc", DOC, "The quick brown fox"),
        ("encrypted-password-docworker.xls", XLS, "| 2024 | 180 |"),
    ],
)
def test_an_encrypted_file_needs_its_password(
    ctx: ParseContext, name: str, mime: str, text: str
) -> None:
    with pytest.raises(PasswordRequired) as refused:
        parse(PARSER, FIXTURES / name, mime, ctx)
    assert not isinstance(refused.value, WrongPassword)
    ctx.password = "wrong"
    with pytest.raises(WrongPassword):
        parse(PARSER, FIXTURES / name, mime, ctx)
    ctx.password = "docworker"
    document = parse(PARSER, FIXTURES / name, mime, ctx)
    assert text in render(document)
    assert document.metadata.encrypted is True


def test_a_file_libreoffice_cannot_open_is_corrupt(ctx: ParseContext, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.doc"
    truncated.write_bytes((CORPUS / "office" / "legacy-word.doc").read_bytes()[:8192])
    with pytest.raises(CorruptDocument):
        parse(PARSER, truncated, DOC, ctx)


def test_no_file_is_left_behind(engine: LibreOfficeEngine, ctx: ParseContext) -> None:
    scratch = Path(tempfile.gettempdir())
    before = set(scratch.glob("docworker-legacy-*"))
    ctx.password = "docworker"
    parse(PARSER, FIXTURES / "encrypted-password-docworker.doc", DOC, ctx)
    assert not set(scratch.glob("docworker-legacy-*")) - before
    converted = engine.convert(CORPUS / "office" / "word6.doc", "docx")
    converted.unlink()
    assert not list(converted.parent.iterdir())


@pytest.mark.parametrize(
    "xlsx",
    [CORPUS / "office" / "xlsx-edge-cases.xlsx", SPREADSHEETS / "typed-cells.xlsx"],
    ids=["edge-cases", "typed-cells"],
)
def test_a_workbook_gives_the_same_text_as_xls_and_as_xlsx(ctx: ParseContext, xlsx: Path) -> None:
    from_xlsx = parse(XlsxParser(), xlsx, XLSX_MIME)
    from_xls = parse(PARSER, SPREADSHEETS / f"{xlsx.stem}.xls", XLS, ctx)
    assert render_text(from_xls) == render_text(from_xlsx)
    assert render_markdown(from_xls) == render_markdown(from_xlsx)
    assert from_xls.metadata.extra["sheets"] == from_xlsx.metadata.extra["sheets"]
    assert (from_xls.format, from_xlsx.format) == ("xls", "xlsx")


def test_both_give_stored_values_not_number_formats(ctx: ParseContext) -> None:
    document = parse(PARSER, SPREADSHEETS / "typed-cells.xls", XLS, ctx)
    [typed, merged] = [b.table for b in document.blocks if b.table is not None]
    assert typed is not None and merged is not None
    values = dict(typed.grid()[1:])
    assert values["percentage"] == "0.25"  # shown as 25%
    assert values["currency"] == "1234.5"  # shown as $1,234.50
    assert values["three places"] == "2.5"  # shown as 2.500
    assert values["date"] == "2024-02-29"  # shown as 29/02/2024
    assert values["date and time"] == "2024-02-29 13:45:00"
    assert values["formula"] == "84"
    assert values["text"] == "Zürich, 12 €"
    assert merged.grid()[0] == ["Quarterly totals"] * 3
