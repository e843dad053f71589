"""The image parser on corpus images and on images built here: EXIF, frames, limits, OCR."""

from __future__ import annotations

import struct
import zlib
from datetime import datetime
from pathlib import Path
from typing import Any

import pillow_heif
import pytest
from corpus_scoring import CORPUS, needs_corpus, parse
from PIL import Image

from docworker.document import BlockKind, BlockSource, TextSource
from docworker.engines.ocr import Preprocessing, TesseractOcr
from docworker.errors import CorruptDocument, LimitExceeded
from docworker.formats.base import PageSelection, ParseContext, ParseLimits
from docworker.formats.image.parser import ImageParser
from docworker.render.document import render_text

pytestmark = needs_corpus
PARSER = ImageParser()
OCR = TesseractOcr()
#: For images whose text needs no preparation: the same answer, sooner.
PLAIN_OCR = TesseractOcr(preprocessing=Preprocessing.none())


def with_ocr(reader: TesseractOcr = OCR, **fields: Any) -> ParseContext:
    return ParseContext(ocr=reader, **fields)


def test_exif_gives_camera_dates_and_dimensions_without_ocr() -> None:
    doc = parse(PARSER, CORPUS / "images/exif.jpg", "image/jpeg", ParseContext(ocr_policy="off"))
    exif = doc.metadata.extra["exif"]
    assert (exif["make"], exif["model"]) == ("Canon", "Canon EOS 40D")
    assert exif["iso"] == 400 and exif["f_number"] == 5.6
    assert doc.metadata.created == datetime(2009, 8, 11, 9, 9, 45)
    assert doc.metadata.modified == datetime(2009, 10, 2, 23, 2, 49)
    assert doc.metadata.producer == "Adobe Photoshop CS3 Macintosh"
    image = doc.metadata.extra["image"]
    assert (image["format"], image["width"], image["height"], image["frames"]) == (
        "JPEG",
        100,
        68,
        1,
    )
    assert [p.number for p in doc.pages] == [1] and (doc.pages[0].width, doc.pages[0].height) == (
        100,
        68,
    )
    assert doc.blocks == []
    assert [w.code for w in doc.warnings] == ["ocr-off"]


def test_gps_is_given_in_decimal_degrees() -> None:
    doc = parse(PARSER, CORPUS / "images/exif-gps.jpg", "image/jpeg")
    assert doc.metadata.extra["exif"]["gps"] == {"latitude": 12.54321, "longitude": -54.1234}


def test_heic_metadata_is_read() -> None:
    doc = parse(PARSER, CORPUS / "images/tika-test.heic", "image/heic")
    assert doc.metadata.extra["image"]["format"] == "HEIF"
    assert doc.metadata.extra["exif"]["gps"]["latitude"] == 12.54321
    # Without a reader an image is still a document: metadata, and a warning.
    assert [w.code for w in doc.warnings] == ["ocr-unavailable"]


def test_ocr_text_becomes_paragraph_blocks_with_word_boxes() -> None:
    doc = parse(PARSER, CORPUS / "images/ocr-text.png", "image/png", with_ocr())
    [block] = doc.blocks
    assert block.kind is BlockKind.PARAGRAPH and block.source is BlockSource.OCR
    assert block.text == "This file contains some words."
    assert block.page == 1 and block.confidence is not None and block.confidence > 0.8
    assert block.words is not None and block.words[0].text == "This"
    [page] = doc.pages
    assert page.text_source is TextSource.OCR and page.confidence == pytest.approx(0.96, abs=0.04)
    assert (page.width, page.height) == (982, 622)
    for box in [block.bbox, *(w.bbox for w in block.words)]:
        assert box is not None and 0 <= box.x0 < box.x1 <= 982 and 0 <= box.y0 < box.y1 <= 622
    assert doc.metadata.word_count == 5


