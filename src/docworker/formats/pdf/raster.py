"""PDF pages to pixels: the one place where pdfium rasterises a page.

OCR renders pages (or parts of them) in grey at its resolution
(:mod:`docworker.formats.pdf.ocr`); the page images of the ``render``
operation are rendered in colour at a resolution or to fit a size
(:mod:`docworker.render.page_images`). Both come here, so that the scale, the
cuts and the bitmap's size in pixels are worked out one way.

Pages are rendered as displayed: their ``/Rotate`` applied, their size the
displayed one (``page.get_size()``). pdfium gives a bitmap whose sides are
the page's sides times the scale, each rounded up, less the cuts, each
rounded up too.
"""

from __future__ import annotations

import math
from typing import Any

POINTS_PER_INCH = 72

#: What to cut off each side of a page before rendering (left, bottom, right, top), in points.
Crop = tuple[float, float, float, float]
NO_CROP: Crop = (0.0, 0.0, 0.0, 0.0)
#: A colour as pdfium takes it: red, green, blue, alpha (0..255).
Rgba = tuple[int, int, int, int]
WHITE: Rgba = (255, 255, 255, 255)


def bitmap_size(width: float, height: float, crop: Crop, scale: float) -> tuple[int, int]:
    """The pixels across and down of the bitmap pdfium renders of a ``width`` by ``height``
    page (points) cut by ``crop`` at ``scale`` pixels a point."""
    left, bottom, right, top = (math.ceil(cut * scale) for cut in crop)
    across = math.ceil(width * scale) - left - right
    down = math.ceil(height * scale) - bottom - top
    return across, down


def bitmap_pixels(width: float, height: float, crop: Crop, scale: float) -> int:
    across, down = bitmap_size(width, height, crop, scale)
    return across * down


def fit_scale(width: float, height: float, max_width: int | None, max_height: int | None) -> float:
    """The largest scale at which a ``width`` by ``height`` page fits inside ``max_width``
    by ``max_height`` pixels (either may be None: no bound), the aspect kept.

    The side that bounds the page comes out exactly at its bound: the scale is
    brought down a hair where rounding up would make it one pixel more.
    """
    scales = [bound / side for bound, side in ((max_width, width), (max_height, height)) if bound]
    if not scales:
        raise ValueError("a width or a height to fit is needed")
    scale = min(scales)
    while (max_width and math.ceil(width * scale) > max_width) or (
        max_height and math.ceil(height * scale) > max_height
    ):
        scale = math.nextafter(scale, 0.0)
    return scale


def render_bitmap(
    page: Any,
    scale: float,
    crop: Crop = NO_CROP,
    *,
    grayscale: bool = False,
    fill: Rgba = WHITE,
) -> Any:
    """The pdfium bitmap of ``page`` (a ``pypdfium2.PdfPage``) as displayed, at ``scale``.

    In grey (one byte a pixel) or in colour as RGBx (four bytes a pixel, rows
    never padded), on ``fill``. The caller closes the bitmap once read.
    """
    if grayscale:
        return page.render(scale=scale, crop=crop, grayscale=True, fill_color=fill)
    return page.render(
        scale=scale, crop=crop, fill_color=fill, prefer_bgrx=True, rev_byteorder=True
    )
