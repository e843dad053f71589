"""Searchable PDFs of corpus images and PDFs, read by the real Tesseract and checked
with pdfium's text extraction: the words come back in order, where their boxes are."""

from __future__ import annotations

import ctypes
import difflib
import re
from pathlib import Path

import numpy as np
import pypdfium2
import pypdfium2.raw as pdfium_c
import pytest
from PIL import Image, ImageOps

from bench.scoring import corpus_root, token_f1, tokens
from docworker.engines.ocr import TesseractOcr
from docworker.errors import ProcessingFailed
from docworker.formats.base import OcrPage, OcrWord
from docworker.formats.pdf.ocr import render_page
from docworker.render.glyphless_font import glyphless_font
from docworker.render.searchable_pdf import SearchablePdf

CORPUS = corpus_root()
pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="test corpus not present")


def upright(relative: str, frame: int = 0) -> Image.Image:
    with Image.open(CORPUS / relative) as image:
        image.seek(frame)
        turned = ImageOps.exif_transpose(image)
        turned.load()
        return turned


def words(ocr: OcrPage) -> list[OcrWord]:
    return [word for paragraph in ocr.paragraphs for word in paragraph.words]


def extracted(pdf: pypdfium2.PdfDocument, index: int = 0) -> str:
    # pdfium marks a hyphen that ends a line with U+FFFE.
    return pdf[index].get_textpage().get_text_range().replace("\ufffe", "-")


def same_sequence(ocr: OcrPage, text: str) -> float:
    """How alike the OCR words, in reading order, and ``text`` are, spaces aside."""
    expected = "".join(word.text for word in words(ocr))
    return difflib.SequenceMatcher(None, expected, "".join(text.split()), autojunk=False).ratio()


def char_boxes(page: pypdfium2.PdfPage, needle: str, start: int = 0) -> list[tuple[float, ...]]:
    """The boxes (user space) of the characters of the first ``needle`` from char ``start``."""
    textpage = page.get_textpage()
    text = textpage.get_text_range()
    at = text.index(needle, start)
    return [textpage.get_charbox(at + i) for i in range(len(needle))]


def within(inner: tuple[float, ...], outer: tuple[float, ...], slack: float = 0.5) -> bool:
    return (
        outer[0] - slack <= inner[0] <= inner[2] <= outer[2] + slack
        and outer[1] - slack <= inner[1] <= inner[3] <= outer[3] + slack
    )


def centre(box: tuple[float, ...]) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def in_points(box: tuple[float, ...], page_height: float, points: float) -> tuple[float, ...]:
    """A box in pixels of an unrotated page's image → PDF user space (y up)."""
    x0, y0, x1, y1 = box
    return (x0 * points, page_height - y1 * points, x1 * points, page_height - y0 * points)


def embedded_fonts(page: pypdfium2.PdfPage) -> list[bytes]:
    """The font programs embedded for the text objects of ``page``, as pdfium loaded them."""
    programs = []
    for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_TEXT]):
        font = pdfium_c.FPDFTextObj_GetFont(obj.raw)
        assert pdfium_c.FPDFFont_GetIsEmbedded(font) == 1
        size = ctypes.c_size_t()
        pdfium_c.FPDFFont_GetFontData(font, None, 0, size)
        data = (ctypes.c_uint8 * size.value)()
        assert pdfium_c.FPDFFont_GetFontData(font, data, size.value, size)
        programs.append(bytes(data))
    return programs


def made(tmp_path: Path, add: list[tuple[Image.Image, OcrPage]]) -> Path:
    target = tmp_path / "searchable.pdf"
    with SearchablePdf() as searchable:
        for image, ocr in add:
            searchable.add_image_page(image, ocr)
        searchable.save(target)
    return target


def test_an_image_page_carries_its_words_on_their_boxes(tmp_path: Path) -> None:
    image = upright("images/ocr-text.png")
    ocr = TesseractOcr().read(image)
    pdf = pypdfium2.PdfDocument(made(tmp_path, [(image, ocr)]))
    # The PNG records its resolution (143.99 dpi): 982 × 622 pixels are 491 × 311 points.
    points = 72 / image.info["dpi"][0]
    width, height = pdf[0].get_size()
    assert (width, height) == pytest.approx((982 * points, 622 * points), abs=0.01)
    assert (round(width), round(height)) == (491, 311)
    text = extracted(pdf)
    assert text == ocr.text == "This file contains some words."
    [line] = ocr.paragraphs[0].lines
    word = next(w for w in line.words if w.text == "contains")
    word_box = in_points(word.bbox, height, points)
    line_box = in_points(line.bbox, height, points)
    boxes = char_boxes(pdf[0], "contains")
    for box in boxes:
        x, y = centre(box)
        assert word_box[0] <= x <= word_box[2] and word_box[1] <= y <= word_box[3]
        assert within(box, (word_box[0], line_box[1], word_box[2], line_box[3]))
    # In order from left to right, and the word spans its box.
    assert [b[0] for b in boxes] == sorted(b[0] for b in boxes)
    assert boxes[0][0] - word_box[0] < 1 and word_box[2] - boxes[-1][2] < 1


