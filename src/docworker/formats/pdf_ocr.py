"""OCR of PDF pages: which pages need it, and their images for the caller's OCR reader.

What ``ctx.ocr_policy`` asks, page by page:

* ``auto``: a page is read by OCR when its text layer is not usable: empty,
  garbage (:func:`text_quality` under :data:`MIN_QUALITY`), or a scan: an
  image covering most of the page with only a few words of text on it (a
  stamp, a page number). A scan with an invisible OCR layer has plenty of
  good text, and is read from it.
* ``force``: every page is read by OCR, its text layer ignored.
* ``off``: never.

Pages are rendered one at a time by pdfium, as displayed (rotation applied),
in grey, at the OCR resolution; each image is dropped once read.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL.Image import Image

POINTS_PER_INCH = 72
#: Under this :func:`text_quality`, a text layer is garbage and the page is read by OCR.
MIN_QUALITY = 0.5
#: A page whose largest image covers this share of it is a scan ...
SCAN_COVERAGE = 0.5
#: ... unless its text layer holds at least this many letters and digits.
SCAN_MAX_CHARS = 100
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


def render_page(page: Any, dpi: int, max_pixels: int) -> tuple[Image, float]:
    """A pdfium page as displayed, in grey, and the points one of its pixels measures.

    Rendered at ``dpi``, or lower for a page so large that it would exceed
    ``max_pixels``; the image records its resolution for the OCR reader.
    """
    width, height = page.get_size()
    scale = min(dpi / POINTS_PER_INCH, math.sqrt(max_pixels / max(width * height, 1.0)))
    # pdfium rounds the bitmap's sides up.
    while math.ceil(width * scale) * math.ceil(height * scale) > max_pixels:
        scale *= 0.999
    bitmap = page.render(scale=scale, grayscale=True)
    try:
        # A copy: the image made from the bitmap shares the memory close() frees.
        image = bitmap.to_pil().copy()
    finally:
        bitmap.close()
    rendered_dpi = round(scale * POINTS_PER_INCH, 2)
    image.info["dpi"] = (rendered_dpi, rendered_dpi)
    return image, 1 / scale
