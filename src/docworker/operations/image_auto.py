"""Automatic format and quality: the smallest encoding of an image that meets a target.

The target is a minimum visual quality — SSIM against the image before encoding,
computed on its luma scaled to ``settings.image.score_size`` pixels on the long
side — a byte budget, or both. Each candidate format is searched by bisection on
its quality (1–100), on the assumption that a higher quality never scores lower
nor weighs less, which holds closely enough for JPEG, WebP, AVIF and PNG's
palette quality that the search checks its answer rather than trusting it:
every encoding tried is recorded and the choice is made among them.

- with ``min_ssim`` (and perhaps ``max_bytes``): the smallest encoding tried whose
  score reaches ``min_ssim`` and whose size is within the budget;
- with ``max_bytes`` alone: the best-scoring encoding tried within the budget
  (the smaller one on a tie).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from docworker.engines.image_formats import ImageFormat
from docworker.engines.vips import pyvips, vips_errors
from docworker.errors import InvalidParameter, LimitExceeded

Luma = NDArray[np.float32]
#: Encodes the image as a format at a quality.
Encoder = Callable[[ImageFormat, int], bytes]

_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2


@dataclass(frozen=True)
class Trial:
    """One encoding tried."""

    format: ImageFormat
    quality: int
    size: int
    ssim: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format.value,
            "quality": self.quality,
            "size": self.size,
            "ssim": round(self.ssim, 5),
        }


def luma(image: pyvips.Image, size: int) -> Luma:
    """The first frame of ``image``, over white, in grey, scaled to ``size`` on its long
    side (never enlarged), as floats 0–255."""
    with vips_errors("image"):
        if image.hasalpha():
            image = image.flatten(background=[255] * (image.bands - 1))
        if image.interpretation not in {"b-w", "grey16"} and image.bands >= 3:
            image = image.colourspace("b-w")
        if image.bands > 1:
            image = image[0]
        scale = min(1.0, size / max(image.width, image.height))
        if scale < 1.0:
            image = image.resize(scale)
        pixels = np.ndarray(
            buffer=image.cast("uchar").write_to_memory(),
            dtype=np.uint8,
            shape=(image.height, image.width),
        )
    return pixels.astype(np.float32)


def decoded_luma(data: bytes, shape: tuple[int, ...], size: int) -> Luma:
    """The luma of encoded ``data``, scaled to ``shape`` (that of the reference)."""
    with vips_errors("encoded image"):
        image = pyvips.Image.new_from_buffer(data, "")
    found = luma(image, size)
    if found.shape != shape:
        resized = cv2.resize(found, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
        return np.asarray(resized, dtype=np.float32)
    return found


def ssim(reference: Luma, other: Luma) -> float:
    """Mean structural similarity of two grey images (Wang et al. 2004: Gaussian window
    of 11 pixels, sigma 1.5, K1 0.01, K2 0.03)."""

    def blur(values: Luma) -> Luma:
        return np.asarray(cv2.GaussianBlur(values, (11, 11), 1.5), dtype=np.float32)

    mu_x, mu_y = blur(reference), blur(other)
    var_x = blur(reference * reference) - mu_x * mu_x
    var_y = blur(other * other) - mu_y * mu_y
    cov = blur(reference * other) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + _C1) * (2 * cov + _C2)
    denominator = (mu_x * mu_x + mu_y * mu_y + _C1) * (var_x + var_y + _C2)
    return float(np.mean(numerator / denominator))


@dataclass
class AutoSearch:
    """The search over formats × qualities for one image."""

    encode: Encoder
    reference: Luma
    score_size: int
    min_ssim: float | None
    max_bytes: int | None
    trials: dict[tuple[ImageFormat, int], Trial]

    def run(self, formats: list[ImageFormat]) -> Trial:
        """The encoding chosen (see the module's docstring); every trial is kept."""
        for fmt in formats:
            self._search(fmt)
        return self.choose()

    def _trial(self, fmt: ImageFormat, quality: int) -> Trial:
        key = (fmt, quality)
        if key not in self.trials:
            data = self.encode(fmt, quality)
            score = ssim(self.reference, decoded_luma(data, self.reference.shape, self.score_size))
            self.trials[key] = Trial(fmt, quality, len(data), score)
        return self.trials[key]

    def _fits(self, trial: Trial) -> bool:
        if self.max_bytes is not None and trial.size > self.max_bytes:
            return False
        return self.min_ssim is None or trial.ssim >= self.min_ssim

    def _search(self, fmt: ImageFormat) -> None:
        """Bisection on quality: the lowest that fits when a score is asked for (smaller
        above it is unlikely), else the highest that fits the budget."""
        low, high = 1, 100
        while low <= high:
            middle = (low + high) // 2
            trial = self._trial(fmt, middle)
            if self.min_ssim is not None:
                good = trial.ssim >= self.min_ssim
                low, high = (low, middle - 1) if good else (middle + 1, high)
            elif self._fits(trial):
                low = middle + 1
            else:
                high = middle - 1

    def choose(self) -> Trial:
        fitting = [trial for trial in self.trials.values() if self._fits(trial)]
        if fitting and self.min_ssim is not None:
            return min(fitting, key=lambda t: (t.size, -t.ssim))
        if fitting:
            return max(fitting, key=lambda t: (t.ssim, -t.size))
        tried = list(self.trials.values())
        if self.min_ssim is not None and not any(t.ssim >= self.min_ssim for t in tried):
            best = max(t.ssim for t in tried)
            raise InvalidParameter(
                "min_ssim",
                f"no format and quality tried reaches an SSIM of {self.min_ssim:g} "
                f"(the best reached {best:.4f})",
            )
        assert self.max_bytes is not None
        smallest = min(t.size for t in tried if self.min_ssim is None or t.ssim >= self.min_ssim)
        raise LimitExceeded(
            "output size in bytes",
            smallest,
            self.max_bytes,
            detail=f"no format and quality tried fits in {self.max_bytes} bytes"
            + (f" at an SSIM of {self.min_ssim:g}" if self.min_ssim is not None else "")
            + f"; the smallest was {smallest} bytes",
        )
