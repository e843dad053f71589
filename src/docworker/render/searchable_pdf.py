"""Searchable PDFs: pages that look like the input, with the OCR words as invisible text.

Each word read by OCR is drawn in text render mode 3 (neither filled nor
stroked) and stretched onto its box, so that a viewer selects, searches and
copies it where it is seen on the page image, and text extraction gives the
words back in reading order.

The words use one font for the whole document: a CID-keyed TrueType font
whose character codes are the Unicode code points (of the Basic Multilingual
Plane) and whose ``ToUnicode`` map says so, every code drawn with the font's
one glyph, which paints nothing (:mod:`docworker.render.glyphless_font`: under a
kilobyte, made in code). Any script survives extraction that way — pdfium's
own Unicode loading maps characters the font has no glyph for to nothing.

A PDF's pages are copied as they are, all at once (what they share is then
copied once), and given their words one at a time as they are read; an image
becomes a page of its own (at its recorded resolution), compressed and
dropped before the next one is read: no more than one page image is held.
"""

from __future__ import annotations

import ctypes
import io
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import pypdfium2
import pypdfium2.raw as pdfium_c
from PIL import Image
from pypdfium2 import PdfMatrix

from docworker.document import Warning
from docworker.errors import ProcessingFailed
from docworker.formats.base import OcrPage, PixelBox
from docworker.formats.pdf.raster import POINTS_PER_INCH
from docworker.render.glyphless_font import glyphless_font

#: The size text objects are made at, before they are stretched onto their boxes.
_FONT_SIZE = 10.0
#: The resolution assumed for an image that records none (the usual scan resolution).
DEFAULT_IMAGE_DPI = 300.0
#: PDF viewers refuse pages larger than this many points a side (200 inches).
_MAX_PAGE_SIDE = 14400.0
#: Precision of the page-to-user-space mapping pdfium is asked for (device units a side).
_DEVICE_UNITS = 100_000
#: Surrogate halves are not characters: no code maps to them.
_SURROGATES = range(0xD8, 0xE0)
_REPLACEMENT = 0xFFFD
#: Image modes of more than 8 bits of grey.
_DEEP_GREY = frozenset({"I", "I;16", "I;16B", "I;16L", "F"})


@cache
def _to_unicode_cmap() -> bytes:
    """A ``ToUnicode`` CMap mapping each two-byte code to the same Unicode code point."""
    ranges = [
        f"<{hi:02X}00> <{hi:02X}FF> <{hi:02X}00>" for hi in range(256) if hi not in _SURROGATES
    ]
    lines = [
        "/CIDInit /ProcSet findresource begin",
        "12 dict begin",
        "begincmap",
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
        "/CMapName /Adobe-Identity-UCS def",
        "/CMapType 2 def",
        "1 begincodespacerange",
        "<0000> <FFFF>",
        "endcodespacerange",
    ]
    # A CMap section holds at most 100 entries.
    for start in range(0, len(ranges), 100):
        chunk = ranges[start : start + 100]
        lines += [f"{len(chunk)} beginbfrange", *chunk, "endbfrange"]
    lines += ["endcmap", "CMapName currentdict /CMap defineresource pop", "end", "end"]
    return "\n".join(lines).encode("ascii")


def _codes(text: str) -> list[int]:
    """Character codes of ``text`` in the Unicode font: its code points, outside the
    Basic Multilingual Plane replaced (two-byte codes cannot say them)."""
    return [
        code if code <= 0xFFFF and (code >> 8) not in _SURROGATES else _REPLACEMENT
        for code in map(ord, text)
    ]