def test_the_words_are_in_a_small_font_of_their_own(tmp_path: Path) -> None:
    """The font is made in code, under a kilobyte: the PDF of a small scan stays small."""
    source = CORPUS / "images/ocr-text.png"
    image = upright("images/ocr-text.png")
    target = made(tmp_path, [(image, TesseractOcr().read(image))])
    pdf = pypdfium2.PdfDocument(target)
    assert extracted(pdf) == "This file contains some words."
    programs = embedded_fonts(pdf[0])
    assert len(programs) == 5 and set(programs) == {glyphless_font()}
    assert target.stat().st_size < 2 * source.stat().st_size + 30_000


def test_a_word_of_one_character_is_found_and_selected_over_its_box(tmp_path: Path) -> None:
    """pdfium measures characters by their glyph's points: the glyph has a box though it
    paints nothing, or a word of one character would have no width, and be left out."""
    image = upright("images/multipage.tif")
    ocr = TesseractOcr().read(image)
    pdf = pypdfium2.PdfDocument(made(tmp_path, [(image, ocr)]))
    page, points = pdf[0], 72 / 96
    text = extracted(pdf)
    assert " ".join(text.split()) == "Multipage TIFF Example Page 1"
    line = next(line for p in ocr.paragraphs for line in p.lines if line.text.endswith("1"))
    word = line.words[-1]
    assert word.text == "1"
    height = page.get_size()[1]
    word_box = in_points(word.bbox, height, points)
    line_box = in_points(line.bbox, height, points)
    [char] = char_boxes(page, "1")
    assert char[0] == pytest.approx(word_box[0], abs=0.5)
    assert char[2] == pytest.approx(word_box[2], abs=0.5)
    # pdfium raises the top of a glyph's box by a 64th (of 58 points here).
    assert within(char, (word_box[0], line_box[1], word_box[2], line_box[3]), slack=1)
    # What a viewer highlights when the word is selected: the word's box, the line high.
    textpage = page.get_textpage()
    assert textpage.count_rects(text.index("1"), 1) == 1
    left, bottom, right, top = textpage.get_rect(0)
    assert (left, right) == pytest.approx((word_box[0], word_box[2]), abs=0.5)
    assert (bottom, top) == pytest.approx((line_box[1], line_box[3]), abs=1)


def test_the_text_is_invisible_and_the_page_shows_the_image(tmp_path: Path) -> None:
    image = upright("images/english-and-korean.png")  # RGBA: transparency becomes white
    ocr = TesseractOcr(languages="eng+kor").read(image)
    pdf = pypdfium2.PdfDocument(made(tmp_path, [(image, ocr)]))
    page = pdf[0]
    modes = {
        pdfium_c.FPDFTextObj_GetTextRenderMode(obj.raw)
        for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_TEXT])
    }
    assert modes == {pdfium_c.FPDF_TEXTRENDERMODE_INVISIBLE}
    # No dpi recorded: 300 assumed.
    assert page.get_size() == pytest.approx((650 * 72 / 300, 814 * 72 / 300), abs=0.01)
    [picture] = page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE])
    assert picture.get_matrix().get() == pytest.approx((156, 0, 0, 195.36, 0, 0))
    shown = np.asarray(picture.get_bitmap().to_pil().convert("RGB"))
    white = Image.new("RGBA", image.size, "white")
    assert np.array_equal(shown, np.asarray(Image.alpha_composite(white, image).convert("RGB")))


@pytest.mark.parametrize(
    ("relative", "languages"),
    [
        ("images/english-and-korean.png", "eng+kor"),
        ("images/chinese-simplified.jpeg", "chi_sim"),
        ("images/japanese-vertical.jpeg", "jpn_vert"),
    ],
)
def test_text_in_any_script_comes_back(tmp_path: Path, relative: str, languages: str) -> None:
    image = upright(relative)
    ocr = TesseractOcr(languages=languages).read(image)
    text = extracted(pypdfium2.PdfDocument(made(tmp_path, [(image, ocr)])))
    assert "\x00" not in text
    assert same_sequence(ocr, text) > 0.99
    if relative.startswith("images/english"):
        # Where spaces go between Korean syllables is pdfium's guess, from the gaps.
        latin = [tokens(re.sub(r"[^\x00-\x7f]", " ", t)) for t in (text, ocr.text)]
        assert token_f1(*latin) > 0.97
        assert "안녕하세요" in text and "RULES AND INSTRUCTIONS" in text


