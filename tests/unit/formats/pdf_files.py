"""Small PDFs written for the PDF parser's tests: lines of text, turned or not, over a picture."""

from __future__ import annotations

import ctypes
import math
from pathlib import Path

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
        picture = pdfium.PdfImage.new(pdf)
        picture.set_bitmap(pdfium.PdfBitmap.from_pil(image))
        picture.set_matrix(pdfium.PdfMatrix().scale(*A4))
        page.insert_obj(picture)
    font = pdfium_c.FPDFText_LoadStandardFont(pdf.raw, b"Helvetica")
    cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    for index, line in enumerate(lines):
        text = pdfium_c.FPDFPageObj_CreateTextObj(pdf.raw, font, 12)
        units = ctypes.create_string_buffer((line + "\0").encode("utf-16-le"))
        pdfium_c.FPDFText_SetText(text, ctypes.cast(units, ctypes.POINTER(ctypes.c_ushort)))
        # Where the line starts before turning, from the page's middle.
        x, y = -150.0, 150.0 - 16 * index
        e, f = 297.5 + cos * x - sin * y, 421.0 + sin * x + cos * y
        pdfium_c.FPDFPageObj_Transform(text, cos, sin, -sin, cos, e, f)
        pdfium_c.FPDFPage_InsertObject(page.raw, text)
    page.gen_content()
    if rotation:
        page.set_rotation(rotation)
    pdf.save(path)
    pdf.close()
    return path
