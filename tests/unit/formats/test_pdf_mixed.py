"""Mixed PDF pages: a usable text layer plus pictures of text, the pictures read by OCR.

Pages are written here from corpus pictures (a text image, a photo) placed
under lines of real text, and read with the real Tesseract engine through a
reader that counts the images it is given; the corpus's IBM Redbook has a page
of screenshots. The choice of pictures is tested on its own, as geometry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest
from corpus_scoring import CORPUS, needs_corpus
from pdf_files import write_page
from PIL import Image

from docworker.document import BBox, Block, BlockSource, Document, TextSource
from docworker.engines.ocr import TesseractOcr
from docworker.errors import DependencyDown
from docworker.formats.base import (
    MixedPageOcr,
    OcrPage,
    OcrPolicy,
    OcrReader,
    PageSelection,
    ParseContext,
    Source,
)
from docworker.formats.pdf.layout import Box, Line, interleave
from docworker.formats.pdf.ocr import picture_regions
from docworker.formats.pdf.parser import PdfParser

MIME = "application/pdf"
LETTER = CORPUS / "images" / "ocr-text.png"  # "This file contains some words."
PHOTO = CORPUS / "images" / "exif.jpg"  # a duck on water
REDBOOK = CORPUS / "pdf" / "ibm-redbook-sampled.pdf"

HEADING = "Quarterly report of the regional office"
OVER = "Filed under correspondence"
CLOSING = "The letter above came in on Monday."
#: Where the picture goes, in PDF user space (left, bottom, right, top), and as displayed.
PICTURE = (72.0, 400.0, 563.0, 711.0)
SHOWN = (72.0, 842.0 - 711.0, 563.0, 842.0 - 400.0)
TEXTS = [(HEADING, 72.0, 770.0), (OVER, 100.0, 500.0), (CLOSING, 72.0, 370.0)]


@dataclass
class CountingReader:
    """The Tesseract reader, noting the size of each image it is given."""

    engine: OcrReader
    seen: list[tuple[int, int]] = field(default_factory=list)

    def read(
        self, image: Image.Image, *, languages: str | None = None, picture: bool = False
    ) -> OcrPage:
        self.seen.append(image.size)
        return self.engine.read(image, languages=languages, picture=picture)


@pytest.fixture(scope="module")
def tesseract() -> OcrReader:
    engine = TesseractOcr()
    try:
        engine.read(Image.new("L", (64, 64), 255))
    except DependencyDown as exc:
        pytest.skip(f"Tesseract is not usable here: {exc}")
    return engine


@pytest.fixture
def reader(tesseract: OcrReader) -> CountingReader:
    return CountingReader(tesseract)


def parse(
    path: Path, reader: OcrReader | None, policy: OcrPolicy = "auto", **context: Any
) -> Document:
    ctx = ParseContext(ocr=reader, ocr_policy=policy, **context)
    return PdfParser().parse(Source(path, MIME), ctx)


def picture(path: Path) -> Image.Image:
    return Image.open(path).convert("RGB")


def ocr_blocks(doc: Document) -> list[Block]:
    return [b for b in doc.blocks if b.source is BlockSource.OCR]


def inside(box: BBox, bounds: Box | BBox, slack: float = 1.0) -> bool:
    if isinstance(bounds, BBox):
        bounds = (bounds.x0, bounds.y0, bounds.x1, bounds.y1)
    x0, y0, x1, y1 = bounds
    return (
        x0 - slack <= box.x0 <= box.x1 <= x1 + slack
        and y0 - slack <= box.y0 <= box.y1 <= y1 + slack
    )


# -- pages written from corpus pictures --------------------------------------------


@needs_corpus
@pytest.mark.parametrize("structure", [True, False], ids=["markdown", "text"])
def test_a_pasted_scan_under_typed_text_makes_a_mixed_page(
    tmp_path: Path, reader: CountingReader, structure: bool
) -> None:
    path = write_page(tmp_path / "mixed.pdf", TEXTS, [(picture(LETTER), PICTURE)])
    doc = parse(path, reader, structure=structure)
    [page] = doc.pages
    assert page.text_source == TextSource.MIXED
    assert page.confidence is not None and 0.6 <= page.confidence <= 1
    # Only the picture is rendered, at 300 dpi: 491 x 311 points.
    [(width, height)] = reader.seen
    assert width == pytest.approx(491 * 300 / 72, abs=2)
    assert height == pytest.approx(311 * 300 / 72, abs=2)
    [block] = ocr_blocks(doc)
    assert block.text == "This file contains some words."
    assert block.confidence is not None and block.confidence >= 0.6
    assert block.bbox is not None and inside(block.bbox, SHOWN)
    assert block.words is not None and len(block.words) == 5
    assert all(inside(word.bbox, block.bbox) for word in block.words)
    # The text layer's lines are all there, once, the picture's text in reading order.
    assert [(b.text, b.source) for b in doc.blocks] == [
        (HEADING, BlockSource.TEXT_LAYER),
        (block.text, BlockSource.OCR),
        (OVER, BlockSource.TEXT_LAYER),
        (CLOSING, BlockSource.TEXT_LAYER),
    ]


@needs_corpus
def test_a_picture_on_a_turned_page_is_read_where_it_is_shown(
    tmp_path: Path, reader: CountingReader
) -> None:
    # Stored sideways, shown upright by the page's /Rotate: the picture's box
    # (100, 72, 411, 563) in user space is (72, 100, 563, 411) as displayed.
    texts = [(HEADING, 60.0, 72.0), (CLOSING, 450.0, 72.0)]
    path = write_page(
        tmp_path / "turned.pdf",
        texts,
        [(picture(LETTER), (100.0, 72.0, 411.0, 563.0))],
        turn=90,
        rotation=90,
    )
    doc = parse(path, reader)
    [page] = doc.pages
    assert (page.width, page.height, page.text_source) == (842, 595, TextSource.MIXED)
    [block] = ocr_blocks(doc)
    assert block.text == "This file contains some words."
    assert block.bbox is not None and inside(block.bbox, (72.0, 100.0, 563.0, 411.0))
    assert [b.text for b in doc.blocks] == [HEADING, block.text, CLOSING]


@needs_corpus
def test_a_photo_without_text_adds_nothing(tmp_path: Path, reader: CountingReader) -> None:
    path = write_page(tmp_path / "photo.pdf", TEXTS, [(picture(PHOTO), (72, 400, 372, 604))])
    doc = parse(path, reader)
    # The photo was looked at, and what OCR made of it was dropped.
    assert len(reader.seen) == 1
    assert ocr_blocks(doc) == []
    assert [(p.text_source, p.confidence) for p in doc.pages] == [(TextSource.TEXT, None)]
    assert [b.text for b in doc.blocks] == [HEADING, OVER, CLOSING]
    assert doc.warnings == []


@needs_corpus
def test_small_pictures_and_other_policies_are_not_read_as_mixed(
    tmp_path: Path, reader: CountingReader
) -> None:
    path = write_page(tmp_path / "mixed.pdf", TEXTS, [(picture(LETTER), PICTURE)])
    # The picture covers 30% of the page: under a larger minimum, it is not read.
    doc = parse(path, reader, mixed_pages=MixedPageOcr(min_share=0.4))
    assert reader.seen == [] and ocr_blocks(doc) == []
    assert doc.pages[0].text_source == TextSource.TEXT
    # OCR off: nothing is read.
    assert ocr_blocks(parse(path, reader, "off")) == [] and reader.seen == []
    # OCR forced: the whole page is read instead of its text layer.
    doc = parse(path, reader, "force")
    assert len(reader.seen) == 1 and reader.seen[0][0] == pytest.approx(595 * 300 / 72, abs=2)
    assert doc.pages[0].text_source == TextSource.OCR
    assert {b.source for b in doc.blocks} == {BlockSource.OCR}


@needs_corpus
@pytest.mark.parametrize(
    "name",
    ["multi-page-article.pdf", "korean-report.pdf", "latex-multicolumn.pdf"],
)
def test_text_pdfs_are_not_read_by_ocr(reader: CountingReader, name: str) -> None:
    # The Korean report has a picture, but its text layer covers it.
    doc = parse(CORPUS / "pdf" / name, reader)
    assert reader.seen == []
    assert {p.text_source for p in doc.pages} == {TextSource.TEXT}
    assert ocr_blocks(doc) == []


# -- a corpus page of screenshots --------------------------------------------------


def _image_boxes(path: Path, number: int) -> list[Box]:
    """The displayed boxes of a page's image objects, read from pdfium here."""
    pdf = pdfium.PdfDocument(path)
    try:
        page = pdf[number - 1]
        assert page.get_rotation() == 0
        height = page.get_height()
        boxes = []
        for item in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE]):
            left, bottom, right, top = item.get_bounds()
            boxes.append((left, height - top, right, height - bottom))
        return boxes
    finally:
        pdf.close()


