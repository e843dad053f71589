"""The formats images are written in, with their media types and file suffixes.

Kept apart from :mod:`docworker.engines.vips` so that what only names a format (the
API's routes, parameters) does not load libvips.
"""

from __future__ import annotations

from enum import StrEnum


class ImageFormat(StrEnum):
    """The formats images are written in."""

    JPEG = "jpeg"
    PNG = "png"
    WEBP = "webp"
    AVIF = "avif"
    TIFF = "tiff"
    GIF = "gif"

    @property
    def mime(self) -> str:
        return _MIMES[self]

    @property
    def suffix(self) -> str:
        return _SUFFIXES[self]

    @property
    def animated(self) -> bool:
        """Whether the format keeps several frames as an animation."""
        return self in {ImageFormat.GIF, ImageFormat.WEBP}

    @property
    def alpha(self) -> bool:
        """Whether the format keeps transparency."""
        return self is not ImageFormat.JPEG

    @property
    def lossy(self) -> bool:
        """Whether ``quality`` trades pixels for bytes (PNG and GIF: palette quantisation)."""
        return self in {ImageFormat.JPEG, ImageFormat.WEBP, ImageFormat.AVIF, ImageFormat.TIFF}


_MIMES = {
    ImageFormat.JPEG: "image/jpeg",
    ImageFormat.PNG: "image/png",
    ImageFormat.WEBP: "image/webp",
    ImageFormat.AVIF: "image/avif",
    ImageFormat.TIFF: "image/tiff",
    ImageFormat.GIF: "image/gif",
}
_SUFFIXES = {
    ImageFormat.JPEG: "jpg",
    ImageFormat.PNG: "png",
    ImageFormat.WEBP: "webp",
    ImageFormat.AVIF: "avif",
    ImageFormat.TIFF: "tif",
    ImageFormat.GIF: "gif",
}


class PageFormat(StrEnum):
    """The formats page images and screenshots are written in: the three every browser
    shows (a subset of :class:`ImageFormat`)."""

    PNG = "png"
    JPEG = "jpeg"
    WEBP = "webp"

    @property
    def mime(self) -> str:
        return _MIMES[ImageFormat(self.value)]

    @property
    def extension(self) -> str:
        return _SUFFIXES[ImageFormat(self.value)]


__all__ = ["ImageFormat", "PageFormat"]
