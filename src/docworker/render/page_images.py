"""Page images: PDF pages and image frames written as PNG, JPEG or WebP files by libvips.

PDF pages are rasterised by pdfium (:mod:`docworker.formats.pdf.raster`, the
renderer OCR uses too) in colour on the background colour, and handed to
libvips without a copy; images are read by libvips itself, a frame at a time
(TIFF pages, GIF frames, HEIC images), turned upright by their EXIF
orientation, and shrunk while they load where a size is asked. Every image is
written with its metadata stripped, in sRGB (or grey), 8 bits a channel;
transparency is kept in PNG and WebP and laid on the background in JPEG.

Sizes are worked out before any pixel is made: a page or frame that would
pass ``max_pixels`` (as the input or as the image to write) is refused with
:class:`~docworker.errors.LimitExceeded` naming its size.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docworker.engines.image_formats import PageFormat
from docworker.engines.vips import pyvips
from docworker.errors import CorruptDocument, InvalidParameter, LimitExceeded, ProcessingFailed
from docworker.formats.pdf.raster import (
    POINTS_PER_INCH,
    bitmap_size,
    fit_scale,
    render_bitmap,
)

#: Colours a client may name; any other is '#rgb' or '#rrggbb'.
_NAMED_COLOURS = {"white": (255, 255, 255), "black": (0, 0, 0)}
_HEX_COLOUR = re.compile(r"#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
#: libvips loaders the image formats the service reads go through (BMP: ImageMagick's).
_IMAGE_LOADERS = ("pngload", "jpegload", "tiffload", "webpload", "gifload", "heifload", "magick")

#: libvips' largest image side: the bound of a side of the box the client left open.
_MAX_COORD = 10_000_000

Rgb = tuple[int, int, int]


def parse_colour(text: str) -> Rgb:
    """An RGB colour from 'white', 'black', '#rgb' or '#rrggbb'."""
    named = _NAMED_COLOURS.get(text.strip().lower())
    if named is not None:
        return named
    found = _HEX_COLOUR.fullmatch(text.strip())
    if found is None:
        raise ValueError(f"'{text}' is not a colour: give '#rrggbb', '#rgb', white or black")
    digits = found.group(1)
    if len(digits) == 3:
        digits = "".join(digit * 2 for digit in digits)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


@dataclass(frozen=True)
class ImageSpec:
    """How page images are made: their format, size and look."""

    format: PageFormat
    #: Resolution of document pages; images keep their pixels unless a box is given.
    dpi: int
    #: The box the image must fit inside (aspect kept), instead of ``dpi``; either
    #: side may be None (no bound on it).
    width: int | None = None
    height: int | None = None
    #: JPEG and WebP quality, 1-100.
    quality: int = 85
    #: What transparent pixels become in a JPEG, and the paper colour of PDF pages.
    background: Rgb = (255, 255, 255)
    max_pixels: int = 100_000_000

    @property
    def fits(self) -> bool:
        return bool(self.width or self.height)


@dataclass(frozen=True)
class WrittenImage:
    """One page image written to a file."""

    page: int
    path: Path
    width: int
    height: int
    #: The resolution a document page was rendered at; None for an image's frame.
    dpi: float | None = None

    def describe(self, artifact: str) -> dict[str, Any]:
        """The page's entry in a result payload."""
        described: dict[str, Any] = {
            "page": self.page,
            "width": self.width,
            "height": self.height,
            "size": self.path.stat().st_size,
            "artifact": artifact,
        }
        if self.dpi is not None:
            described["dpi"] = self.dpi
        return described


def write_pdf_page(page: Any, number: int, spec: ImageSpec, target: Path) -> WrittenImage:
    """Page ``number`` (a ``pypdfium2.PdfPage``) rendered as ``spec`` asks, saved at ``target``."""
    width, height = page.get_size()
    if spec.fits:
        scale = fit_scale(width, height, spec.width, spec.height)
    else:
        scale = spec.dpi / POINTS_PER_INCH
    across, down = bitmap_size(width, height, (0.0, 0.0, 0.0, 0.0), scale)
    if across * down > spec.max_pixels:
        raise LimitExceeded(
            "pixels",
            across * down,
            spec.max_pixels,
            f"page {number} would be {across}×{down} pixels ({across * down:,}), over the "
            f"limit of {spec.max_pixels:,}: ask for a lower dpi or a smaller width or height",
        )
    bitmap = render_bitmap(page, scale, fill=(*spec.background, 255))
    try:
        # RGBx rows, never padded beyond whole pixels: the stride is a whole number of them.
        image = pyvips.Image.new_from_memory(
            bitmap.buffer, bitmap.stride // 4, bitmap.height, 4, "uchar"
        )
        image = image.crop(0, 0, bitmap.width, bitmap.height).extract_band(0, n=3)
        save_image(image.copy(interpretation="srgb"), spec, target)
    except pyvips.Error as exc:
        raise ProcessingFailed(f"page {number} could not be written: {_vips_message(exc)}") from exc
    finally:
        bitmap.close()
    dpi = round(scale * POINTS_PER_INCH, 2)
    return WrittenImage(number, target, across, down, dpi)