@needs_corpus
def test_the_redbook_page_of_screenshots_is_mixed(reader: CountingReader) -> None:
    doc = parse(REDBOOK, reader, pages=PageSelection.parse("15"))
    [page] = doc.pages
    assert page.text_source == TextSource.MIXED
    # Two screenshots: a query plan and an index advisor window.
    assert len(reader.seen) == 2
    read = " ".join(b.text for b in ocr_blocks(doc))
    for words in ("Nested Loop Join", "Index Probe", "Statistics Advisor", "Binary Radix"):
        assert words in read
    screenshots = _image_boxes(REDBOOK, 15)
    for block in ocr_blocks(doc):
        assert block.bbox is not None
        assert any(inside(block.bbox, box) for box in screenshots), block
    # The text layer's captions and steps come once each, in their places.
    text = [b.text for b in doc.blocks if b.source is BlockSource.TEXT_LAYER]
    assert sum("Figure 4-69 Index advice with no RCAC" in t for t in text) == 1
    assert sum("Figure 4-68 Visual Explain with RCAC enabled" in t for t in text) == 1
    order = [b.text for b in doc.blocks]
    first_plan = next(i for i, b in enumerate(doc.blocks) if "Nested Loop Join" in b.text)
    caption = next(i for i, t in enumerate(order) if t.startswith("Figure 4-68"))
    assert first_plan < caption


