"""Small PDFs written for the PDF parser's tests: lines of text, turned or not, over pictures."""

from __future__ import annotations

import ctypes
import math
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image

A4 = (595.0, 842.0)


def write_pdf(
    path: Path,
    lines: list[str],
    *,
    image: Image.Image | None = None,
    angle: int = 0,
    rotation: int = 0,
) -> Path:
    """A one-page A4 PDF at ``path`` and its path.

    ``lines`` of 12-point Helvetica, each 16 points under the last, start up
    and left of the page's middle, over ``image`` scaled to the whole page.
    With ``angle`` (degrees, counter-clockwise) the lines are turned about the
    page's middle; ``rotation`` is the page's own /Rotate.
    """
    pdf = pdfium.PdfDocument.new()
    page = pdf.new_page(*A4)
    if image is not None:
        _add_picture(pdf, page, image, pdfium.PdfMatrix().scale(*A4))
    font = pdfium_c.FPDFText_LoadStandardFont(pdf.raw, b"Helvetica")
    cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    for index, line in enumerate(lines):
        # Where the line starts before turning, from the page's middle.
        x, y = -150.0, 150.0 - 16 * index
        e, f = 297.5 + cos * x - sin * y, 421.0 + sin * x + cos * y
        _add_text(pdf, page, font, line, (cos, sin, -sin, cos, e, f))
    return _save(pdf, page, path, rotation)


def write_page(
    path: Path,
    texts: list[tuple[str, float, float]],
    pictures: list[tuple[Image.Image, tuple[float, float, float, float]]],
    *,
    turn: int = 0,
    rotation: int = 0,
) -> Path:
    """A one-page A4 PDF of ``texts`` and ``pictures`` placed where said, and its path.

    Each text is a line of 12-point Helvetica starting at ``(x, y)``; each
    picture fills its box ``(left, bottom, right, top)``, both in PDF user
    space. With ``turn`` 90 everything is drawn a quarter turn counter-clockwise
    (texts about their start, pictures within their boxes), as a page stored
    sideways is, to be shown upright by ``rotation`` 90 (the page's /Rotate).
    """
    assert turn in (0, 90)
    pdf = pdfium.PdfDocument.new()
    page = pdf.new_page(*A4)
    for image, (left, bottom, right, top) in pictures:
        width, height = right - left, top - bottom
        if turn:
            matrix = pdfium.PdfMatrix(0, height, -width, 0, right, bottom)
        else:
            matrix = pdfium.PdfMatrix(width, 0, 0, height, left, bottom)
        _add_picture(pdf, page, image, matrix)
    font = pdfium_c.FPDFText_LoadStandardFont(pdf.raw, b"Helvetica")
    for text, x, y in texts:
        _add_text(pdf, page, font, text, (0, 1, -1, 0, x, y) if turn else (1, 0, 0, 1, x, y))
    return _save(pdf, page, path, rotation)


def _add_picture(pdf: Any, page: Any, image: Image.Image, matrix: Any) -> None:
    picture = pdfium.PdfImage.new(pdf)
    picture.set_bitmap(pdfium.PdfBitmap.from_pil(image))
    picture.set_matrix(matrix)
    page.insert_obj(picture)


def _add_text(pdf: Any, page: Any, font: Any, line: str, matrix: tuple[float, ...]) -> None:
    text = pdfium_c.FPDFPageObj_CreateTextObj(pdf.raw, font, 12)
    units = ctypes.create_string_buffer((line + "\0").encode("utf-16-le"))
    pdfium_c.FPDFText_SetText(text, ctypes.cast(units, ctypes.POINTER(ctypes.c_ushort)))
    pdfium_c.FPDFPageObj_Transform(text, *matrix)
    pdfium_c.FPDFPage_InsertObject(page.raw, text)


def _save(pdf: Any, page: Any, path: Path, rotation: int) -> Path:
    page.gen_content()
    if rotation:
        page.set_rotation(rotation)
    pdf.save(path)
    pdf.close()
    return path


def write_pages(path: Path, pages: list[list[tuple[str, float, float]]]) -> Path:
    """An A4 PDF of several pages, each of lines of 12-point Helvetica starting at
    ``(x, y)`` in PDF user space, and its path."""
    pdf = pdfium.PdfDocument.new()
    font = pdfium_c.FPDFText_LoadStandardFont(pdf.raw, b"Helvetica")
    for texts in pages:
        page = pdf.new_page(*A4)
        for text, x, y in texts:
            _add_text(pdf, page, font, text, (1, 0, 0, 1, x, y))
        page.gen_content()
    pdf.save(path)
    pdf.close()
    return path
