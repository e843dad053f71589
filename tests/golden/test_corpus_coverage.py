"""Corpus coverage: what every corpus document gives today, text or a precise refusal.

Every non-hostile, non-archive corpus file is listed in ``EXPECTED`` with its
outcome (of ``media/``, the subtitle files: audio and video are not documents
here), so this file is the honest record of what is read now:

* ``TEXT``: parses to non-empty text;
* ``EMPTY``: parses to empty text with a warning (empty files, photographs
  without text);
* ``PASSWORD``: refused with :class:`PasswordRequired` without a password, and
  read with the password the manifest names (or, where it names none, the one
  the file's origin gives, with that source);
* ``UNSUPPORTED``: a format not read yet, refused with :class:`UnsupportedFormat`.

Legacy Office files are read through LibreOffice (the ``convert`` fixture), and
skipped where it is not installed.

Nothing may raise anything but a :class:`~docworker.errors.InputError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.scoring import CorpusFile, corpus_root, documents
from docworker.engines.ocr import Preprocessing, TesseractOcr
from docworker.errors import InputError, PasswordRequired, UnsupportedFormat, WrongPassword
from docworker.formats.base import PageSelection, ParseContext
from docworker.formats.registry import parse_path
from docworker.render.document import render_text

CORPUS = corpus_root()
pytestmark = pytest.mark.skipif(
    not (CORPUS / "MANIFEST.tsv").is_file(), reason=f"corpus not found at {CORPUS}"
)


@dataclass(frozen=True)
class Expect:
    outcome: str
    #: The password the manifest notes give, for encrypted files.
    password: str | None = None
    #: Where the password comes from when the manifest notes do not give it.
    source: str | None = None


TEXT = Expect("text")
EMPTY = Expect("empty")
UNSUPPORTED = Expect("unsupported")


def PASSWORD(password: str, source: str | None = None) -> Expect:
    return Expect("password", password, source)


EXPECTED: dict[str, Expect] = {
    # pdf/ — pdfium reads both "broken" files (they break pdfminer, not pdfium).
    "pdf/minimal-document.pdf": TEXT,
    "pdf/latex-multicolumn.pdf": TEXT,
    "pdf/encrypted-libreoffice-password.pdf": PASSWORD("openpassword"),
    "pdf/acroform-fields.pdf": TEXT,
    "pdf/with-embedded-attachment.pdf": TEXT,
    "pdf/paper-page-with-table.pdf": TEXT,
    "pdf/ibm-redbook-sampled.pdf": TEXT,
    "pdf/multi-page-article.pdf": TEXT,
    "pdf/korean-report.pdf": TEXT,
    "pdf/arabic-rtl.pdf": TEXT,
    "pdf/code-and-formula.pdf": TEXT,
    "pdf/scanned-ocr-test.pdf": TEXT,
    "pdf/encrypted-password-1234.pdf": PASSWORD("1234"),
    "pdf/multi-column-2p.pdf": TEXT,
    "pdf/copy-protected.pdf": TEXT,
    "pdf/huge-619-pages.pdf": TEXT,
    "pdf/broken-failure-after-repair.pdf": TEXT,
    "pdf/broken-invalid-structure.pdf": TEXT,
    "pdf/rotated-page-90.pdf": TEXT,
    # office/
    "office/word-sample.docx": TEXT,
    "office/word-tables.docx": TEXT,
    "office/equations.docx": TEXT,
    "office/textbox.docx": TEXT,
    "office/handbook-1p.docx": TEXT,
    "office/docx-with-embedded-pdf.docx": TEXT,
    "office/legacy-word.doc": TEXT,
    "office/word6.doc": TEXT,
    "office/workbook-multi-sheet.xlsx": TEXT,
    "office/xlsx-edge-cases.xlsx": TEXT,
    "office/encrypted-password-tika.xlsx": PASSWORD("tika"),
    "office/legacy-excel.xls": TEXT,
    "office/excel95.xls": TEXT,
    "office/powerpoint-sample.pptx": TEXT,
    "office/pptx-chart.pptx": TEXT,
    "office/pptx-table.pptx": TEXT,
    "office/legacy-powerpoint.ppt": TEXT,
    "office/text-document.odt": TEXT,
    "office/encrypted.odt": PASSWORD("tika", source="Tika's ODFParserTest, which made the file"),
    "office/table-with-title.ods": TEXT,
    "office/presentation.odp": TEXT,
    "office/tika-test.rtf": TEXT,
    "office/japanese.rtf": TEXT,
    "office/poetry.epub": TEXT,
    "office/email-simple.msg": TEXT,
    "office/email-html-inline-image.eml": TEXT,
    # web/
    "web/wiki-duck.html": TEXT,
    "web/table-rowspan.html": TEXT,
    "web/cp1252.html": TEXT,
    "web/utf16le.html": TEXT,
    "web/with-scripts.html": TEXT,
    "web/wiki.md": TEXT,
    "web/nested.md": TEXT,
    "web/jats-article.xml": TEXT,
    "web/factbook-utf16.xml": TEXT,
    "web/simple.json": TEXT,
    "web/comma.csv": TEXT,
    "web/semicolon.csv": TEXT,
    "web/ragged-too-many-columns.csv": TEXT,
    "web/utf16.csv": TEXT,
    # text/
    "text/plain-utf8.txt": TEXT,
    "text/utf16le.txt": TEXT,
    "text/utf16be.txt": TEXT,
    "text/utf32.txt": TEXT,
    "text/cp1252.txt": TEXT,
    "text/russian-cp866.txt": TEXT,
    "text/ebcdic-cp500.txt": TEXT,
    "text/hebrew-iso8859-8i.txt": TEXT,
    "text/udhr-multilingual.txt": TEXT,
    "text/norwich-city.txt": TEXT,
    "text/empty.txt": EMPTY,
    "text/all-whitespace.txt": EMPTY,
    # media/ — subtitles only.
    "media/subtitles.srt": TEXT,
    "media/subtitles-utf8.vtt": TEXT,
    "media/webvtt-example.vtt": TEXT,
    # images/ — text through OCR; photographs give none, and say so.
    "images/ocr-text.png": TEXT,
    "images/english-and-korean.png": TEXT,
    "images/paper-with-table.jpg": TEXT,
    "images/chinese-simplified.jpeg": TEXT,
    "images/japanese-vertical.jpeg": TEXT,
    "images/docling-ocr.webp": TEXT,
    "images/multipage.tif": TEXT,
    "images/paper-page.tif": TEXT,
    "images/rotated-plus10.png": TEXT,
    "images/exif.jpg": EMPTY,
    "images/exif-gps.jpg": EMPTY,
    "images/test.gif": EMPTY,
    "images/document-page.heic": TEXT,
    "images/tika-test.heic": EMPTY,
}

#: Images are read through Tesseract, unprepared: coverage asks whether text
#: comes, not how good it is (the golden tests do), and preparation triples the time.
_OCR = TesseractOcr(preprocessing=Preprocessing.none())
#: A long file is read only in part: coverage asks whether it reads, not how fast.
_PAGES_READ_OF_LONG_FILES = PageSelection.parse("1-10")

#: The kinds of ``media/`` file that are documents: subtitles.
_MEDIA_DOCUMENTS = frozenset({"srt", "vtt"})
FILES = [
    item
    for item in documents(with_media=True)
    if item.folder != "media" or item.kind in _MEDIA_DOCUMENTS
]


#: The kinds of file read through LibreOffice.
_LEGACY_OFFICE = frozenset({"doc", "xls", "ppt"})
Converter = Callable[[Path, str], Path] | None


def _ctx(item: CorpusFile, convert: Converter, password: str | None = None) -> ParseContext:
    pages = _PAGES_READ_OF_LONG_FILES if "huge" in item.path else None
    # Structure analysis on, as by default: it is where most of the code runs.
    return ParseContext(password=password, pages=pages, convert=convert, ocr=_OCR)


def _text(item: CorpusFile, convert: Converter, password: str | None = None) -> tuple[str, int]:
    document = parse_path(item.absolute, _ctx(item, convert, password))
    return render_text(document), len(document.warnings)


def test_every_corpus_document_has_an_expected_outcome() -> None:
    assert {item.path for item in FILES} == set(EXPECTED)


def test_passwords_are_the_ones_the_manifest_names() -> None:
    for item in FILES:
        expected = EXPECTED[item.path]
        if expected.password is not None and expected.source is None:
            assert f"password={expected.password}" in item.notes


@pytest.mark.parametrize("item", FILES, ids=lambda item: item.path)
def test_document_gives_text_or_a_precise_input_error(item: CorpusFile, convert: Converter) -> None:
    expected = EXPECTED[item.path]
    if convert is None and item.kind in _LEGACY_OFFICE:
        pytest.skip("read through LibreOffice, which is not installed")
    if expected.outcome == "text":
        text, _ = _text(item, convert)
        assert text.strip(), f"{item.path} gave no text"
    elif expected.outcome == "empty":
        text, warnings = _text(item, convert)
        assert not text.strip()
        assert warnings, f"{item.path} gave empty text without saying why"
    elif expected.outcome == "password":
        with pytest.raises(PasswordRequired) as refused:
            _text(item, convert)
        assert not isinstance(refused.value, WrongPassword)
        with pytest.raises(WrongPassword):
            _text(item, convert, password="not-the-password")
        text, _ = _text(item, convert, expected.password)
        assert text.strip(), f"{item.path} gave no text with its password"
    else:
        _assert_refused_as_unsupported(item, convert)


def _assert_refused_as_unsupported(item: CorpusFile, convert: Converter) -> None:
    with pytest.raises(InputError) as refused:
        _text(item, convert)
    assert isinstance(refused.value, UnsupportedFormat), repr(refused.value)
    assert refused.value.detail
