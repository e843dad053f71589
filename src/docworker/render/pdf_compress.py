"""Making a PDF smaller: lossless repacking by qpdf, and optional image downsampling.

The lossless part is qpdf's: objects packed into compressed object streams, every
stream that can be compressed compressed, Flate streams recompressed at the highest
level, unreferenced objects dropped. The lossy part runs only when asked for
(``max_image_dpi``): each image drawn on a page at more than that resolution is
resampled with Pillow to it and stored as JPEG at ``image_quality``, and kept only
when that is smaller than what it replaces. The resolution an image is drawn at
comes from the pages' content streams: the current transformation matrix at each
``Do`` of the image (through form XObjects too) gives its size on the page.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import pikepdf
from PIL import Image

#: Images drawn at most this much above the target resolution are left alone: resampling
#: them would cost quality for little gain.
_SLACK = 1.2
#: How deep form XObjects inside form XObjects are followed.
_MAX_FORM_DEPTH = 8
#: Device colour spaces whose samples Pillow reads and JPEG stores as they are.
_SIMPLE_COLOURS = {"/DeviceRGB": "RGB", "/DeviceGray": "L"}

Matrix = tuple[float, float, float, float, float, float]
_IDENTITY: Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)


def lossless_options(encrypted: bool = False) -> dict[str, Any]:
    """:meth:`pikepdf.Pdf.save` options that repack the file without losing anything.
    qpdf cannot decode and re-encode the streams of a file it writes encrypted: such a
    file only gets object streams and compression of its uncompressed streams."""
    options: dict[str, Any] = {
        "object_stream_mode": pikepdf.ObjectStreamMode.generate,
        "compress_streams": True,
    }
    if not encrypted:
        options["recompress_flate"] = True
        options["stream_decode_level"] = pikepdf.StreamDecodeLevel.generalized
    return options


@dataclass
class ImageReport:
    """What downsampling did: images looked at, resampled, and bytes saved on them."""

    seen: int = 0
    resampled: int = 0
    bytes_saved: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "seen": self.seen,
            "resampled": self.resampled,
            "bytes_saved": self.bytes_saved,
            "skipped": self.skipped,
        }


@dataclass(frozen=True)
class Resampling:
    """How images are resampled: down to ``max_dpi`` as drawn, stored as JPEG at
    ``quality``; images of more than ``max_pixels`` are not decoded at all."""

    max_dpi: int
    quality: int = 75
    max_pixels: int = 100_000_000


def downsample_images(pdf: pikepdf.Pdf, resampling: Resampling) -> ImageReport:
    """Resample every image drawn above ``resampling.max_dpi`` to it (see the module)."""
    report = ImageReport()
    for image, width_pt, height_pt in _drawn_images(pdf):
        report.seen += 1
        _downsample(image, width_pt, height_pt, resampling, report)
    return report


def _drawn_images(pdf: pikepdf.Pdf) -> Iterator[tuple[pikepdf.Object, float, float]]:
    """Each image XObject once, with the largest size (points) it is drawn at."""
    sizes: dict[tuple[int, int], tuple[pikepdf.Object, float, float]] = {}
    for page in pdf.pages:
        resources = page.obj.get("/Resources", pikepdf.Dictionary())
        _walk(page.obj, resources, _IDENTITY, sizes, 0)
    yield from sizes.values()


def _walk(
    content: pikepdf.Object,
    resources: pikepdf.Object,
    ctm: Matrix,
    sizes: dict[tuple[int, int], tuple[pikepdf.Object, float, float]],
    depth: int,
) -> None:
    stack: list[Matrix] = []
    xobjects = resources.get("/XObject", pikepdf.Dictionary())
    for instruction in pikepdf.parse_content_stream(content):
        if not isinstance(instruction, pikepdf.ContentStreamInstruction):
            continue  # an inline image: small by nature, and not an XObject
        operands, op = instruction.operands, str(instruction.operator)
        if op == "q":
            stack.append(ctm)
        elif op == "Q" and stack:
            ctm = stack.pop()
        elif op == "cm" and len(operands) == 6:
            ctm = _multiply(tuple(float(v) for v in operands), ctm)  # type: ignore[arg-type]
        elif op == "Do" and operands:
            xobject = xobjects.get(str(operands[0]))
            if xobject is not None:
                _drawn(xobject, resources, ctm, sizes, depth)


def _drawn(
    xobject: pikepdf.Object,
    resources: pikepdf.Object,
    ctm: Matrix,
    sizes: dict[tuple[int, int], tuple[pikepdf.Object, float, float]],
    depth: int,
) -> None:
    subtype = xobject.get("/Subtype")
    if subtype == pikepdf.Name.Image and xobject.is_indirect:
        width, height = math.hypot(ctm[0], ctm[1]), math.hypot(ctm[2], ctm[3])
        key = xobject.objgen
        if key in sizes:
            _, known_w, known_h = sizes[key]
            width, height = max(width, known_w), max(height, known_h)
        sizes[key] = (xobject, width, height)
    elif subtype == pikepdf.Name.Form and depth < _MAX_FORM_DEPTH:
        matrix = tuple(float(v) for v in xobject.get("/Matrix", _IDENTITY))
        inner = xobject.get("/Resources", resources)
        _walk(xobject, inner, _multiply(matrix, ctm), sizes, depth + 1)  # type: ignore[arg-type]


def _multiply(m: Matrix, n: Matrix) -> Matrix:
    """The matrix product m × n (PDF's row-vector convention: m applied first)."""
    a, b, c, d, e, f = m
    a2, b2, c2, d2, e2, f2 = n
    return (
        a * a2 + b * c2,
        a * b2 + b * d2,
        c * a2 + d * c2,
        c * b2 + d * d2,
        e * a2 + f * c2 + e2,
        e * b2 + f * d2 + f2,
    )


def _downsample(
    image: pikepdf.Object,
    width_pt: float,
    height_pt: float,
    resampling: Resampling,
    report: ImageReport,
) -> None:
    reason = _unsuitable(image)
    width, height = int(image.get("/Width", 0)), int(image.get("/Height", 0))
    if reason is None and width * height > resampling.max_pixels:
        reason = "over the pixel limit"
    if reason:
        report.skip(reason)
        return
    target_w = max(1, round(width_pt / 72 * resampling.max_dpi))
    target_h = max(1, round(height_pt / 72 * resampling.max_dpi))
    if width <= target_w * _SLACK or height <= target_h * _SLACK:
        report.skip("at or under the resolution")
        return
    try:
        pil = pikepdf.PdfImage(cast(pikepdf.Stream, image)).as_pil_image()
    except (pikepdf.PdfError, NotImplementedError, ValueError, OSError):
        report.skip("not decodable")
        return
    mode = _colour_mode(image)
    assert mode is not None
    resized = pil.convert(mode).resize((target_w, target_h), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    resized.save(buffer, "JPEG", quality=resampling.quality, optimize=True)
    old_size = len(image.read_raw_bytes())
    if buffer.tell() >= old_size:
        report.skip("no smaller")
        return
    image.write(buffer.getvalue(), filter=pikepdf.Name.DCTDecode)
    image.Width, image.Height, image.BitsPerComponent = target_w, target_h, 8
    report.resampled += 1
    report.bytes_saved += old_size - buffer.tell()


def _colour_mode(image: pikepdf.Object) -> str | None:
    """The Pillow mode of the image's samples, for the colour spaces whose samples a JPEG
    holds as they are (device RGB and grey, and ICC-based with 1 or 3 components)."""
    space = image.get("/ColorSpace")
    if isinstance(space, pikepdf.Array) and len(space) == 2 and space[0] == pikepdf.Name.ICCBased:
        return {1: "L", 3: "RGB"}.get(int(space[1].get("/N", 0)))
    return _SIMPLE_COLOURS.get(str(space))


def _unsuitable(image: pikepdf.Object) -> str | None:
    """Why the image is left as it is (None: it may be resampled)."""
    if image.get("/ImageMask") or "/Mask" in image or "/Decode" in image:
        return "masked or decoded"
    if _colour_mode(image) is None:
        return "colour space"
    if int(image.get("/BitsPerComponent", 0)) != 8:
        return "bit depth"
    filters = image.get("/Filter")
    names = [str(f) for f in filters] if isinstance(filters, pikepdf.Array) else [str(filters)]
    if not set(names) <= {"/DCTDecode", "/FlateDecode", "None"}:
        return "filter"
    return None
