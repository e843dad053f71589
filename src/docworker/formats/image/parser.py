"""Images (PNG, JPEG, TIFF, WebP, GIF, BMP, HEIC/HEIF, AVIF): metadata, EXIF and OCR text.

Each frame of a multi-frame image (TIFF pages, GIF frames) is a page; pages
are turned upright by their EXIF orientation before anything is read. Page
sizes and block boxes are in **pixels** of the upright frame, not points.
Text comes only from the OCR reader the caller puts in ``ctx.ocr``: without
one, or with OCR off, the document holds the metadata and says why it has no
text — an image without text is not an error.
"""

from __future__ import annotations

import math
import re
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from docworker.document import Document, DocumentBuilder, Metadata, TextSource
from docworker.errors import CorruptDocument, LimitExceeded
from docworker.formats.base import OcrPage, OcrReader, ParseContext, Source
from docworker.formats.ocr_blocks import add_ocr_blocks

#: What Pillow raises for bytes it cannot make sense of.
_UNREADABLE = (OSError, SyntaxError, ValueError, EOFError, struct.error)
#: EXIF orientations that swap width and height (the turned ones).
_SIDEWAYS = frozenset({5, 6, 7, 8})
_PILLOW_BOMB = re.compile(r"\((\d+) pixels\)")
_EXIF_DATE = "%Y:%m:%d %H:%M:%S"
_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")
#: Main-image (IFD0) and Exif-IFD tags kept, under the names given.
_MAIN_TAGS = {
    ExifTags.Base.Make: "make",
    ExifTags.Base.Model: "model",
    ExifTags.Base.Orientation: "orientation",
    ExifTags.Base.Software: "software",
    ExifTags.Base.DateTime: "datetime",
    ExifTags.Base.Artist: "artist",
    ExifTags.Base.Copyright: "copyright",
    ExifTags.Base.ImageDescription: "description",
}
_EXIF_TAGS = {
    ExifTags.Base.DateTimeOriginal: "datetime_original",
    ExifTags.Base.OffsetTimeOriginal: "offset_time_original",
    ExifTags.Base.ExposureTime: "exposure_time",
    ExifTags.Base.FNumber: "f_number",
    ExifTags.Base.ISOSpeedRatings: "iso",
    ExifTags.Base.FocalLength: "focal_length",
    ExifTags.Base.LensModel: "lens_model",
    ExifTags.Base.ExifImageWidth: "pixel_width",
    ExifTags.Base.ExifImageHeight: "pixel_height",
}


@cache
def _register_heif() -> None:
    # Imported on first use: only a worker that meets a HEIC file pays for libheif.
    import pillow_heif

    pillow_heif.register_heif_opener()


class ImageParser:
    name: ClassVar[str] = "image"
    media_types: ClassVar[frozenset[str]] = frozenset(
        {
            "image/png",
            "image/jpeg",
            "image/tiff",
            "image/webp",
            "image/gif",
            "image/bmp",
            "image/heic",
            "image/heif",
            "image/avif",
        }
    )

    def parse(self, source: Source, ctx: ParseContext) -> Document:
        _register_heif()
        with _opened(source.path, ctx.limits.max_pixels) as image:
            frames = getattr(image, "n_frames", 1)
            exif = _read_exif(image)
            builder = DocumentBuilder(
                self.name, source.mime, _metadata(image, frames, exif), limits=ctx.limits
            )
            if exif is None:
                builder.warn("exif-unreadable", "the image's EXIF metadata could not be read")
            numbers = ctx.select_pages(frames)
            reader = _ocr_reader(ctx, builder)
            for number in ctx.each_page(numbers, frames):
                frame = _frame(image, number, ctx.limits.max_pixels)
                if reader is not None:
                    _add_text(builder, number, reader.read(frame, languages=ctx.ocr_languages))
                else:
                    builder.add_page(number, width=frame.width, height=frame.height)
        return builder.finish()


@contextmanager
def _opened(path: Path, max_pixels: int) -> Iterator[Image.Image]:
    """The image at ``path``, checked against the pixel limit before any pixel is decoded."""
    try:
        with warnings.catch_warnings():
            # The pixel limit is ours (max_pixels), not Pillow's warning threshold.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise _over_pixels(exc, max_pixels) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise CorruptDocument("image", str(exc) or type(exc).__name__) from exc
    with image:
        _check_pixels(image, max_pixels)
        yield image


def _over_pixels(exc: Image.DecompressionBombError, max_pixels: int) -> LimitExceeded:
    """Pillow's own hard limit (twice its warning threshold), a second fence behind ours."""
    found = _PILLOW_BOMB.search(str(exc))
    return LimitExceeded("pixels", int(found.group(1)) if found else math.inf, max_pixels)


def _check_pixels(image: Image.Image, max_pixels: int) -> None:
    if image.width * image.height > max_pixels:
        raise LimitExceeded("pixels", image.width * image.height, max_pixels)


def _frame(image: Image.Image, number: int, max_pixels: int) -> Image.Image:
    """Frame ``number`` (1-based), decoded and turned upright."""
    try:
        image.seek(number - 1)
        _check_pixels(image, max_pixels)
        upright = ImageOps.exif_transpose(image)
        upright.load()
    except Image.DecompressionBombError as exc:  # a later frame larger than the first
        raise _over_pixels(exc, max_pixels) from exc
    except _UNREADABLE as exc:
        raise CorruptDocument("image", f"frame {number}: {exc}") from exc
    return upright