def image_frame_count(path: Path, max_pixels: int) -> int:
    """The frames (pages) of the image at ``path``, read from its header only; its first
    frame is checked against ``max_pixels`` before any pixel is decoded."""
    header = _header(path)
    _check_frame(header, 1, max_pixels)
    return int(header.get("n-pages")) if header.get_typeof("n-pages") else 1


def write_image_frame(path: Path, number: int, spec: ImageSpec, target: Path) -> WrittenImage:
    """Frame ``number`` (1-based) of the image at ``path``, upright, fitted into the box of
    ``spec`` when it gives one, written to ``target``."""
    multi = image_frame_count(path, spec.max_pixels) > 1
    options = f"[page={number - 1},fail_on=error]" if multi else "[fail_on=error]"
    pages: dict[str, Any] = {"page": number - 1} if multi else {}
    frame = _header(path, **pages)
    _check_frame(frame, number, spec.max_pixels)
    try:
        if spec.fits:
            box = _MAX_COORD  # no bound on a side the client left open
            image = pyvips.Image.thumbnail(
                f"{path}{options}", spec.width or box, height=spec.height or box
            )
        elif _orientation(frame) > 1:
            # Turning reads the pixels out of order: the frame is loaded for random access.
            image = _header(path, access="random", **pages).autorot()
        else:
            image = frame
        _check_output(image.width, image.height, number, spec.max_pixels)
        save_image(image, spec, target)
    except pyvips.Error as exc:
        raise CorruptDocument("image", f"frame {number}: {_vips_message(exc)}") from exc
    return WrittenImage(number, target, image.width, image.height)


def save_image(image: pyvips.Image, spec: ImageSpec, target: Path) -> None:
    """Write ``image`` in ``spec``'s format: 8-bit sRGB or grey, metadata stripped, alpha
    kept where the format has it and laid on the background where it has not.

    Images load lazily: a fault of the input shows here as a ``pyvips.Error``, which
    the caller, knowing where the pixels come from, turns into the right error."""
    image = _eight_bit(image)
    if spec.format is PageFormat.JPEG and image.hasalpha():
        if image.bands == 2:
            image = image.colourspace("srgb")
        image = image.flatten(background=list(spec.background))
    if spec.format is PageFormat.PNG:
        image.pngsave(str(target), compression=6, strip=True)
    elif spec.format is PageFormat.JPEG:
        image.jpegsave(str(target), Q=spec.quality, optimize_coding=True, strip=True)
    else:
        image.webpsave(str(target), Q=spec.quality, effort=4, strip=True)


def _eight_bit(image: pyvips.Image) -> pyvips.Image:
    if image.get_typeof("icc-profile-data"):
        # The profile is stripped on writing: its colours are made sRGB first.
        with contextlib.suppress(pyvips.Error):
            image = image.icc_transform("srgb", embedded=True, intent="perceptual")
    grey = image.interpretation in ("b-w", "grey16")
    target = "b-w" if grey else "srgb"
    if image.interpretation != target or image.format != "uchar":
        image = image.colourspace(target)
    if image.format != "uchar":
        image = image.cast("uchar")
    return image


def _orientation(image: pyvips.Image) -> int:
    """The image's EXIF orientation (1: upright as stored)."""
    return int(image.get("orientation")) if image.get_typeof("orientation") else 1


def _header(path: Path, access: str = "sequential", **options: Any) -> pyvips.Image:
    """The image at ``path`` opened lazily: its header read, no pixel decoded yet."""
    try:
        # A broken file fails, rather than being decoded in part with the rest black.
        image = pyvips.Image.new_from_file(str(path), access=access, fail_on="error", **options)
    except pyvips.Error as exc:
        raise CorruptDocument("image", _vips_message(exc)) from exc
    loader = str(image.get("vips-loader")) if image.get_typeof("vips-loader") else ""
    if not loader.startswith(_IMAGE_LOADERS):
        raise CorruptDocument("image", f"read as {loader or 'an unknown type'}, not as an image")
    return image


def _check_frame(image: pyvips.Image, number: int, max_pixels: int) -> None:
    pixels = image.width * image.height
    if pixels > max_pixels:
        raise LimitExceeded(
            "pixels",
            pixels,
            max_pixels,
            f"frame {number} is {image.width}×{image.height} pixels ({pixels:,}), over the "
            f"limit of {max_pixels:,}; it was not decoded",
        )


def _check_output(width: int, height: int, number: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise LimitExceeded(
            "pixels",
            width * height,
            max_pixels,
            f"page {number} would be {width}×{height} pixels ({width * height:,}), over the "
            f"limit of {max_pixels:,}: ask for a smaller width or height",
        )


def _vips_message(exc: pyvips.Error) -> str:
    text = " ".join(str(getattr(exc, "detail", "") or exc).split())
    return text[:300] or "libvips could not read it"


def check_box(width: int | None, height: int | None, max_side: int) -> None:
    """Refuse a box side over ``max_side`` pixels."""
    for name, value in (("width", width), ("height", height)):
        if value is not None and value > max_side:
            raise InvalidParameter(name, f"{value} is over the largest side allowed, {max_side}")