def test_frames_become_pages_sized_by_their_resolution(tmp_path: Path) -> None:
    frames = [upright("images/multipage.tif", frame) for frame in (0, 1)]
    reader = TesseractOcr()
    pdf = pypdfium2.PdfDocument(made(tmp_path, [(f, reader.read(f)) for f in frames]))
    # 800 × 600 pixels at the 96 dpi the TIFF records.
    assert [pdf[i].get_size() for i in range(len(pdf))] == [(600.0, 450.0)] * 2
    for index in (0, 1):
        assert " ".join(extracted(pdf, index).split()) == f"Multipage TIFF Example Page {index + 1}"


@pytest.mark.parametrize("angle", [90, 270])
def test_turned_text_runs_the_way_it_is_read(tmp_path: Path, angle: int) -> None:
    """Turned a quarter one way the OCR engine turns the image back; turned the other
    way Tesseract reads the lines downwards as they are: both give words along their lines."""
    image = upright("images/docling-ocr.webp").rotate(angle, expand=True)
    ocr = TesseractOcr().read(image)
    assert ocr.rotation_applied == (90 if angle == 90 else 0)
    pdf = pypdfium2.PdfDocument(made(tmp_path, [(image, ocr)]))
    page = pdf[0]
    text = extracted(pdf)
    assert same_sequence(ocr, text) > 0.99
    assert "Docling bundles PDF document conversion" in " ".join(text.split())
    points = 72 / 300
    height = page.get_size()[1]
    word = next(w for w in words(ocr) if w.text == "conversion")
    box = in_points(word.bbox, height, points)
    boxes = char_boxes(page, "conversion")
    assert all(box[0] <= centre(b)[0] <= box[2] and box[1] <= centre(b)[1] <= box[3] for b in boxes)
    ys = [centre(b)[1] for b in boxes]
    # Turned counter-clockwise (90) the text reads upwards, clockwise (270) downwards.
    assert ys == sorted(ys, reverse=angle == 270)


def test_upside_down_lines_come_back_in_order(tmp_path: Path) -> None:
    """pdfium orders the separate words of a line running leftwards by their positions:
    such a line is one piece of text, over the line's box."""
    image = upright("images/docling-ocr.webp").rotate(180)
    ocr = TesseractOcr().read(image)
    assert ocr.rotation_applied == 180
    pdf = pypdfium2.PdfDocument(made(tmp_path, [(image, ocr)]))
    text = extracted(pdf)
    assert " ".join(text.split()) == " ".join(ocr.text.split())
    line = ocr.paragraphs[0].lines[0]
    box = in_points(line.bbox, pdf[0].get_size()[1], 72 / 300)
    chars = char_boxes(pdf[0], line.text)
    assert all(within(char, box, slack=1) for char in chars)
    # Upside down: the line's first letter is at its right.
    assert centre(chars[0])[0] > centre(chars[-1])[0]


def test_a_pdf_keeps_its_pages_and_gains_their_words(tmp_path: Path) -> None:
    scanned = CORPUS / "pdf/scanned-ocr-test.pdf"
    turned = tmp_path / "two-pages.pdf"
    source = pypdfium2.PdfDocument(scanned)
    source.import_pages(pypdfium2.PdfDocument(scanned))
    source[1].set_rotation(90)
    source.save(turned)
    source = pypdfium2.PdfDocument(turned)
    reader = TesseractOcr()
    target = tmp_path / "searchable.pdf"
    read: list[tuple[OcrPage, float]] = []
    with SearchablePdf() as searchable:
        searchable.copy_pdf_pages(source, [1, 2])
        for number in (1, 2):
            image, points = render_page(source[number - 1], 120, 10**8)
            read.append((reader.read(image), points))
            searchable.add_pdf_words(number, *read[-1])
        searchable.save(target)
        assert searchable.warnings == []
    pdf = pypdfium2.PdfDocument(target)
    assert len(pdf) == 2
    for index in (0, 1):
        original, made_page = source[index], pdf[index]
        assert made_page.get_size() == original.get_size()
        assert made_page.get_rotation() == original.get_rotation()
        before = np.asarray(original.render(scale=0.5).to_pil(), dtype=np.int16)
        after = np.asarray(made_page.render(scale=0.5).to_pil(), dtype=np.int16)
        assert np.array_equal(before, after)
        ocr = read[index][0]
        assert same_sequence(ocr, extracted(pdf, index)) > 0.99
        assert "Docling bundles PDF document" in " ".join(extracted(pdf, index).split())
    # The upright page: a word's characters sit in its box, in points.
    ocr, points = read[0]
    word = next(w for w in words(ocr) if w.text == "Markdown")
    box = in_points(word.bbox, pdf[0].get_size()[1], points)
    for char in char_boxes(pdf[0], "Markdown"):
        x, y = centre(char)
        assert box[0] <= x <= box[2] and box[1] <= y <= box[3]


