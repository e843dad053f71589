"""Preparing an image for Tesseract: grey levels, text size, quarter turns, deskew, cleaning.

Each step that moves pixels composes its affine map into :class:`Prepared`'s
``matrix`` (from the caller's pixel grid to the prepared one), so the boxes
Tesseract finds on the prepared image are mapped back onto the caller's image.
Which steps run by default was decided by measurement (``python -m bench.ocr``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import cv2
import numpy as np
from cv2.typing import MatLike
from numpy.typing import NDArray
from PIL import Image

from docworker.formats.base import PixelBox

#: An 8-bit grey image, as OpenCV takes and gives it.
Gray = MatLike
Matrix = NDArray[np.floating[Any]]

#: Median glyph height, in pixels, that small text is scaled up to: about the
#: x-height of 10 pt text at 300 dpi. Measured: 12 lost an underlined heading
#: of a 72 dpi page that 20 reads; 25 and 30 read no better and cost twice the time.
TARGET_TEXT_HEIGHT = 20.0
#: Text this much smaller than the target is left alone: resampling costs time
#: and the gain is nil for text that is nearly the right size.
_SCALE_THRESHOLD = 0.75
MAX_UPSCALE = 4.0
#: Whatever the text size asks, a prepared image stays under this many pixels.
MAX_PREPARED_PIXELS = 60_000_000
#: Skews are looked for within this many degrees either way, and smaller ones
#: than ``_MIN_SKEW`` are left alone (resampling would blur more than it fixes).
MAX_SKEW = 15.0
_MIN_SKEW = 0.3
#: The skew search runs on a copy this many pixels on its long side.
_SKEW_SAMPLE = 1000


@cache
def use_one_thread() -> None:
    """Keep OpenCV to the calling thread, for the whole process.

    OCR scales by processes, one per core. With its own thread pool, OpenCV
    made one reading process keep 1.08 cores busy, taking from the process
    beside it; on one thread it keeps one (``python -m bench.ocr``).
    """
    cv2.setNumThreads(1)


def grey_pixels(image: Image.Image) -> Gray:
    """The image as 8-bit grey levels; transparent parts become white paper."""
    if image.mode in {"RGBA", "LA", "PA"} or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    elif image.mode in {"I", "I;16", "I;16B", "I;16L", "F"}:
        # Deep grey images: converting to "L" would clip, not scale, their levels.
        values = np.asarray(image, dtype=np.float64)
        span = float(values.max() - values.min()) or 1.0
        levels: Gray = ((values - values.min()) * (255.0 / span)).astype(np.uint8)
        return levels
    return np.array(image.convert("L"), dtype=np.uint8)


def _ink(gray: Gray) -> Gray:
    """Text pixels as 255 on 0 (Otsu), whether the text is dark on light or light on dark."""
    _, ink = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    if cv2.countNonZero(ink) > ink.size // 2:
        ink = cv2.bitwise_not(ink)
    return ink


def text_height(gray: Gray) -> float | None:
    """Median height of the glyph-like blobs of ink, or None where too few are found."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(_ink(gray), connectivity=8)
    heights = stats[1:count, cv2.CC_STAT_HEIGHT]
    widths = stats[1:count, cv2.CC_STAT_WIDTH]
    # Specks, rules, frames and pictures are not glyphs.
    glyphs = (heights >= 4) & (heights <= gray.shape[0] / 8) & (widths <= 4 * heights)
    if int(glyphs.sum()) < 10:
        return None
    return float(np.median(heights[glyphs]))


def _background(gray: Gray) -> int:
    """The most frequent grey level: the paper, for filling what a rotation uncovers."""
    return int(np.argmax(np.bincount(gray.ravel(), minlength=256)))


def _rotation(width: int, height: int, degrees: float) -> tuple[Matrix, tuple[int, int]]:
    """The map turning an image ``degrees`` counter-clockwise onto a canvas that holds all of it."""
    step = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    cos, sin = abs(step[0, 0]), abs(step[0, 1])
    new_width = math.ceil(height * sin + width * cos)
    new_height = math.ceil(height * cos + width * sin)
    step[0, 2] += new_width / 2 - width / 2
    step[1, 2] += new_height / 2 - height / 2
    return np.vstack([step, [0.0, 0.0, 1.0]]), (new_width, new_height)


def _profile_sharpness(ink: Gray, degrees: float) -> float:
    """How sharply the rows of ``ink`` turned by ``degrees`` alternate between text and gaps."""
    height, width = ink.shape
    matrix, size = _rotation(width, height, degrees)
    turned = cv2.warpAffine(ink, matrix[:2], size, flags=cv2.INTER_NEAREST, borderValue=0)
    rows = turned.sum(axis=1, dtype=np.float64)
    return float(np.sum(np.diff(rows) ** 2))


