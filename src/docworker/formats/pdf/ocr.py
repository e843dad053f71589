"""OCR of PDF pages: which pages need it, and their images for the caller's OCR reader.

What ``ctx.ocr_policy`` asks, page by page:

* ``auto``: a page is read by OCR when its text layer is not usable: empty,
  garbage (:func:`text_quality` under :data:`MIN_QUALITY`), or a scan: an
  image covering most of the page with only a few words of text on it (a
  stamp, a page number). A scan with an invisible OCR layer has plenty of
  good text, and is read from it.
* ``force``: every page is read by OCR, its text layer ignored.
* ``off``: never.

Under ``auto``, a page read from its text layer may also carry text in a
picture: a pasted scan, a screenshot. :func:`picture_regions` finds the
pictures large enough and left bare by the text layer (the limits are
:class:`~docworker.formats.base.MixedPageOcr`), from the bounds pdfium gives
of the page's image objects: no pixel is looked at on a page without such a
picture. Only those parts of the page are rendered and read, the text layer's
lines over them blanked out first so that they are not read twice.

Pages and parts of pages are rendered one at a time by pdfium, as displayed
(rotation applied), in grey, at the OCR resolution; each image is dropped once read.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from typing import TYPE_CHECKING, Any, NamedTuple

from PIL import ImageDraw

from docworker.formats.base import MixedPageOcr
from docworker.formats.pdf.layout import Box, Line
from docworker.formats.pdf.raster import POINTS_PER_INCH, bitmap_pixels, render_bitmap

if TYPE_CHECKING:
    from PIL.Image import Image

#: Under this :func:`text_quality`, a text layer is garbage and the page is read by OCR.
MIN_QUALITY = 0.5
#: A page whose largest image covers this share of it is a scan ...
SCAN_COVERAGE = 0.5
#: ... unless its text layer holds at least this many letters and digits.
SCAN_MAX_CHARS = 100
#: Pictures closer than this (points) are one: a figure drawn in strips or tiles.
_TOUCH = 2.0
#: Most pictures of one page looked at, the largest first: more are a drawing's tiles.
_MAX_PICTURES = 64
#: Points a text-layer line's box is widened by when blanked out of a picture.
_BLANK_MARGIN = 1.0
#: The quality is measured on this many slices of this many characters, spread over the page.
_SLICES, _SLICE = 4, 150
#: Words of more letters than this on average are a font's codes read as letters.
_MAX_WORD = 20
#: Punctuation and symbols of ordinary text (Unicode punctuation counts as well).
_COMMON_SYMBOLS = frozenset("+-=<>$%&*@#^|~/\\°©®™€£¥§¶•·×")
#: Latin letters with accents, and plain ones: no language writes more of the first, but
#: pdfium writes glyphs it cannot map as such letters (often "ÿ").
_ACCENTED = re.compile("[\u00c0-\u024f]")
_ASCII_LETTERS = bytes(range(ord("A"), ord("Z") + 1)) + bytes(range(ord("a"), ord("z") + 1))
#: pdfminer's rendering of a glyph it cannot map, found in text layers made from its output.
_CID = re.compile(r"\(cid:\d+\)")
#: Visible characters that are not letters or digits (nor the underscore).
_NOT_WORD = re.compile(r"[^\w\s]")
#: Scripts written without spaces between words, where word length says nothing.
_UNSPACED = re.compile("[\u0e00-\u0fff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u9fff]")


def text_quality(text: str) -> float:
    """How much of a text layer reads as text, from 0 (none) to 1.

    The share of its visible characters that are letters, digits (of any
    script), punctuation or common symbols: pdfium writes unmapped glyphs as
    control characters, U+FFFD, private-use characters or accented Latin
    letters (counted as letters only where plain ones outnumber them), and a
    font without a usable encoding as strings of symbols. Words averaging more than
    ``_MAX_WORD`` letters (in a script that spaces its words) scale it down,
    since a font's glyph codes read as letters run on without spaces; so do
    pdfminer's ``(cid:N)`` marks. A long text is sampled, so that a page costs
    the same whatever its length, and the per-character work is left to C.
    """
    sample = _sample(text)
    words = sample.split()
    visible = sum(map(len, words)) - sample.count("\ufffe")
    if visible <= 0:
        return 0.0
    others = Counter(_NOT_WORD.findall(sample))
    others.pop("\ufffe", None)
    letters = visible - others.total()
    good = letters + sum(count for char, count in others.items() if _ordinary(char))
    accented = len(_ACCENTED.findall(sample))
    if accented:
        plain = sample.encode("ascii", "ignore")
        if accented > len(plain) - len(plain.translate(None, _ASCII_LETTERS)):
            good -= accented
    if "(cid:" in sample:
        good -= sum(map(len, _CID.findall(sample)))
    quality = max(good, 0) / visible
    if words and letters / len(words) > _MAX_WORD and not _UNSPACED.search(sample):
        quality *= _MAX_WORD * len(words) / letters
    return quality


def _sample(text: str) -> str:
    if len(text) <= _SLICES * _SLICE:
        return text
    step = len(text) // _SLICES
    return " ".join(text[start : start + _SLICE] for start in range(0, step * _SLICES, step))


def _ordinary(char: str) -> bool:
    """Punctuation, or a symbol ordinary text uses."""
    return char in _COMMON_SYMBOLS or unicodedata.category(char).startswith("P")


def usable_text(text: str) -> bool:
    """Whether a page's text layer is worth reading rather than the page's image."""
    return text_quality(text) >= MIN_QUALITY


def scanned(letters: int, image_share: float) -> bool:
    """Whether a page with ``letters`` letters and digits of text, and an image covering
    ``image_share`` of it, is a scan whose text is in the image."""
    return image_share >= SCAN_COVERAGE and letters < SCAN_MAX_CHARS


def picture_regions(
    pictures: list[Box], lines: list[Line], width: float, height: float, limits: MixedPageOcr
) -> list[Box]:
    """The parts of a page read from its text layer whose pictures may hold more text.

    ``pictures`` are the boxes of the page's images and ``lines`` its text
    layer's lines, both in the same frame of a ``width`` by ``height`` page.
    Pictures that touch are joined; a part is kept when it is as large as
    ``limits`` ask and the lines cover little of it. At most
    ``limits.max_images`` parts, the largest, are given, from the top down.
    """
    floor = limits.min_side * limits.min_side
    boxes = [
        box for box in (_clipped(box, width, height) for box in pictures) if _area(box) >= floor
    ]
    if not boxes:
        return []
    boxes.sort(key=_area, reverse=True)
    least = limits.min_share * width * height
    regions = [
        region
        for region in _joined(boxes[:_MAX_PICTURES])
        if _area(region) >= least
        and min(region[2] - region[0], region[3] - region[1]) >= limits.min_side
        and _text_cover(region, lines) <= limits.max_text_cover
    ]
    regions.sort(key=_area, reverse=True)
    return sorted(regions[: limits.max_images], key=lambda box: (box[1], box[0]))


def _clipped(box: Box, width: float, height: float) -> Box:
    x0, y0, x1, y1 = box
    return max(x0, 0.0), max(y0, 0.0), min(x1, width), min(y1, height)


def _area(box: Box) -> float:
    x0, y0, x1, y1 = box
    return max(x1 - x0, 0.0) * max(y1 - y0, 0.0)


def _joined(boxes: list[Box]) -> list[Box]:
    """The boxes, those that touch or overlap joined into the box around them."""
    regions: list[Box] = []
    for box in boxes:
        joined = box
        touching = [region for region in regions if _touch(region, joined)]
        while touching:
            regions = [region for region in regions if region not in touching]
            joined = _around([joined, *touching])
            # The larger box may now reach others.
            touching = [region for region in regions if _touch(region, joined)]
        regions.append(joined)
    return regions


def _around(boxes: list[Box]) -> Box:
    return (
        min(box[0] for box in boxes),
        min(box[1] for box in boxes),
        max(box[2] for box in boxes),
        max(box[3] for box in boxes),
    )


def _touch(a: Box, b: Box) -> bool:
    return (
        a[0] - _TOUCH <= b[2]
        and b[0] - _TOUCH <= a[2]
        and a[1] - _TOUCH <= b[3]
        and b[1] - _TOUCH <= a[3]
    )


def _text_cover(region: Box, lines: list[Line]) -> float:
    """The share of ``region`` the lines' boxes cover."""
    x0, y0, x1, y1 = region
    covered = 0.0
    for line in lines:
        width = min(x1, line.x1) - max(x0, line.x0)
        height = min(y1, line.y1) - max(y0, line.y0)
        if width > 0 and height > 0:
            covered += width * height
    return covered / max(_area(region), 1.0)


