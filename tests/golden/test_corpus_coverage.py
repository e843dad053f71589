"""Corpus coverage: what every corpus document gives today, text or a precise refusal.

Every non-hostile, non-archive, non-media corpus file is listed in ``EXPECTED``
with its outcome, so this file is the honest record of what is read now:

* ``TEXT``: parses to non-empty text;
* ``EMPTY``: parses to empty text with a warning (empty files, image-only PDFs
  until OCR is wired);
* ``PASSWORD``: refused with :class:`PasswordRequired` without a password, and
  read with the password the manifest names;
* ``UNSUPPORTED``: a format not read yet, refused with :class:`UnsupportedFormat`
  (encrypted OOXML: :class:`PasswordRequired` even with its password).

Nothing may raise anything but a :class:`~docworker.errors.InputError`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bench.scoring import CorpusFile, corpus_root, documents
from docworker.errors import InputError, PasswordRequired, UnsupportedFormat, WrongPassword
from docworker.formats.base import PageSelection, ParseContext
from docworker.formats.registry import parse_path
from docworker.render import render_text

CORPUS = corpus_root()
pytestmark = pytest.mark.skipif(
    not (CORPUS / "MANIFEST.tsv").is_file(), reason=f"corpus not found at {CORPUS}"
)


@dataclass(frozen=True)
class Expect:
    outcome: str
    #: The password the manifest notes give, for encrypted files.
    password: str | None = None


TEXT = Expect("text")
EMPTY = Expect("empty")
UNSUPPORTED = Expect("unsupported")


def PASSWORD(password: str) -> Expect:
    return Expect("password", password)


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
    "pdf/scanned-ocr-test.pdf": EMPTY,
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
    "office/legacy-word.doc": UNSUPPORTED,
    "office/word6.doc": UNSUPPORTED,
    "office/workbook-multi-sheet.xlsx": TEXT,
    "office/xlsx-edge-cases.xlsx": TEXT,
    "office/encrypted-password-tika.xlsx": UNSUPPORTED,
    "office/legacy-excel.xls": UNSUPPORTED,
    "office/excel95.xls": UNSUPPORTED,
    "office/powerpoint-sample.pptx": TEXT,
    "office/pptx-chart.pptx": TEXT,
    "office/pptx-table.pptx": TEXT,
    "office/legacy-powerpoint.ppt": UNSUPPORTED,
    "office/text-document.odt": UNSUPPORTED,
    "office/encrypted.odt": UNSUPPORTED,
    "office/table-with-title.ods": UNSUPPORTED,
    "office/presentation.odp": UNSUPPORTED,
    "office/tika-test.rtf": UNSUPPORTED,
    "office/japanese.rtf": UNSUPPORTED,
    "office/poetry.epub": UNSUPPORTED,
    "office/email-simple.msg": UNSUPPORTED,
    "office/email-html-inline-image.eml": UNSUPPORTED,
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
    # images/ — read once OCR and image metadata are wired.
    "images/ocr-text.png": UNSUPPORTED,
    "images/english-and-korean.png": UNSUPPORTED,
    "images/paper-with-table.jpg": UNSUPPORTED,
    "images/chinese-simplified.jpeg": UNSUPPORTED,
    "images/japanese-vertical.jpeg": UNSUPPORTED,
    "images/docling-ocr.webp": UNSUPPORTED,
    "images/multipage.tif": UNSUPPORTED,
    "images/paper-page.tif": UNSUPPORTED,
    "images/rotated-plus10.png": UNSUPPORTED,
    "images/exif.jpg": UNSUPPORTED,
    "images/exif-gps.jpg": UNSUPPORTED,
    "images/test.gif": UNSUPPORTED,
    "images/document-page.heic": UNSUPPORTED,
    "images/tika-test.heic": UNSUPPORTED,
}

#: A long file is read only in part: coverage asks whether it reads, not how fast.
_PAGES_READ_OF_LONG_FILES = PageSelection.parse("1-10")

FILES = documents()


def _ctx(item: CorpusFile, password: str | None = None) -> ParseContext:
    pages = _PAGES_READ_OF_LONG_FILES if "huge" in item.path else None
    # Structure analysis on, as by default: it is where most of the code runs.
    return ParseContext(password=password, pages=pages)


def _text(item: CorpusFile, password: str | None = None) -> tuple[str, int]:
    document = parse_path(item.absolute, _ctx(item, password))
    return render_text(document), len(document.warnings)


def test_every_corpus_document_has_an_expected_outcome() -> None:
    assert {item.path for item in FILES} == set(EXPECTED)


def test_passwords_are_the_ones_the_manifest_names() -> None:
    for item in FILES:
        expected = EXPECTED[item.path]
        if expected.password is not None:
            assert f"password={expected.password}" in item.notes


@pytest.mark.parametrize("item", FILES, ids=lambda item: item.path)
def test_document_gives_text_or_a_precise_input_error(item: CorpusFile) -> None:
    expected = EXPECTED[item.path]
    if expected.outcome == "text":
        text, _ = _text(item)
        assert text.strip(), f"{item.path} gave no text"
    elif expected.outcome == "empty":
        text, warnings = _text(item)
        assert not text.strip()
        assert warnings, f"{item.path} gave empty text without saying why"
    elif expected.outcome == "password":
        with pytest.raises(PasswordRequired) as refused:
            _text(item)
        assert not isinstance(refused.value, WrongPassword)
        with pytest.raises(WrongPassword):
            _text(item, password="not-the-password")
        text, _ = _text(item, expected.password)
        assert text.strip(), f"{item.path} gave no text with its password"
    else:
        _assert_refused_as_unsupported(item)


def _assert_refused_as_unsupported(item: CorpusFile) -> None:
    encrypted_ooxml = item.kind in {"docx", "xlsx", "pptx"} and "encrypted" in item.notes
    expected_error = PasswordRequired if encrypted_ooxml else UnsupportedFormat
    with pytest.raises(InputError) as refused:
        _text(item)
    assert isinstance(refused.value, expected_error), repr(refused.value)
    assert refused.value.detail
