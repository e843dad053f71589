"""libvips (through pyvips): opening images safely, and writing them in each output format.

Opening is guarded: the loader libvips would pick is looked up first and must be
one of the formats the image operation reads (:data:`LOADERS`: JPEG, PNG, WebP,
TIFF, GIF, HEIC/AVIF, SVG); ImageMagick, FITS, Matlab and libvips' other loaders
are never reached from here. The header is read before any pixel is decoded, so the pixel limit
refuses a decompression bomb at no cost. SVG is rendered from memory, never
from a file name: librsvg then has no base location, so it resolves no
``file:`` or ``http:`` reference (an ``<image href>`` to a server is never fetched).

Writing (:func:`encode`) maps one set of options — quality 1–100, effort,
lossless, metadata kept or stripped — to each saver's own arguments.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docworker.engines.image_formats import ImageFormat
from docworker.errors import CorruptDocument, LimitExceeded, UnsupportedFormat

#: Extension modules with native code that exports names libvips' libraries also
#: export (found by comparing their dynamic symbol tables): each is loaded before
#: libvips. Pillow's, pillow-heif's, Tesseract's, OpenCV's and pikepdf's bundled image
#: libraries; pdfium's FreeType; lxml's libxml2; Brotli and Zopfli (fonts); numpy's
#: FFT; psycopg's libpq with its OpenSSL.
_LOADED_BEFORE_LIBVIPS = (
    "PIL._imaging",
    "PIL._imagingft",
    "PIL._imagingcms",
    "PIL._webp",
    "PIL._avif",
    "pillow_heif",
    "tesserocr",
    "cv2",
    "pikepdf",
    "pypdfium2_raw",
    "lxml.etree",
    "_brotli",
    "zopfli",
    "numpy.fft",
    "psycopg",
)

# libvips loads its modules (HEIF, ImageMagick, ...) with their libraries (the
# system's libpng, libjpeg, libtiff, FreeType, libxml2, libheif, OpenSSL, libgomp) into
# the process's global symbol scope. A library loaded after that resolves those names
# to the system's copies, even one built against copies of its own: Pillow's PNG
# encoder and FreeType then misbehave, Tesseract (fed by Pillow) reads nothing,
# pillow-heif crashes the process, lxml runs on another libxml2 (its entity and
# encoding handling change) and pdfium draws glyphs with another FreeType. Loaded
# first, the wheels' libraries keep their own bindings. pyvips is therefore imported
# here only, after them (ruff bans importing it anywhere else).
for _module in _LOADED_BEFORE_LIBVIPS:
    importlib.import_module(_module)
import pyvips as pyvips  # noqa: E402, PLC0414 - re-exported: the one import of pyvips

#: libvips loader class (without File/Buffer/Source) → the format it reads.
LOADERS: dict[str, str] = {
    "VipsForeignLoadJpeg": "jpeg",
    "VipsForeignLoadPng": "png",
    "VipsForeignLoadWebp": "webp",
    "VipsForeignLoadTiff": "tiff",
    "VipsForeignLoadNsgif": "gif",
    "VipsForeignLoadHeif": "heif",
    "VipsForeignLoadSvg": "svg",
}
_LOADER_SUFFIXES = ("File", "Buffer", "Source")


#: Each format's own effort scale (libvips' names differ): (lowest, highest, default).
EFFORT_RANGES = {
    ImageFormat.JPEG: (0, 1, 0),
    ImageFormat.PNG: (0, 9, 6),
    ImageFormat.WEBP: (0, 6, 4),
    ImageFormat.AVIF: (0, 9, 4),
    ImageFormat.TIFF: (0, 9, 6),
    ImageFormat.GIF: (1, 10, 7),
}


@dataclass(frozen=True)
class Header:
    """What the file's header says, read without decoding any pixel."""

    path: Path
    #: The format read: a value of :data:`LOADERS`, with "heif" told apart as
    #: "heic" or "avif".
    format: str
    width: int
    #: Height of one frame.
    height: int
    pages: int
    #: EXIF orientation (1: upright).
    orientation: int
    has_alpha: bool

    @property
    def upright_size(self) -> tuple[int, int]:
        """Width and height once turned by the EXIF orientation."""
        if self.orientation in {5, 6, 7, 8}:
            return self.height, self.width
        return self.width, self.height


@contextmanager
def vips_errors(what: str) -> Iterator[None]:
    """libvips failures on the input turned into :class:`CorruptDocument`."""
    try:
        yield
    except pyvips.Error as exc:
        message = " ".join(str(exc.detail or exc.message).split())[:300]
        raise CorruptDocument(what, message or "libvips could not read it") from exc