def test_exif_orientation_is_applied_before_reading(tmp_path: Path) -> None:
    with Image.open(CORPUS / "images/ocr-text.png") as upright:
        # Stored on its side; orientation 6 tells viewers to turn it clockwise.
        stored = upright.convert("RGB").rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "turned.jpg"
    stored.save(path, exif=exif, quality=95)
    doc = parse(PARSER, path, "image/jpeg", with_ocr(PLAIN_OCR))
    assert render_text(doc).strip() == "This file contains some words."
    assert (doc.pages[0].width, doc.pages[0].height) == (982, 622)
    assert doc.metadata.extra["exif"]["orientation"] == 6
    assert (doc.metadata.extra["image"]["width"], doc.metadata.extra["image"]["height"]) == (
        982,
        622,
    )


def test_each_tiff_frame_is_a_page_and_pages_choose_frames() -> None:
    path = CORPUS / "images/multipage.tif"
    doc = parse(PARSER, path, "image/tiff", with_ocr(PLAIN_OCR))
    assert [(b.page, b.text) for b in doc.blocks] == [
        (1, "Multipage TIFF Example Page 1"),
        (2, "Multipage TIFF Example Page 2"),
    ]
    assert doc.metadata.page_count == 2
    second = parse(PARSER, path, "image/tiff", with_ocr(PLAIN_OCR, pages=PageSelection.parse("2")))
    assert [p.number for p in second.pages] == [2]
    assert [b.text for b in second.blocks] == ["Multipage TIFF Example Page 2"]


def test_heic_text_is_read(tmp_path: Path) -> None:
    pillow_heif.register_heif_opener()
    path = tmp_path / "words.heic"
    with Image.open(CORPUS / "images/ocr-text.png") as image:
        image.convert("RGB").save(path, format="HEIF", quality=90)
    doc = parse(PARSER, path, "image/heic", with_ocr(PLAIN_OCR))
    assert render_text(doc).strip() == "This file contains some words."


def test_a_photo_without_text_is_a_document_with_a_warning() -> None:
    doc = parse(PARSER, CORPUS / "images/test.gif", "image/gif", with_ocr())
    assert doc.blocks == []
    assert [(w.code, w.page) for w in doc.warnings] == [("ocr-no-text", 1)]
    assert doc.metadata.extra["image"]["mode"] == "P"


def test_languages_come_from_the_context() -> None:
    doc = parse(
        PARSER,
        CORPUS / "images/japanese-vertical.jpeg",
        "image/jpeg",
        with_ocr(ocr_languages="jpn_vert"),
    )
    text = render_text(doc)
    assert "日本語" in text and "縦書き" in text


def test_transparent_english_and_korean() -> None:
    doc = parse(
        PARSER,
        CORPUS / "images/english-and-korean.png",
        "image/png",
        with_ocr(ocr_languages="eng+kor"),
    )
    text = render_text(doc)
    assert "RULES AND INSTRUCTIONS" in text and "안녕하세요" in text


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width``×``height`` pixels but holds almost none."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [12_000, 40_000])
def test_a_decompression_bomb_is_refused_before_decoding(tmp_path: Path, side: int) -> None:
    # 144 Mpx passes Pillow's own guard but not ours; 1.6 Gpx trips Pillow's first.
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(side, side))
    with pytest.raises(LimitExceeded) as refused:
        parse(PARSER, path, "image/png", with_ocr())
    assert refused.value.fields["limit"] == "pixels"
    assert refused.value.fields["value"] == side * side


def test_the_pixel_limit_is_configurable() -> None:
    ctx = ParseContext(limits=ParseLimits(max_pixels=1000))
    with pytest.raises(LimitExceeded) as refused:
        parse(PARSER, CORPUS / "images/ocr-text.png", "image/png", ctx)
    assert refused.value.fields["value"] == 982 * 622


def test_garbage_is_a_corrupt_image(tmp_path: Path) -> None:
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(CorruptDocument):
        parse(PARSER, path, "image/png")