def _invisible_font(pdf: pypdfium2.PdfDocument) -> Any:
    """The font of :mod:`docworker.render.glyphless_font`, in ``pdf``, with codes that are
    Unicode code points."""
    data = glyphless_font()
    font_data = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
    # Every code is drawn with glyph 0 (the map's two-byte glyph numbers are zeros):
    # one glyph, one advance width, for every character of every script.
    glyphs = (ctypes.c_uint8 * (2 * 65536))()
    handle = pdfium_c.FPDFText_LoadCidType2Font(
        pdf.raw, font_data, len(data), _to_unicode_cmap(), glyphs, len(glyphs)
    )
    if not handle:
        raise ProcessingFailed("pdfium could not load a font for the searchable PDF")
    return handle


class _Font:
    """The font of a document's invisible words, and how text objects are made with it."""

    def __init__(self, pdf: pypdfium2.PdfDocument) -> None:
        self._pdf = pdf
        self._handle = _invisible_font(pdf)
        ascent, descent = ctypes.c_float(), ctypes.c_float()
        pdfium_c.FPDFFont_GetAscent(self._handle, _FONT_SIZE, ascent)
        pdfium_c.FPDFFont_GetDescent(self._handle, _FONT_SIZE, descent)
        #: The font's extent above and below the baseline, at :data:`_FONT_SIZE`.
        self.ascent, self.descent = ascent.value, descent.value

    def text_object(self, text: str) -> Any:
        """A new invisible text object of ``text`` at the origin, not yet on a page."""
        obj = pdfium_c.FPDFPageObj_CreateTextObj(self._pdf.raw, self._handle, _FONT_SIZE)
        if not obj:
            raise ProcessingFailed("pdfium could not make a text object")
        codes = _codes(text)
        done = pdfium_c.FPDFText_SetCharcodes(obj, (ctypes.c_uint * len(codes))(*codes), len(codes))
        if not done or not pdfium_c.FPDFTextObj_SetTextRenderMode(
            obj, pdfium_c.FPDF_TEXTRENDERMODE_INVISIBLE
        ):
            pdfium_c.FPDFPageObj_Destroy(obj)
            raise ProcessingFailed("pdfium could not set the text of a text object")
        return obj

    def close(self) -> None:
        pdfium_c.FPDFFont_Close(self._handle)