# -- which pictures, and where their text goes -------------------------------------


def _line(box: Box) -> Line:
    return Line("text", *box)


def test_pictures_that_touch_are_one_and_small_ones_are_left() -> None:
    limits = MixedPageOcr()
    strips = [(100.0, 100.0 + 50 * n, 500.0, 151.0 + 50 * n) for n in range(4)]
    icon = (20.0, 20.0, 35.0, 35.0)
    assert picture_regions([*strips, icon], [], 595, 842, limits) == [(100, 100, 500, 301)]
    # A thin rule-like picture, and one under the minimum share of the page.
    assert picture_regions([(50, 50, 550, 60), (50, 100, 150, 160)], [], 595, 842, limits) == []


def test_pictures_the_text_layer_covers_are_left() -> None:
    limits = MixedPageOcr()
    region = (100.0, 100.0, 500.0, 400.0)
    caption = [_line((110.0, 380.0, 490.0, 392.0))]
    assert picture_regions([region], caption, 595, 842, limits) == [region]
    paragraph = [_line((100.0, 100.0 + 16 * n, 500.0, 112.0 + 16 * n)) for n in range(18)]
    assert picture_regions([region], paragraph, 595, 842, limits) == []


def test_pictures_are_clipped_to_the_page_and_capped_in_number() -> None:
    limits = MixedPageOcr(max_images=2)
    pictures = [(-20.0, 700.0, 200.0, 900.0), (300, 300, 400, 420), (50, 50, 400, 250)]
    assert picture_regions(pictures, [], 595, 842, limits) == [
        (50, 50, 400, 250),
        (0, 700, 200, 842),
    ]


def test_a_picture_goes_before_the_text_under_it_in_its_column() -> None:
    left = [(50.0, 100.0, 290.0, 200.0), (50.0, 400.0, 290.0, 500.0)]
    right = [(310.0, 100.0, 550.0, 200.0), (310.0, 400.0, 550.0, 500.0)]
    items = ["L1", "L2", "R1", "R2"]
    boxes = left + right
    assert interleave(items, boxes, [((320.0, 220.0, 540.0, 380.0), "P")]) == [
        "L1",
        "L2",
        "R1",
        "P",
        "R2",
    ]
    # Nothing under it in its column: after the column's last block.
    assert interleave(items, boxes, [((60.0, 520.0, 280.0, 700.0), "P")]) == [
        "L1",
        "L2",
        "P",
        "R1",
        "R2",
    ]
