"""What an OCR reader found, as document blocks: one paragraph block per paragraph read.

Every parser that reads text out of pictures (image files, image-only PDF
pages) goes through :func:`add_ocr_blocks`, so an OCR paragraph carries the
same fields whatever it came from: its box, its words with theirs, and the
reader's confidence. The reader measures in the pixels of the image it was
given; a parser whose pages are measured otherwise (a PDF page, in points)
passes the factor between the two.
"""

from __future__ import annotations

from docworker.document import BBox, Block, BlockKind, BlockSource, DocumentBuilder, Word
from docworker.formats.base import OcrPage, PixelBox


def add_ocr_blocks(
    builder: DocumentBuilder, page: int, ocr: OcrPage, *, scale: float = 1.0
) -> list[Block]:
    """Add each paragraph of ``ocr`` as a paragraph block of ``page``, in the reader's order.

    Boxes are multiplied by ``scale``: 1 keeps pixels, ``72 / dpi`` gives the
    points of a page rendered at ``dpi``. Returns the blocks added.
    """
    added: list[Block] = []
    for paragraph in ocr.paragraphs:
        block = builder.add(
            BlockKind.PARAGRAPH,
            paragraph.text,
            page=page,
            bbox=_scaled(paragraph.bbox, scale),
            source=BlockSource.OCR,
            confidence=paragraph.confidence,
            words=[
                Word(text=word.text, bbox=_scaled(word.bbox, scale), confidence=word.confidence)
                for word in paragraph.words
            ],
        )
        if block is not None:
            added.append(block)
    return added


def _scaled(box: PixelBox, scale: float = 1.0) -> BBox:
    """A reader's pixel box as a page box, its coordinates multiplied by ``scale``."""
    x0, y0, x1, y1 = box
    return BBox(x0=x0 * scale, y0=y0 * scale, x1=x1 * scale, y1=y1 * scale)