class SearchablePdf:
    """A searchable PDF being made, page by page; :meth:`save` writes it.

    Use it as a context manager (or call :meth:`close`): the document lives in
    pdfium's memory until then. ``warnings`` says what the reader of the PDF
    should know (pages that had a text layer already).
    """

    def __init__(self) -> None:
        self._pdf = pypdfium2.PdfDocument.new()
        self._font = _Font(self._pdf)
        self.warnings: list[Warning] = []
        #: Where the pages copied from a PDF are, by their number there.
        self._copied: dict[int, int] = {}
        #: The pages given their words.
        self._read: set[int] = set()

    def __enter__(self) -> SearchablePdf:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def copy_pdf_pages(self, source: pypdfium2.PdfDocument, numbers: Sequence[int]) -> None:
        """Pages ``numbers`` (1-based) of ``source``, as they are, to be given their words
        by :meth:`add_pdf_words` as they are read. Copied in one go, so that what they
        share (fonts, images) is copied once. One PDF's pages only: they are known by
        their numbers there."""
        first = len(self._pdf)
        self._import(source, [number - 1 for number in numbers])
        self._copied = {number: first + offset for offset, number in enumerate(numbers)}

    def add_pdf_words(self, number: int, ocr: OcrPage, points_per_pixel: float) -> None:
        """The words of ``ocr`` on copied page ``number``, read in its image rendered as
        displayed (rotation applied), one pixel measuring ``points_per_pixel`` points."""
        index = self._copied[number]
        self._read.add(index)
        with closing(self._pdf[index]) as page:
            if _has_text(page):
                self.warnings.append(
                    Warning(
                        code="searchable-pdf-text-layer",
                        message="the page had a text layer already: its text is there twice",
                        page=number,
                    )
                )
            self._add_words(page, ocr, points_per_pixel, points_per_pixel)

    def add_image_page(
        self,
        image: Image.Image,
        ocr: OcrPage,
        *,
        dpi: float | None = None,
        jpeg: Path | None = None,
    ) -> None:
        """``image`` as a page of its own, sized by its recorded resolution (else ``dpi``,
        else :data:`DEFAULT_IMAGE_DPI`), with the words of ``ocr`` read in it.

        ``jpeg``, the JPEG file ``image`` was decoded from (turned upright by its
        EXIF orientation), is embedded as it is rather than compressed again.
        """
        dpi_x, dpi_y = _image_dpi(image, dpi)
        width, height = (
            image.width * POINTS_PER_INCH / dpi_x,
            image.height * POINTS_PER_INCH / dpi_y,
        )
        scratch = pypdfium2.PdfDocument(_image_page(image, width, height, jpeg))
        try:
            self._import(scratch, [0])
        finally:
            scratch.close()
        index = len(self._pdf) - 1
        self._read.add(index)
        with closing(self._pdf[index]) as page:
            self._add_words(page, ocr, width / image.width, height / image.height)

    def save(self, path: Path) -> None:
        """Write the PDF to ``path``, without the pages copied but never read (the reading
        was cancelled)."""
        for index in sorted(set(range(len(self._pdf))) - self._read, reverse=True):
            self._pdf.del_page(index)
        self._read, self._copied = set(range(len(self._pdf))), {}
        if not len(self._pdf):
            raise ProcessingFailed("no page was read: there is no searchable PDF to write")
        self._pdf.save(path)

    def close(self) -> None:
        self._font.close()
        self._pdf.close()

    def _import(self, source: pypdfium2.PdfDocument, indexes: list[int]) -> None:
        try:
            self._pdf.import_pages(source, indexes)
        except pypdfium2.PdfiumError as exc:
            raise ProcessingFailed(f"the pages could not be copied: {exc}") from exc

    def _add_words(
        self, page: pypdfium2.PdfPage, ocr: OcrPage, points_x: float, points_y: float
    ) -> None:
        to_user = _upright_to_user(page, ocr, points_x, points_y)
        for placement in _placements(ocr):
            obj = self._font.text_object(placement.text)
            # The glyph's box spans its advance: the bounds run from the first
            # character's origin to the end of the last one's advance.
            left, _, right, _ = _bounds(obj)
            onto_box = placement.matrix(left, right, self._font.ascent, self._font.descent)
            pdfium_c.FPDFPageObj_Transform(obj, *onto_box.multiply(to_user).get())
            pdfium_c.FPDFPage_InsertObject(page.raw, obj)
        try:
            page.gen_content()
        except pypdfium2.PdfiumError as exc:
            raise ProcessingFailed(f"pdfium could not write the page's text: {exc}") from exc


#: Which way a line of text runs on the upright image: left to right (or right to left:
#: the glyphs stand the same way), or turned a quarter, downwards or upwards.
_Direction = Literal["across", "down", "up"]


@dataclass(frozen=True)
class _Placement:
    """Where one word goes, in pixels of the upright image (y down)."""

    text: str
    #: The word's extent along its line, the line's extent across it.
    box: PixelBox
    direction: _Direction

    def matrix(self, left: float, right: float, ascent: float, descent: float) -> PdfMatrix:
        """Text space (y up) onto :attr:`box`: the text's ink from ``left`` to ``right``
        along the line, the font from ``descent`` to ``ascent`` across it."""
        x0, y0, x1, y1 = self.box
        ink = max(right - left, 1e-3)
        if self.direction == "across":
            along, across = (x1 - x0) / ink, (y1 - y0) / (ascent - descent)
            return PdfMatrix(along, 0, 0, -across, x0 - left * along, y1 + descent * across)
        along, across = (y1 - y0) / ink, (x1 - x0) / (ascent - descent)
        if self.direction == "down":
            # Turned a quarter clockwise: the tops of the letters face right.
            return PdfMatrix(0, along, across, 0, x0 - descent * across, y0 - left * along)
        return PdfMatrix(0, -along, -across, 0, x1 + descent * across, y1 + left * along)