def _ocr_reader(ctx: ParseContext, builder: DocumentBuilder) -> OcrReader | None:
    """The reader frames go through; without one, a warning says why there is no text.

    An image has no text layer, so "auto" reads it as "force" does.
    """
    if ctx.ocr_policy == "off":
        builder.warn("ocr-off", "OCR is off: the image's text was not read")
        return None
    if ctx.ocr is None:
        builder.warn("ocr-unavailable", "no OCR engine here: the image's text was not read")
    return ctx.ocr


def _add_text(builder: DocumentBuilder, number: int, ocr: OcrPage) -> None:
    builder.add_page(
        number,
        width=ocr.width,
        height=ocr.height,
        rotation=ocr.rotation_applied,
        text_source=TextSource.OCR,
        confidence=ocr.confidence,
    )
    if not add_ocr_blocks(builder, number, ocr):
        builder.warn("ocr-no-text", "OCR found no text in the image", page=number)


def _read_exif(image: Image.Image) -> Image.Exif | None:
    """The image's EXIF tags (empty when it has none); None when they cannot be read.

    EXIF is a bonus: a broken block (or, in a PNG, whose EXIF may follow the pixels,
    broken pixel data) costs the metadata, not the image.
    """
    try:
        exif = image.getexif()
        exif.get_ifd(ExifTags.IFD.Exif)
        exif.get_ifd(ExifTags.IFD.GPSInfo)
    except _UNREADABLE:
        return None
    return exif


def _metadata(image: Image.Image, frames: int, exif: Image.Exif | None) -> Metadata:
    fields = _exif_fields(exif) if exif is not None else {}
    sideways = fields.get("orientation") in _SIDEWAYS
    width, height = (image.height, image.width) if sideways else (image.width, image.height)
    described: dict[str, Any] = {
        "format": image.format,
        "mode": image.mode,
        "width": width,
        "height": height,
        "frames": frames,
    }
    dpi = image.info.get("dpi")
    if isinstance(dpi, tuple) and len(dpi) == 2:
        described["dpi"] = [_json_number(value) for value in dpi]
    extra: dict[str, Any] = {"image": described}
    if fields:
        extra["exif"] = fields
    return Metadata(
        created=_exif_datetime(fields.get("datetime_original"), fields.get("offset_time_original")),
        modified=_exif_datetime(fields.get("datetime"), None),
        producer=fields.get("software"),
        authors=[fields["artist"]] if fields.get("artist") else [],
        page_count=frames,
        extra=extra,
    )


def _exif_fields(exif: Image.Exif) -> dict[str, Any]:
    """The EXIF tags people look for, as JSON values; GPS as decimal degrees."""
    fields: dict[str, Any] = {}
    sources = ((exif, _MAIN_TAGS), (exif.get_ifd(ExifTags.IFD.Exif), _EXIF_TAGS))
    for tags, names in sources:
        for tag, name in names.items():
            value = _json_value(tags.get(tag))
            if value not in (None, "", []):
                fields[name] = value
    gps = _gps(exif.get_ifd(ExifTags.IFD.GPSInfo))
    if gps:
        fields["gps"] = gps
    return fields


def _gps(tags: dict[int, Any]) -> dict[str, float]:
    found: dict[str, float] = {}
    for name, value_tag, ref_tag, negative in (
        ("latitude", ExifTags.GPS.GPSLatitude, ExifTags.GPS.GPSLatitudeRef, "S"),
        ("longitude", ExifTags.GPS.GPSLongitude, ExifTags.GPS.GPSLongitudeRef, "W"),
    ):
        degrees = _degrees(tags.get(value_tag))
        if degrees is not None:
            ref = str(tags.get(ref_tag, "")).strip("\x00 ").upper()
            found[name] = round(-degrees if ref == negative else degrees, 7)
    altitude = _json_number(tags.get(ExifTags.GPS.GPSAltitude))
    if isinstance(altitude, float) and math.isfinite(altitude):
        below_sea = tags.get(ExifTags.GPS.GPSAltitudeRef) in (1, b"\x01")
        found["altitude"] = round(-altitude if below_sea else altitude, 2)
    return found


def _degrees(value: Any) -> float | None:
    """Degrees, minutes, seconds (EXIF rationals) as decimal degrees."""
    try:
        degrees, minutes, seconds = (float(part) for part in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    total = degrees + minutes / 60 + seconds / 3600
    return total if math.isfinite(total) else None


def _json_number(value: Any) -> float | int | None:
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not math.isfinite(number):
        return None
    return int(number) if number.is_integer() and not isinstance(value, float) else number


def _json_value(value: Any) -> Any:
    """An EXIF value as JSON: text trimmed, rationals as numbers, raw bytes left out."""
    if value is None or isinstance(value, bytes):
        return None
    if isinstance(value, str):
        return value.strip("\x00 ").strip() or None
    if isinstance(value, tuple | list):
        return [item for item in (_json_value(v) for v in value) if item is not None]
    if isinstance(value, int):
        return value
    return _json_number(value)


def _exif_datetime(text: Any, offset: Any) -> datetime | None:
    """An EXIF ``YYYY:MM:DD HH:MM:SS``, aware when its offset tag is given."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.strptime(text[:19], _EXIF_DATE)
    except ValueError:
        return None
    zone = _OFFSET.match(offset) if isinstance(offset, str) else None
    if zone:
        delta = timedelta(hours=int(zone.group(2)), minutes=int(zone.group(3)))
        moment = moment.replace(tzinfo=timezone(-delta if zone.group(1) == "-" else delta))
    return moment