def skew_angle(gray: Gray) -> float:
    """The clockwise skew of the text lines in degrees (0 when none is clear).

    Projection profiles: turned by the right angle, the rows of ink alternate
    most sharply between text lines and the gaps between them. A coarse search
    over ±:data:`MAX_SKEW` is refined to a twentieth of a degree.
    """
    ink = _ink(gray)
    rows, cols = ink.shape
    factor = _SKEW_SAMPLE / max(rows, cols)
    if factor < 1:
        size = (max(round(cols * factor), 1), max(round(rows * factor), 1))
        ink = cv2.resize(ink, size, interpolation=cv2.INTER_AREA)
    if cv2.countNonZero(ink) < 100:
        return 0.0
    best = _best_angle(ink, np.arange(-MAX_SKEW, MAX_SKEW + 0.01, 0.5))
    best = _best_angle(ink, np.arange(best - 0.5, best + 0.51, 0.05))
    # A photograph's texture has no lines; its "best" angle is noise.
    if _profile_sharpness(ink, best) < 1.05 * _profile_sharpness(ink, 0.0):
        return 0.0
    return round(best, 2)


def _best_angle(ink: Gray, angles: NDArray[np.float64]) -> float:
    return float(max(angles, key=lambda angle: _profile_sharpness(ink, float(angle))))


@dataclass
class Prepared:
    """An image on its way to Tesseract, and how its pixels relate to the original's."""

    image: Gray
    #: Maps the original image's pixel coordinates to this image's.
    matrix: Matrix = field(default_factory=lambda: np.eye(3))
    scale: float = 1.0
    #: The clockwise turn given to the image, in degrees (0, 90, 180, 270).
    rotation: int = 0
    #: Clockwise skew straightened, in degrees.
    skew_degrees: float = 0.0

    def _moved(self, image: Gray, step: Matrix) -> None:
        self.image = image
        self.matrix = step @ self.matrix

    def normalize_resolution(self) -> None:
        """Scale the image up until its text is about :data:`TARGET_TEXT_HEIGHT` pixels high."""
        height = text_height(self.image)
        if height is None or height >= TARGET_TEXT_HEIGHT * _SCALE_THRESHOLD:
            return
        rows, cols = self.image.shape
        room = math.sqrt(MAX_PREPARED_PIXELS / (rows * cols))
        factor = min(TARGET_TEXT_HEIGHT / height, MAX_UPSCALE, room)
        if factor <= 1.0:
            return
        scaled = cv2.resize(self.image, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
        self.scale *= factor
        self._moved(scaled, np.diag([factor, factor, 1.0]))

    def turn(self, clockwise: int) -> None:
        """Turn the image by a multiple of 90 degrees clockwise."""
        clockwise %= 360
        if clockwise == 0:
            return
        rows, cols = self.image.shape
        codes = {
            90: (cv2.ROTATE_90_CLOCKWISE, [[0, -1, rows], [1, 0, 0]]),
            180: (cv2.ROTATE_180, [[-1, 0, cols], [0, -1, rows]]),
            270: (cv2.ROTATE_90_COUNTERCLOCKWISE, [[0, 1, 0], [-1, 0, cols]]),
        }
        code, step = codes[clockwise]
        self.rotation = (self.rotation + clockwise) % 360
        self._moved(cv2.rotate(self.image, code), np.array([*step, [0, 0, 1]], dtype=np.float64))

    def deskew(self) -> None:
        """Straighten text lines that lean by up to :data:`MAX_SKEW` degrees."""
        angle = skew_angle(self.image)
        if abs(angle) < _MIN_SKEW:
            return
        rows, cols = self.image.shape
        matrix, size = _rotation(cols, rows, angle)
        straight = cv2.warpAffine(
            self.image,
            matrix[:2],
            size,
            flags=cv2.INTER_CUBIC,
            borderValue=_background(self.image),
        )
        self.skew_degrees = round(self.skew_degrees + angle, 2)
        self._moved(straight, matrix)

    def denoise(self) -> None:
        self.image = cv2.medianBlur(self.image, 3)

    def binarize(self) -> None:
        _, self.image = cv2.threshold(self.image, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)

    def box_mapper(self, width: int, height: int) -> BoxMapper:
        """Maps boxes on the prepared image back onto an original of ``width``×``height``."""
        return BoxMapper(np.linalg.inv(self.matrix), width, height)


@dataclass(frozen=True)
class BoxMapper:
    inverse: Matrix
    width: int
    height: int

    def __call__(self, box: tuple[int, int, int, int]) -> PixelBox:
        """The original-image box enclosing prepared-image ``box`` (x0, y0, x1, y1)."""
        x0, y0, x1, y1 = box
        corners = np.array([[x0, x1, x1, x0], [y0, y0, y1, y1], [1, 1, 1, 1]], dtype=np.float64)
        xs, ys, _ = self.inverse @ corners
        return (
            round(min(max(float(xs.min()), 0.0), self.width), 1),
            round(min(max(float(ys.min()), 0.0), self.height), 1),
            round(min(max(float(xs.max()), 0.0), self.width), 1),
            round(min(max(float(ys.max()), 0.0), self.height), 1),
        )
