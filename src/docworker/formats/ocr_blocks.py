"""What an OCR reader found, as document blocks: one paragraph block per paragraph read.

Every parser that reads text out of pictures (image files, image-only PDF
pages, pictures on PDF pages that have text) goes through
:func:`add_ocr_blocks`, so an OCR paragraph carries the same fields whatever
it came from: its box, its words with theirs, and the reader's confidence.
The reader measures in the pixels of the image it was given; a parser whose
pages are measured otherwise (a PDF page, in points) passes the factor
between the two, and where the image is only part of the page, the page
position of its top-left corner.
"""

from __future__ import annotations

from docworker.document import BBox, Block, BlockKind, BlockSource, DocumentBuilder, Word
from docworker.formats.base import OcrPage, PixelBox


def add_ocr_blocks(
    builder: DocumentBuilder,
    page: int,
    ocr: OcrPage,
    *,
    scale: float = 1.0,
    origin: tuple[float, float] = (0.0, 0.0),
) -> list[Block]:
    """Add each paragraph of ``ocr`` as a paragraph block of ``page``, in the reader's order.

    Boxes are multiplied by ``scale`` (1 keeps pixels, ``72 / dpi`` gives the
    points of a page rendered at ``dpi``), then moved by ``origin``. Returns
    the blocks added.
    """
    added: list[Block] = []
    for paragraph in ocr.paragraphs:
        block = builder.add(
            BlockKind.PARAGRAPH,
            paragraph.text,
            page=page,
            bbox=_placed(paragraph.bbox, scale, origin),
            source=BlockSource.OCR,
            confidence=paragraph.confidence,
            words=[
                Word(
                    text=word.text,
                    bbox=_placed(word.bbox, scale, origin),
                    confidence=word.confidence,
                )
                for word in paragraph.words
            ],
        )
        if block is not None:
            added.append(block)
    return added


def _placed(box: PixelBox, scale: float, origin: tuple[float, float]) -> BBox:
    """A reader's pixel box as a page box: scaled by ``scale``, moved by ``origin``."""
    x0, y0, x1, y1 = box
    left, top = origin
    return BBox(
        x0=left + x0 * scale, y0=top + y0 * scale, x1=left + x1 * scale, y1=top + y1 * scale
    )