def _placements(ocr: OcrPage) -> list[_Placement]:
    """Where each word of ``ocr`` goes, in reading order.

    A word spans its own box along the line and the line's box across it, so
    that the words of a line share one baseline and size (text extraction then
    keeps them on one line). A line runs the way its words follow each other;
    a line of one word, the way most lines of the page run when its box is
    taller than wide (text turned a quarter in the image, which Tesseract reads
    as it is, without turning the image).

    A line that runs leftwards on the page as displayed (upside down) is one
    piece of text over the line's box: pdfium puts the separate words of such
    a line in the order of their positions, from the left, which is backwards.
    """
    lines = [
        (
            _upright_box(line.bbox, ocr),
            [(word.text, _upright_box(word.bbox, ocr)) for word in line.words if word.text.strip()],
        )
        for paragraph in ocr.paragraphs
        for line in paragraph.lines
    ]
    found = [_direction([box for _, box in words]) for _, words in lines if len(words) > 1]
    turned = [direction for direction in found if direction != "across"]
    usual: _Direction = "across"
    if len(turned) * 2 > len(found):
        usual = "up" if turned.count("up") > turned.count("down") else "down"
    placements = []
    for line_box, words in lines:
        direction = _direction([box for _, box in words]) if len(words) > 1 else "across"
        if len(words) == 1 and usual != "across" and _tall(words[0][1], words[0][0]):
            direction = usual
        if words and _leftwards(direction, ocr):
            text = " ".join(text for text, _ in words)
            placements.append(_placement(text, line_box, line_box, direction))
        else:
            placements += [_placement(text, box, line_box, direction) for text, box in words]
    return placements


#: Where a line running each way heads on the upright image (x right, y down).
_HEADINGS: dict[_Direction, tuple[float, float]] = {
    "across": (1.0, 0.0),
    "down": (0.0, 1.0),
    "up": (0.0, -1.0),
}


def _leftwards(direction: _Direction, ocr: OcrPage) -> bool:
    """Whether a line running ``direction`` on the upright image runs leftwards on the
    image as given (the page as displayed)."""
    unturn = _unturn(ocr)
    x, y = _HEADINGS[direction]
    return float(unturn.a) * x + float(unturn.c) * y < -0.5


def _direction(boxes: list[PixelBox]) -> _Direction:
    """The way a line whose words have ``boxes`` (in reading order) runs."""
    first, last = boxes[0], boxes[-1]
    dx = (last[0] + last[2] - first[0] - first[2]) / 2
    dy = (last[1] + last[3] - first[1] - first[3]) / 2
    if abs(dy) <= abs(dx):
        return "across"
    return "down" if dy > 0 else "up"


def _tall(box: PixelBox, text: str) -> bool:
    """Whether a word of ``text`` in ``box`` may be a turned one: taller than wide."""
    return len(text) > 1 and box[3] - box[1] > box[2] - box[0]


def _placement(text: str, box: PixelBox, line: PixelBox, direction: _Direction) -> _Placement:
    x0, y0, x1, y1 = box
    if direction == "across":
        y0, y1 = min(y0, line[1]), max(y1, line[3])
    else:
        x0, x1 = min(x0, line[0]), max(x1, line[2])
    # A box without width or height (a mark at the image's edge) is given a pixel.
    return _Placement(text, (x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)), direction)


def _has_text(page: pypdfium2.PdfPage) -> bool:
    textpage = page.get_textpage()
    try:
        return bool(textpage.count_chars())
    finally:
        textpage.close()


def _bounds(obj: Any) -> tuple[float, float, float, float]:
    left, bottom, right, top = (ctypes.c_float() for _ in range(4))
    pdfium_c.FPDFPageObj_GetBounds(obj, left, bottom, right, top)
    return left.value, bottom.value, right.value, top.value