def test_a_rotated_page_gets_its_words_where_its_text_layer_has_them(tmp_path: Path) -> None:
    """The corpus's page turned by /Rotate 90 has a text layer: the words read from its
    image land on that layer's own words, and the page is said to hold its text twice."""
    source = pypdfium2.PdfDocument(CORPUS / "pdf/rotated-page-90.pdf")
    image, points = render_page(source[0], 150, 10**8)
    ocr = TesseractOcr().read(image)
    target = tmp_path / "searchable.pdf"
    with SearchablePdf() as searchable:
        searchable.copy_pdf_pages(source, [1])
        searchable.add_pdf_words(1, ocr, points)
        searchable.save(target)
        assert [w.code for w in searchable.warnings] == ["searchable-pdf-text-layer"]
    page = pypdfium2.PdfDocument(target)[0]
    layer = source[0].get_textpage()
    truth = char_boxes(source[0], "Rotated")
    truth_box = (truth[0][0], min(b[1] for b in truth), truth[-1][2], max(b[3] for b in truth))
    # The OCR words follow the page's own text.
    ours = char_boxes(page, "Rotated", start=layer.count_chars())
    for char in ours:
        x, y = centre(char)
        assert (
            truth_box[0] - 1 <= x <= truth_box[2] + 1 and truth_box[1] - 1 <= y <= truth_box[3] + 1
        )
    assert [b[0] for b in ours] == sorted(b[0] for b in ours)


def test_pages_share_what_they_shared_and_only_pages_read_are_kept(tmp_path: Path) -> None:
    article = CORPUS / "pdf/multi-page-article.pdf"
    source = pypdfium2.PdfDocument(article)
    target = tmp_path / "searchable.pdf"
    with SearchablePdf() as searchable:
        searchable.copy_pdf_pages(source, [1, 2, 3, 4, 5])
        for number in (2, 4):
            width, height = source[number - 1].get_size()
            blank = OcrPage(width=round(width), height=round(height), confidence=0, paragraphs=())
            searchable.add_pdf_words(number, blank, 1.0)
        # Reading stopped there (cancelled): pages 1, 3 and 5 are left out.
        searchable.save(target)
    pdf = pypdfium2.PdfDocument(target)
    assert [extracted(pdf, i)[:200] for i in (0, 1)] == [
        source[i].get_textpage().get_text_range().replace("\ufffe", "-")[:200] for i in (1, 3)
    ]
    # The article's fonts once each (as pdfium copies the pages in one go), and ours.
    whole = tmp_path / "whole.pdf"
    copy = pypdfium2.PdfDocument.new()
    copy.import_pages(source, [1, 3])
    copy.save(whole)
    assert target.read_bytes().count(b"/FontFile") == whole.read_bytes().count(b"/FontFile") + 1


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_jpeg_is_embedded_as_it_is_and_shown_upright(tmp_path: Path, orientation: int) -> None:
    """The JPEG file goes in unchanged, drawn turned or mirrored as its EXIF orientation
    says: the page shows what the OCR engine was given."""
    picture = upright("images/chinese-simplified.jpeg").convert("RGB")
    undo = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_90,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_270,
    }
    stored = picture.transpose(undo[orientation]) if orientation in undo else picture
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "turned.jpg"
    stored.save(path, quality=95, exif=exif)
    frame = ImageOps.exif_transpose(Image.open(path))
    empty = OcrPage(width=frame.width, height=frame.height, confidence=0.0, paragraphs=())
    target = tmp_path / "searchable.pdf"
    with SearchablePdf() as searchable:
        searchable.add_image_page(frame, empty, jpeg=path)
        searchable.save(target)
    page = pypdfium2.PdfDocument(target)[0]
    [embedded] = page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE])
    assert embedded.get_filters() == ["DCTDecode"]
    assert bytes(embedded.get_data(decode_simple=False)) == path.read_bytes()
    # Pillow's JPEG records 72 dpi: a point a pixel.
    assert page.get_size() == (frame.width, frame.height)
    shown = np.asarray(page.render(scale=1).to_pil().convert("RGB"), dtype=np.int16)
    expected = np.asarray(frame.convert("RGB"), dtype=np.int16)
    assert shown.shape == expected.shape and np.abs(shown - expected).mean() < 3


def test_nothing_read_is_no_pdf(tmp_path: Path) -> None:
    with SearchablePdf() as searchable, pytest.raises(ProcessingFailed):
        searchable.save(tmp_path / "searchable.pdf")
    assert not (tmp_path / "searchable.pdf").exists()
