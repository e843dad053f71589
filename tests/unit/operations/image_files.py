"""Images the ``image`` operation's tests make, run and check: made with pyvips and numpy,
outputs opened again and read by their magic bytes and their pixels."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyvips

from docworker.config import load_settings
from docworker.operations.base import InputFile, operation_context
from docworker.operations.image import ImageOperation, ImageParams

OPERATION = ImageOperation()
MAGIC = {
    "jpeg": (0, b"\xff\xd8\xff"),
    "png": (0, b"\x89PNG\r\n\x1a\n"),
    "gif": (0, b"GIF89a"),
    "tiff": (0, b"II*\x00"),
    "webp": (8, b"WEBP"),
    "avif": (4, b"ftypavif"),
}


def magic_format(data: bytes) -> str | None:
    """The format of ``data`` by its magic bytes."""
    for name, (offset, magic) in MAGIC.items():
        if data[offset : offset + len(magic)] == magic:
            return name
    if data[:4] == b"MM\x00*":
        return "tiff"
    return None


@dataclass
class Output:
    payload: dict[str, Any]
    data: bytes
    path: Path

    @property
    def image(self) -> pyvips.Image:
        return pyvips.Image.new_from_buffer(self.data, "")

    def pixels(self) -> np.ndarray[Any, Any]:
        return as_array(self.image)


def run(path: Path, workdir: Path, **params: Any) -> Output:
    """The image operation on ``path``, with its artifact read back."""
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = operation_context(load_settings(data_dir=workdir), workdir=workdir)
    result = OPERATION.run(ctx, InputFile(path, name=path.name), ImageParams(**params))
    [artifact] = result.artifacts
    return Output(result.payload, artifact.path.read_bytes(), artifact.path)


def as_array(image: pyvips.Image) -> np.ndarray[Any, Any]:
    image = image.cast("uchar")
    return np.ndarray(
        buffer=image.write_to_memory(),
        dtype=np.uint8,
        shape=(image.height, image.width, image.bands),
    )


def from_array(pixels: np.ndarray[Any, Any]) -> pyvips.Image:
    height, width, bands = pixels.shape
    image = pyvips.Image.new_from_memory(
        np.ascontiguousarray(pixels, dtype=np.uint8).tobytes(), width, height, bands, "uchar"
    )
    return image.copy(interpretation="srgb" if bands >= 3 else "b-w")


def quadrants(width: int, height: int) -> pyvips.Image:
    """Four flat colours: red top-left, green top-right, blue bottom-left, white bottom-right."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    half_w, half_h = width // 2, height // 2
    pixels[:half_h, :half_w] = (255, 0, 0)
    pixels[:half_h, half_w:] = (0, 255, 0)
    pixels[half_h:, :half_w] = (0, 0, 255)
    pixels[half_h:, half_w:] = (255, 255, 255)
    return from_array(pixels)


def photo_like(width: int, height: int, seed: int = 1) -> pyvips.Image:
    """Smooth gradients with some noise and edges: compresses like a photograph."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    red = 128 + 100 * np.sin(x / 37.0) * np.cos(y / 53.0)
    green = 255 * x / width
    blue = 255 * y / height
    pixels = np.stack([red, green, blue], axis=-1) + rng.normal(0, 6, (height, width, 3))
    pixels[height // 3 : height // 2, width // 4 : width // 2] = (20, 20, 20)
    return from_array(np.clip(pixels, 0, 255).astype(np.uint8))


def save(image: pyvips.Image, path: Path, **options: Any) -> Path:
    image.write_to_file(str(path), **options)
    return path


def colour_at(pixels: np.ndarray[Any, Any], x: int, y: int) -> tuple[int, ...]:
    return tuple(int(v) for v in pixels[y, x, :3])


def close(found: tuple[int, ...], wanted: tuple[int, ...], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(found, wanted, strict=True))


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width`` × ``height`` but whose data is a few bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def animated_gif(path: Path, colours: list[tuple[int, int, int]], size: int = 40) -> Path:
    """An animated GIF, one flat colour per frame."""
    frames = [from_array(np.full((size, size, 3), colour, dtype=np.uint8)) for colour in colours]
    strip = pyvips.Image.arrayjoin(frames, across=1).copy()
    strip.set_type(pyvips.GValue.gint_type, "page-height", size)
    strip.set_type(pyvips.GValue.array_int_type, "delay", [100] * len(colours))
    strip.set_type(pyvips.GValue.gint_type, "loop", 0)
    strip.gifsave(str(path))
    return path


def ssim(reference: np.ndarray[Any, Any], other: np.ndarray[Any, Any]) -> float:
    """SSIM (Gaussian window 11, sigma 1.5) of two grey images, computed here with scipy-free
    numpy: a separable Gaussian filter written out, independent of the service's code."""
    radius, sigma = 5, 1.5
    taps = np.exp(-((np.arange(-radius, radius + 1)) ** 2) / (2 * sigma**2))
    taps /= taps.sum()

    def blur(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        padded = np.pad(values, radius, mode="reflect")
        rows = sum(t * padded[:, i : i + values.shape[1]] for i, t in enumerate(taps))
        return sum(t * rows[i : i + values.shape[0], :] for i, t in enumerate(taps))

    x, y = reference.astype(np.float64), other.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    value = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(value.mean())


def run_inputs(paths: list[Path], workdir: Path, **params: Any) -> tuple[dict[str, Any], Any]:
    """The image operation on several input files (the first, then the others): the
    payload and the whole result, artifacts included."""
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = operation_context(load_settings(data_dir=workdir), workdir=workdir)
    first, *others = paths
    source = InputFile(
        first, name=first.name, others=tuple(InputFile(p, name=p.name) for p in others)
    )
    result = OPERATION.run(ctx, source, ImageParams(**params))
    return result.payload, result
