"""OCR of PDF pages: the text-layer quality score, the OCR policies, boxes and page facts.

The policies are tested with a small reader written here, which records the
images it is given and answers with a fixed paragraph; the scanned corpus
page is read with the real Tesseract engine as well, when it is installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from corpus_scoring import CORPUS, needs_corpus, render, token_f1
from pdf_files import write_pdf
from PIL import Image, ImageDraw

from docworker.document import BlockSource, Document, TextSource
from docworker.errors import DependencyDown
from docworker.formats.base import (
    OcrLine,
    OcrPage,
    OcrParagraph,
    OcrReader,
    OcrWord,
    PageSelection,
    ParseContext,
    ParseLimits,
    Source,
)
from docworker.formats.pdf.ocr import MIN_QUALITY, text_quality
from docworker.formats.pdf.parser import PdfParser

SCANNED = CORPUS / "pdf" / "scanned-ocr-test.pdf"
ARTICLE = CORPUS / "pdf" / "multi-page-article.pdf"
MIME = "application/pdf"


@dataclass
class FakeReader:
    """An OCR reader answering every image with one paragraph over its middle half."""

    text: str = "Read from the image"
    seen: list[tuple[tuple[int, int], str, Any]] = field(default_factory=list)

    def read(
        self, image: Image.Image, *, languages: str | None = None, picture: bool = False
    ) -> OcrPage:
        self.seen.append((image.size, image.mode, image.info.get("dpi")))
        width, height = image.size
        box = (width / 4, height / 4, width * 3 / 4, height / 2)
        word = OcrWord(self.text, box, 0.9)
        line = OcrLine(self.text, box, 0.9, (word,))
        paragraph = OcrParagraph(self.text, box, 0.9, (line,))
        return OcrPage(width, height, 0.9, (paragraph,))


def parse(path: Path, reader: OcrReader | None = None, **context: Any) -> Document:
    return PdfParser().parse(Source(path, MIME), ParseContext(ocr=reader, **context))


def scan_image() -> Image.Image:
    image = Image.new("L", (600, 850), 255)
    ImageDraw.Draw(image).text((60, 60), "A scanned letter", fill=0)
    return image


# -- the quality score -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "The quick brown fox jumps over the lazy dog, twice (or more).",
        "Contents\r\nNotices . . . . . . . . . . . . . . . . . . . . vii\r\nPreface . . . . . xi",
        "코로나-19 관련 보험약관상 재해보험금 지급문제 및 개선과제",
        "تحسين الإنتاجية وحل المشكلات من خلال البرمجة",
        "Größenänderung über Straße, déjà vu à l'école.",
        "数据库安全控制和行级访问控制是本文的主题内容",
        "x + y = z; 50% of $10 is $5 <= 10 @ 3°C",
        "con\ufffe\r\ntinued words broken by pdfium's line-end hyphens",
    ],
    ids=["english", "dot-leaders", "korean", "arabic", "accents", "chinese", "symbols", "hyphen"],
)
def test_real_text_scores_high(text: str) -> None:
    assert text_quality(text) >= 0.9


@pytest.mark.parametrize(
    "text",
    [
        "\x01\x02\x03\x04 \x05\x06\x07\x08 \x0e\x0f\x10 ab",  # glyph codes as control characters
        "\ufffd\ufffd\ufffd\ufffd \ufffd\ufffd ok",  # unmapped glyphs
        "\ue000\ue001\ue002 \ue010\ue011\ue012 \uf0b7",  # private use
        "ÿÿÿÿÿÿ ÿÿÿÿ ÿÿÿÿÿ ÿÿÿ",  # pdfium's letter for glyphs it cannot map
        "(cid:12)(cid:13)(cid:14) (cid:15)(cid:16) a",  # pdfminer's marks, made into text
        "ThisIsWhatAFontsGlyphCodesLookLikeWhenReadAsLettersWithoutAnySpaceBetween" * 4,
        "☐☒♠♣♥♦ ■□▪▫▲△▼▽ ◊○●◘◙ ab",  # a font's codes mapped to its symbols
        "",
        " \r\n\t ",
    ],
    ids=[
        "controls",
        "replacement",
        "private-use",
        "y-diaeresis",
        "cid",
        "no-spaces",
        "mixed",
        "",
        "blank",
    ],
)
def test_garbage_scores_low(text: str) -> None:
    assert text_quality(text) < MIN_QUALITY


def test_a_long_page_is_sampled_from_end_to_end() -> None:
    text = "A line of ordinary text, as a page holds many of them.\r\n" * 200
    garbage = "\x01\x02\x03\x04\x05 " * 2000
    assert text_quality(text + text) == pytest.approx(1.0)
    assert text_quality(garbage + garbage) == 0.0
    assert 0.3 < text_quality(text + garbage) < 0.7


# -- the policies, with the reader written here ------------------------------------


@needs_corpus
def test_auto_reads_a_page_without_text_by_ocr() -> None:
    reader = FakeReader()
    doc = parse(SCANNED, reader)
    [(size, mode, dpi)] = reader.seen
    assert (size, mode, dpi) == ((2481, 3509), "L", (300, 300))
    [page] = doc.pages
    assert (page.text_source, page.confidence) == (TextSource.OCR, 0.9)
    [block] = doc.blocks
    assert (block.text, block.source, block.confidence) == (reader.text, BlockSource.OCR, 0.9)
    # Pixels at 300 dpi become points: a quarter of the A4 page in from each side.
    assert block.bbox is not None and block.words is not None
    box = (block.bbox.x0, block.bbox.y0, block.bbox.x1, block.bbox.y1)
    assert box == pytest.approx((595.2 / 4, 841.9 / 4, 595.2 * 3 / 4, 841.9 / 2), abs=0.2)
    assert block.words[0].bbox == block.bbox
    assert doc.warnings == []


@needs_corpus
def test_the_ocr_resolution_and_the_pixel_limit_set_the_image_size() -> None:
    reader = FakeReader()
    parse(SCANNED, reader, ocr_dpi=150)
    parse(SCANNED, reader, limits=ParseLimits(max_pixels=1_000_000))
    (low, _, low_dpi), (capped, _, _) = reader.seen
    assert low == pytest.approx((1240, 1754), abs=1) and low_dpi == (150, 150)
    assert capped[0] * capped[1] <= 1_000_000


@needs_corpus
def test_auto_keeps_a_good_text_layer() -> None:
    reader = FakeReader()
    doc = parse(ARTICLE, reader, pages=PageSelection.parse("1-2"))
    assert reader.seen == []
    assert {b.source for b in doc.blocks} == {BlockSource.TEXT_LAYER}
    assert {p.text_source for p in doc.pages} == {TextSource.TEXT}


@needs_corpus
def test_force_reads_every_page_by_ocr_and_reports_progress() -> None:
    reader, progress = FakeReader(), []
    doc = parse(
        ARTICLE,
        reader,
        ocr_policy="force",
        pages=PageSelection.parse("2-3"),
        progress=lambda fraction, message: progress.append((fraction, message)),
    )
    assert len(reader.seen) == 2
    assert [(b.page, b.text, b.source) for b in doc.blocks] == [
        (2, reader.text, BlockSource.OCR),
        (3, reader.text, BlockSource.OCR),
    ]
    assert progress == [(0.5, "page 2 of 5"), (1.0, "page 3 of 5")]


@needs_corpus
@pytest.mark.parametrize(
    ("policy", "reader", "reason"),
    [("off", FakeReader(), "OCR is off"), ("auto", None, "no OCR engine is available")],
)
def test_without_ocr_a_page_without_text_is_flagged(
    policy: str, reader: FakeReader | None, reason: str
) -> None:
    doc = parse(SCANNED, reader, ocr_policy=policy)
    assert doc.blocks == []
    [warning] = doc.warnings
    assert (warning.code, warning.page) == ("no-text-layer", 1)
    assert reason in warning.message
    assert reader is None or reader.seen == []


def test_auto_reads_a_garbage_text_layer_by_ocr(tmp_path: Path) -> None:
    # Characters the standard font cannot show come out of pdfium as "ÿ".
    path = write_pdf(tmp_path / "garbage.pdf", ["\ue000\ue001\ue002 \ue003\ue004\ue005\ue006"])
    assert parse(path).blocks[0].text.startswith("ÿÿÿ")
    reader = FakeReader()
    assert [b.source for b in parse(path, reader).blocks] == [BlockSource.OCR]


def test_auto_reads_a_scan_under_a_few_words_of_text_by_ocr(tmp_path: Path) -> None:
    scan = write_pdf(tmp_path / "scan.pdf", ["Bates 000123"], image=scan_image())
    doc = parse(scan, FakeReader())
    assert [(b.text, b.source) for b in doc.blocks] == [("Read from the image", BlockSource.OCR)]
    # A page of text with a picture on it is read from its text; the picture,
    # which the text leaves bare, is read as well (see test_pdf_mixed).
    text = [f"Line {n} of a page that holds much more text than a stamp." for n in range(8)]
    page = write_pdf(tmp_path / "page.pdf", text, image=scan_image())
    reader = FakeReader()
    doc = parse(page, reader)
    assert " ".join(b.text for b in doc.blocks if b.source is BlockSource.TEXT_LAYER) == " ".join(
        text
    )
    assert doc.pages[0].text_source == TextSource.MIXED


def test_a_blank_page_is_not_read_by_ocr(tmp_path: Path) -> None:
    reader = FakeReader()
    doc = parse(write_pdf(tmp_path / "blank.pdf", []), reader)
    assert reader.seen == []
    assert [w.code for w in doc.warnings] == ["no-text-layer"]


def test_ocr_finding_nothing_is_a_warning(tmp_path: Path) -> None:
    class Nothing:
        def read(
            self, image: Image.Image, *, languages: str | None = None, picture: bool = False
        ) -> OcrPage:
            return OcrPage(image.width, image.height, 0.0, ())

    doc = parse(write_pdf(tmp_path / "scan.pdf", [], image=scan_image()), Nothing())
    assert doc.blocks == []
    assert [(w.code, w.page) for w in doc.warnings] == [("ocr-no-text", 1)]
    assert doc.pages[0].text_source == TextSource.OCR


# -- the real engine ---------------------------------------------------------------


@needs_corpus
def test_tesseract_reads_the_scanned_corpus_page() -> None:
    engine = pytest.importorskip(
        "docworker.engines.ocr", reason="the Tesseract engine module is not there yet"
    )
    try:
        doc = parse(SCANNED, engine.TesseractOcr(), ocr_languages="eng")
    except DependencyDown as exc:
        pytest.skip(f"Tesseract is not usable here: {exc}")
    expected = (SCANNED.parent / "scanned-ocr-test.expected.md").read_text(encoding="utf-8")
    assert token_f1(render(doc), expected) >= 0.95
    assert doc.pages[0].text_source == TextSource.OCR
    assert 0.8 < (doc.pages[0].confidence or 0) <= 1
    [block] = doc.blocks
    assert block.bbox is not None and 0 < block.bbox.x0 < block.bbox.x1 < 595.3
