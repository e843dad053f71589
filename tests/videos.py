"""Videos the tests make themselves with FFmpeg's test sources, once per session.

``testsrc2`` draws six colour bars (red, green, yellow, blue, magenta, cyan, left
to right) whose bottom rows nothing moves over at the times :data:`STILL_TIMES`;
``sine`` is a 440 Hz tone. Import the ``test_video`` fixture into a test module.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from docworker.config import FfmpegSettings, SpeechSettings, load_settings
from docworker.operations import get_operation, validate_params
from docworker.operations.base import InputFile, OperationContext, Result

WIDTH, HEIGHT, FPS, SECONDS = 320, 240, 25, 4
#: The bars at the bottom of a testsrc2 frame, left to right.
BARS = [(255, 0, 0), (0, 255, 0), (255, 255, 0), (0, 0, 255), (255, 0, 255), (0, 255, 255)]
#: Times at which nothing covers the bottom of the bars.
STILL_TIMES = (0.0, 3.2)

needs_ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
    reason="FFmpeg is not installed",
)


def make_video(path: Path, *, size: str = f"{WIDTH}x{HEIGHT}", seconds: float = SECONDS) -> Path:
    """An H.264/AAC MP4 (or whatever ``path``'s extension says) of testsrc2 and a tone."""
    subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={size}:rate={FPS}:duration={seconds}",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:sample_rate=48000:duration={seconds}",
            "-pix_fmt",
            "yuv420p",
            "-shortest",
            str(path),
        ],
        check=True,
        timeout=60,
    )
    return path


def bar_colours(image_path: Path) -> list[tuple[int, int, int]]:
    """The colour at the middle of each bar, near the bottom of the image."""
    from PIL import Image

    with Image.open(image_path) as image:
        rgb = image.convert("RGB")
        width, height = rgb.size
        row = int(height * 0.95)
        return [rgb.getpixel((int(width * (i + 0.5) / 6), row)) for i in range(6)]  # type: ignore[misc]


def close_to(found: tuple[int, int, int], expected: tuple[int, int, int], slack: int = 40) -> bool:
    return all(abs(a - b) <= slack for a, b in zip(found, expected, strict=True))


@pytest.fixture(scope="session")
def test_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4 s, 320×240, 25 fps H.264/AAC MP4 of testsrc2 and a 440 Hz tone."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("FFmpeg is not installed")
    return make_video(tmp_path_factory.mktemp("videos") / "testsrc2.mp4")


def run_operation(
    name: str,
    path: Path,
    workdir: Path,
    ffmpeg: FfmpegSettings | None = None,
    speech: SpeechSettings | None = None,
    **params: Any,
) -> Result:
    """The operation ``name`` run here on ``path`` with ``params``, its outputs in
    ``workdir`` (made when missing)."""
    settings = load_settings(ffmpeg=ffmpeg or FfmpegSettings(), speech=speech or SpeechSettings())
    workdir.mkdir(parents=True, exist_ok=True)
    operation = get_operation(name)
    ctx = OperationContext(workdir=workdir, settings=settings)
    return operation.run(ctx, InputFile(path, path.name), validate_params(operation, params))


def ffmpeg(*args: str) -> None:
    """FFmpeg run quietly with ``args`` (inputs, filters, the output)."""
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args],
        check=True,
        timeout=60,
    )


def make_tone(path: Path, seconds: float = 1.0) -> Path:
    """A WAV of a 440 Hz tone."""
    ffmpeg("-f", "lavfi", "-i", f"sine=d={seconds}", str(path))
    return path