def _turn(ocr: OcrPage) -> PdfMatrix:
    """Pixels of the image as given to the OCR engine → pixels of it turned upright
    (``ocr.rotation_applied`` degrees clockwise)."""
    width, height = ocr.width, ocr.height
    return {
        90: PdfMatrix(0, 1, -1, 0, height, 0),
        180: PdfMatrix(-1, 0, 0, -1, width, height),
        270: PdfMatrix(0, -1, 1, 0, 0, width),
    }.get(ocr.rotation_applied % 360, PdfMatrix())


def _unturn(ocr: OcrPage) -> PdfMatrix:
    """The inverse of :func:`_turn`: upright pixels → pixels of the image as given."""
    width, height = ocr.width, ocr.height
    return {
        90: PdfMatrix(0, -1, 1, 0, 0, height),
        180: PdfMatrix(-1, 0, 0, -1, width, height),
        270: PdfMatrix(0, 1, -1, 0, width, 0),
    }.get(ocr.rotation_applied % 360, PdfMatrix())


def _upright_box(box: PixelBox, ocr: OcrPage) -> PixelBox:
    """A word's box (pixels of the image as given) in pixels of the upright image."""
    turn = _turn(ocr)
    xa, ya = turn.on_point(box[0], box[1])
    xb, yb = turn.on_point(box[2], box[3])
    return min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb)


def _upright_to_user(
    page: pypdfium2.PdfPage, ocr: OcrPage, points_x: float, points_y: float
) -> PdfMatrix:
    """Pixels of the upright image → PDF user space of ``page``, whose image (as
    displayed) was read with pixels of ``points_x`` × ``points_y`` points."""
    width, height = page.get_size()
    to_points = PdfMatrix(points_x, 0, 0, points_y, 0, 0)
    return _unturn(ocr).multiply(to_points).multiply(_display_to_user(page, width, height))


def _display_to_user(page: pypdfium2.PdfPage, width: float, height: float) -> PdfMatrix:
    """Points of the page as displayed (origin top left, y down) → its user space.

    pdfium maps three corners, so that the crop box's origin and the page's
    rotation are taken exactly as its rendering takes them.
    """

    def corner(x: int, y: int) -> tuple[float, float]:
        user_x, user_y = ctypes.c_double(), ctypes.c_double()
        pdfium_c.FPDF_DeviceToPage(
            page.raw, 0, 0, _DEVICE_UNITS, _DEVICE_UNITS, 0, x, y, user_x, user_y
        )
        return user_x.value, user_y.value

    top_left, top_right, bottom_left = (
        corner(0, 0),
        corner(_DEVICE_UNITS, 0),
        corner(0, _DEVICE_UNITS),
    )
    return PdfMatrix(
        (top_right[0] - top_left[0]) / width,
        (top_right[1] - top_left[1]) / width,
        (bottom_left[0] - top_left[0]) / height,
        (bottom_left[1] - top_left[1]) / height,
        top_left[0],
        top_left[1],
    )


def _image_dpi(image: Image.Image, default: float | None) -> tuple[float, float]:
    """The resolution ``image`` records, else ``default``, else :data:`DEFAULT_IMAGE_DPI`;
    raised where the page would pass the largest page size viewers accept."""
    recorded = image.info.get("dpi")
    try:
        dpi_x, dpi_y = (float(value) for value in recorded) if recorded else (0.0, 0.0)
    except (TypeError, ValueError):
        dpi_x = dpi_y = 0.0
    fallback = float(default or DEFAULT_IMAGE_DPI)
    # Pillow reports 0 or tiny values for files that record an aspect ratio only.
    dpi_x = dpi_x if 1.0 <= dpi_x <= 100_000 else fallback
    dpi_y = dpi_y if 1.0 <= dpi_y <= 100_000 else fallback
    least = max(image.width, image.height) * POINTS_PER_INCH / _MAX_PAGE_SIDE
    return max(dpi_x, least), max(dpi_y, least)