class PageImage(NamedTuple):
    """A page, or a part of it, rendered for OCR, and how its pixels sit on the page."""

    image: Image
    #: The points one pixel measures.
    points: float
    #: Where, in points of the page as displayed, the image's top-left corner is.
    origin: tuple[float, float]

    def blank_out(self, boxes: list[Box]) -> None:
        """Paint ``boxes`` (points of the page as displayed) white, a little widened."""
        draw = ImageDraw.Draw(self.image)
        left, top = self.origin
        for x0, y0, x1, y1 in boxes:
            draw.rectangle(
                (
                    (x0 - _BLANK_MARGIN - left) / self.points,
                    (y0 - _BLANK_MARGIN - top) / self.points,
                    (x1 + _BLANK_MARGIN - left) / self.points,
                    (y1 + _BLANK_MARGIN - top) / self.points,
                ),
                fill=255,
            )


def render_page(page: Any, dpi: int, max_pixels: int) -> tuple[Image, float]:
    """A pdfium page as displayed, in grey, and the points one of its pixels measures.

    Rendered at ``dpi``, or lower for a page so large that it would exceed
    ``max_pixels``; the image records its resolution for the OCR reader.
    """
    rendered = render_region(page, None, dpi, max_pixels)
    return rendered.image, rendered.points