def loader_format(path: Path) -> str:
    """The format libvips would read ``path`` as; refused unless it is one we allow."""
    found = pyvips.vips_lib.vips_foreign_find_load(str(path).encode())
    name = "" if found == pyvips.ffi.NULL else pyvips.ffi.string(found).decode()
    for suffix in _LOADER_SUFFIXES:
        name = name.removesuffix(suffix)
    if name not in LOADERS:
        raise UnsupportedFormat(
            "application/octet-stream",
            "the image operation reads JPEG, PNG, WebP, TIFF, GIF, HEIC/AVIF and SVG; "
            "this file is none of them",
        )
    return LOADERS[name]


def read_header(path: Path, max_pixels: int, max_svg_bytes: int) -> Header:
    """The image's header, with the pixel limit checked before any pixel is decoded."""
    fmt = loader_format(path)
    if fmt == "svg" and path.stat().st_size > max_svg_bytes:
        raise LimitExceeded("SVG size in bytes", path.stat().st_size, max_svg_bytes)
    with vips_errors(fmt):
        image = _open(path, fmt, access="sequential")
        fields = set(image.get_fields())
        if fmt == "heif":
            av1 = "heif-compression" in fields and image.get("heif-compression") == "av1"
            fmt = "avif" if av1 else "heic"
        pages = int(image.get("n-pages")) if "n-pages" in fields else 1
        orientation = int(image.get("orientation")) if "orientation" in fields else 1
        header = Header(
            path=path,
            format=fmt,
            width=image.width,
            height=image.height,
            pages=max(pages, 1),
            orientation=orientation if 1 <= orientation <= 8 else 1,
            has_alpha=image.hasalpha(),
        )
    if header.width * header.height > max_pixels:
        raise LimitExceeded("pixels", header.width * header.height, max_pixels)
    return header


def _open(path: Path, fmt: str, **options: Any) -> pyvips.Image:
    """The image, lazily: libvips reads the header now and the pixels when they are used."""
    if fmt == "svg":
        # From memory: librsvg then has no base location to resolve references against.
        options.pop("access", None)
        return pyvips.Image.svgload_buffer(path.read_bytes(), **options)
    return pyvips.Image.new_from_file(str(path), **options)


def load(header: Header, *, access: str, frames: tuple[int, int] | None) -> pyvips.Image:
    """The image's pixels (lazily): frame ``frames[0]`` (0-based) and ``frames[1]`` of them
    (``-1``: all) as one tall strip; None: the first frame."""
    # A truncated or damaged file is an error, not an image with a grey half.
    options: dict[str, Any] = {"access": access, "fail_on": "truncated"}
    if frames is not None and header.pages > 1:
        options["page"], options["n"] = frames
    with vips_errors(header.format):
        return _open(header.path, header.format, **options)


def shrink_on_load(
    header: Header,
    width: int,
    height: int,
    *,
    frames: tuple[int, int] | None,
    auto_orient: bool,
) -> pyvips.Image:
    """The image scaled to exactly ``width`` × ``height`` (upright size when ``auto_orient``),
    decoded at a reduced size where the format can (JPEG DCT scaling, WebP, pyramid TIFF,
    SVG rendering), and streamed: the full-size image is never held in memory."""
    options: dict[str, Any] = {"height": height, "size": "force", "no_rotate": not auto_orient}
    with vips_errors(header.format):
        if header.format == "svg":
            return pyvips.Image.thumbnail_buffer(header.path.read_bytes(), width, **options)
        load_options = "fail_on=truncated"
        if frames is not None and header.pages > 1:
            load_options += f",page={frames[0]},n={frames[1]}"
        return pyvips.Image.thumbnail(f"{header.path}[{load_options}]", width, **options)


def encode(
    image: pyvips.Image,
    fmt: ImageFormat,
    *,
    quality: int | None,
    effort: int | None,
    lossless: bool,
    strip: bool,
    target: Path | None = None,
) -> bytes | None:
    """Write ``image`` as ``fmt`` to ``target`` (None: return the bytes)."""
    saver, options = _saver_options(fmt, quality, effort, lossless)
    options["strip"] = strip
    if fmt is ImageFormat.JPEG and image.width * image.height <= STREAMED_JPEG_PIXELS:
        # Optimised Huffman tables and progressive scans make libjpeg hold the whole
        # image: for small images only, where that costs little.
        options |= {"optimize_coding": True, "interlace": True}
    with vips_errors("output image"):
        if target is None:
            data: bytes = getattr(image, f"{saver}save_buffer")(**options)
            return data
        getattr(image, f"{saver}save")(str(target), **options)
    return None


#: Above this many pixels a JPEG is written baseline with standard tables, streamed
#: (JPEG, PNG and TIFF stream; WebP, AVIF and GIF encoders hold the whole image).
STREAMED_JPEG_PIXELS = 4_000_000