def _image_page(image: Image.Image, width: float, height: float, jpeg: Path | None) -> bytes:
    """A one-page PDF, ``width`` × ``height`` points, showing ``image`` (its JPEG
    file ``jpeg`` when that can be embedded as it is), compressed."""
    scratch = pypdfium2.PdfDocument.new()
    try:
        page = scratch.new_page(width, height)
        picture = pypdfium2.PdfImage.new(scratch)
        placement = PdfMatrix(width, 0, 0, height, 0, 0)
        orientation = _embeddable_jpeg(jpeg, image)
        if jpeg is not None and orientation is not None:
            picture.load_jpeg(jpeg, inline=True)
            placement = _exif_placement(orientation).multiply(placement)
        else:
            bitmap = pypdfium2.PdfBitmap.from_pil(_page_pixels(image))
            try:
                picture.set_bitmap(bitmap)
            finally:
                bitmap.close()
        picture.set_matrix(placement)
        page.insert_obj(picture)
        page.gen_content()
        page.close()
        # pdfium compresses the bitmap (Flate) as it writes the document.
        buffer = io.BytesIO()
        scratch.save(buffer)
        return buffer.getvalue()
    finally:
        scratch.close()


def _page_pixels(image: Image.Image) -> Image.Image:
    """``image`` in a mode pdfium embeds, grey or RGB, with transparent parts white
    and deep grey levels scaled as the OCR engine scaled them."""
    transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if image.mode in ("L", "RGB") and not transparent:
        return image
    if image.mode in _DEEP_GREY:
        from docworker.engines.ocr_preprocess import grey_pixels

        return Image.fromarray(grey_pixels(image))
    grey = image.mode in ("1", "L", "LA")
    if transparent:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    return image.convert("L" if grey else "RGB")


#: What PIL's ``exif_transpose`` does for each EXIF orientation, as a map from a point of
#: the stored image to the upright one (both in the unit square, y down).
_EXIF_TURNS: dict[int, PdfMatrix] = {
    1: PdfMatrix(1, 0, 0, 1, 0, 0),
    2: PdfMatrix(-1, 0, 0, 1, 1, 0),
    3: PdfMatrix(-1, 0, 0, -1, 1, 1),
    4: PdfMatrix(1, 0, 0, -1, 0, 1),
    5: PdfMatrix(0, 1, 1, 0, 0, 0),
    6: PdfMatrix(0, 1, -1, 0, 1, 0),
    7: PdfMatrix(0, -1, -1, 0, 1, 1),
    8: PdfMatrix(0, -1, 1, 0, 0, 1),
}


def _embeddable_jpeg(jpeg: Path | None, image: Image.Image) -> int | None:
    """The EXIF orientation of ``jpeg`` when the file can be embedded to show ``image``:
    a grey or RGB JPEG (pdfium draws CMYK ones inverted when Adobe wrote them) whose
    upright size is ``image``'s; else None."""
    if jpeg is None:
        return None
    try:
        with Image.open(jpeg) as stored:
            if stored.format != "JPEG" or stored.mode not in ("L", "RGB"):
                return None
            orientation = int(stored.getexif().get(0x0112, 1) or 1)
            size = stored.size if orientation < 5 else (stored.height, stored.width)
    except (OSError, ValueError, SyntaxError):
        return None
    if orientation not in _EXIF_TURNS or size != image.size:
        return None
    return orientation


def _exif_placement(orientation: int) -> PdfMatrix:
    """The unit square an image is drawn in (y up), stored as the file has it, → the unit
    square of its upright picture (y up)."""
    flip = PdfMatrix(1, 0, 0, -1, 0, 1)
    return flip.multiply(_EXIF_TURNS[orientation]).multiply(flip)