def render_region(page: Any, region: Box | None, dpi: int, max_pixels: int) -> PageImage:
    """The ``region`` of a pdfium page as displayed (all of it for None), in grey, for OCR.

    ``region`` is in points from the top-left of the page as displayed, within
    it. Rendered as :func:`render_page` renders, and placed on the page.
    """
    width, height = page.get_size()
    x0, y0, x1, y1 = region or (0.0, 0.0, width, height)
    # What to cut off each side (left, bottom, right, top), as pdfium's renderer takes it.
    left, bottom, right, top = (max(cut, 0.0) for cut in (x0, height - y1, width - x1, y0))
    crop = (left, bottom, right, top)
    scale = min(dpi / POINTS_PER_INCH, math.sqrt(max_pixels / max((x1 - x0) * (y1 - y0), 1.0)))
    while bitmap_pixels(width, height, crop, scale) > max_pixels:
        scale *= 0.999
    bitmap = render_bitmap(page, scale, crop, grayscale=True)
    try:
        # A copy: the image made from the bitmap shares the memory close() frees.
        image = bitmap.to_pil().copy()
    finally:
        bitmap.close()
    rendered_dpi = round(scale * POINTS_PER_INCH, 2)
    image.info["dpi"] = (rendered_dpi, rendered_dpi)
    # The renderer cuts whole pixels, rounding each cut up.
    origin = (math.ceil(crop[0] * scale) / scale, math.ceil(crop[3] * scale) / scale)
    return PageImage(image, 1 / scale, origin)