#: The quality each lossy format is written at when none is asked for.
DEFAULT_QUALITY = {ImageFormat.JPEG: 82, ImageFormat.WEBP: 80, ImageFormat.AVIF: 55}


def _saver_options(
    fmt: ImageFormat, quality: int | None, effort: int | None, lossless: bool
) -> tuple[str, dict[str, Any]]:
    """The libvips saver's name and arguments for one set of options."""
    low, high, default = EFFORT_RANGES[fmt]
    level = default if effort is None else min(max(effort, low), high)
    return _SAVERS[fmt](quality, lossless, level)


def _jpeg(quality: int | None, lossless: bool, level: int) -> tuple[str, dict[str, Any]]:
    # JPEG has no lossless mode: "lossless" is its highest quality.
    given = 100 if lossless else quality or DEFAULT_QUALITY[ImageFormat.JPEG]
    options: dict[str, Any] = {"Q": given}
    if level:
        options |= {"trellis_quant": True, "overshoot_deringing": True}
    return "jpeg", options


def _png(quality: int | None, lossless: bool, level: int) -> tuple[str, dict[str, Any]]:
    palette = {"palette": True, "Q": quality} if quality is not None and not lossless else {}
    return "png", {"compression": level, **palette}


def _webp(quality: int | None, lossless: bool, level: int) -> tuple[str, dict[str, Any]]:
    if lossless:
        return "webp", {"lossless": True, "effort": level}
    given = quality or DEFAULT_QUALITY[ImageFormat.WEBP]
    return "webp", {"Q": given, "effort": level, "smart_subsample": True}


def _avif(quality: int | None, lossless: bool, level: int) -> tuple[str, dict[str, Any]]:
    options = {"compression": "av1", "effort": level}
    if lossless:
        return "heif", {**options, "lossless": True}
    return "heif", {**options, "Q": quality or DEFAULT_QUALITY[ImageFormat.AVIF]}


def _tiff(quality: int | None, lossless: bool, level: int) -> tuple[str, dict[str, Any]]:
    if quality is not None and not lossless:
        return "tiff", {"compression": "jpeg", "Q": quality}
    return "tiff", {"compression": "deflate", "predictor": "horizontal", "level": level}


def _gif(quality: int | None, lossless: bool, level: int) -> tuple[str, dict[str, Any]]:
    # GIF's quality is its palette: fewer colours (bits per pixel) at a lower quality.
    fewer = quality is not None and not lossless
    depth = {"bitdepth": max(1, min(8, round((quality or 100) / 12.5)))} if fewer else {}
    return "gif", {"effort": level, **depth}


_SAVERS = {
    ImageFormat.JPEG: _jpeg,
    ImageFormat.PNG: _png,
    ImageFormat.WEBP: _webp,
    ImageFormat.AVIF: _avif,
    ImageFormat.TIFF: _tiff,
    ImageFormat.GIF: _gif,
}


def to_srgb(image: pyvips.Image) -> pyvips.Image:
    """``image`` in sRGB: through its embedded ICC profile when it has one (a CMYK image
    without one through libvips' CMYK profile); greyscale stays greyscale."""
    fields = set(image.get_fields())
    cmyk = image.interpretation == "cmyk"
    profile = bytes(image.get("icc-profile-data")) if "icc-profile-data" in fields else b""
    with vips_errors("image colours"):
        if (profile and not _is_srgb(image, profile)) or cmyk:
            embedded = bool(profile)
            options: dict[str, Any] = {"embedded": embedded, "intent": "perceptual"}
            if not embedded:
                options["input_profile"] = "cmyk"
            image = image.icc_transform("srgb", **options)
            if image.format != "uchar":
                image = image.cast("uchar")
            return image
        if image.interpretation not in {"srgb", "b-w", "rgb16", "grey16"}:
            return image.colourspace("srgb")
    return image


def _is_srgb(image: pyvips.Image, profile: bytes) -> bool:
    """Whether an RGB image's profile names itself sRGB (then it needs no transform)."""
    if image.interpretation != "srgb" or image.bands < 3:
        return False
    # The description tag ('desc' or, in v4 profiles, 'mluc' text) lies in the first
    # kilobytes; "sRGB" appears in the names of all common sRGB profiles.
    return b"sRGB" in profile[:4096] or b"s\x00R\x00G\x00B" in profile[:4096]


def drop_gps(image: pyvips.Image) -> pyvips.Image:
    """``image`` without its GPS position: the EXIF GPS directory, and XMP that names one
    (libvips rewrites the EXIF block from these fields when it saves)."""
    image = image.copy()
    for name in image.get_fields():
        if name.startswith("exif-ifd3-"):
            image.remove(name)
    if "xmp-data" in image.get_fields() and b"GPS" in bytes(image.get("xmp-data")):
        image.remove("xmp-data")
    return image
