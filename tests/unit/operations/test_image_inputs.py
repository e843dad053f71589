"""The ``image`` operation on animated and vector input, and its automatic format and
quality: outputs read back, SSIM recomputed here, the choice checked against what was tried."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pyvips

from bench.scoring import corpus_root
from docworker.config import LimitSettings, load_settings
from docworker.errors import InvalidParameter, LimitExceeded
from docworker.operations.base import InputFile, operation_context
from docworker.operations.image import ImageOperation, ImageParams
from tests.listener import Listener
from tests.unit.operations.image_files import (
    animated_gif,
    as_array,
    close,
    colour_at,
    magic_format,
    photo_like,
    run,
    save,
    ssim,
)

CORPUS = corpus_root()
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


@pytest.fixture
def gif(tmp_path: Path) -> Path:
    return animated_gif(tmp_path / "anim.gif", [RED, GREEN, BLUE])


def frames_of(data: bytes) -> list[np.ndarray[Any, Any]]:
    image = pyvips.Image.new_from_buffer(data, "", n=-1)
    height = image.get("page-height") if "page-height" in image.get_fields() else image.height
    strip = as_array(image)
    return [strip[i : i + height] for i in range(0, image.height, height)]


@pytest.mark.parametrize("fmt", ["gif", "webp"])
def test_an_animation_stays_animated_through_the_chain(gif: Path, tmp_path: Path, fmt: str) -> None:
    steps = [{"op": "flop"}, {"op": "crop", "mode": "centre", "width": 20, "height": 16}]
    out = run(gif, tmp_path, width=30, format=fmt, steps=steps)
    assert magic_format(out.data) == fmt
    frames = frames_of(out.data)
    assert len(frames) == 3 and out.payload["frames"] == 3
    assert all(frame.shape[:2] == (16, 20) for frame in frames)
    for frame, colour in zip(frames, [RED, GREEN, BLUE], strict=True):
        assert close(colour_at(frame, 10, 8), colour)


def test_a_still_format_takes_one_frame(gif: Path, tmp_path: Path) -> None:
    first = run(gif, tmp_path / "first", format="png")
    assert first.payload["frames"] == 1 and first.payload["input"]["frames"] == 3
    assert colour_at(first.pixels(), 5, 5) == RED
    second = run(gif, tmp_path / "second", format="png", frame=2)
    assert colour_at(second.pixels(), 5, 5) == GREEN
    one = run(gif, tmp_path / "one", frame=3)
    assert len(frames_of(one.data)) == 1 and close(colour_at(one.pixels(), 5, 5), BLUE)


def test_a_frame_past_the_last_is_refused(gif: Path, tmp_path: Path) -> None:
    with pytest.raises(LimitExceeded, match="frame 4"):
        run(gif, tmp_path, frame=4)


def test_svg_references_are_never_fetched(listener: Listener, tmp_path: Path) -> None:
    neighbour = save(pyvips.Image.black(10, 10) + 255, tmp_path / "neighbour.png")
    url = f"http://127.0.0.1:{listener.port}"
    svg = tmp_path / "refs.svg"
    svg.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
        ' width="120" height="80">'
        '<rect width="120" height="80" fill="#ff0000"/>'
        f'<image href="{url}/a.png" x="0" y="0" width="60" height="80"/>'
        f'<image xlink:href="{url}/b.png" x="60" y="0" width="60" height="80"/>'
        f'<image xlink:href="file://{neighbour}" x="0" y="0" width="120" height="80"/>'
        f'<image xlink:href="neighbour.png" x="0" y="0" width="120" height="80"/>'
        f"<style>@import url({url}/c.css);</style>"
        f'<filter id="f"><feImage xlink:href="{url}/d.png"/></filter>'
        f'<use xlink:href="{url}/e.svg#shape"/>'
        f'<rect width="1" height="1" fill="url({url}/f.svg#paint)" filter="url(#f)"/>'
        "</svg>"
    )
    out = run(svg, tmp_path / "out", width=240)
    assert magic_format(out.data) == "png" and out.payload["input"]["format"] == "svg"
    assert (out.image.width, out.image.height) == (240, 160)
    pixels = out.pixels()
    # Only the red rectangle is drawn: no image, local or remote, was loaded.
    assert all(colour_at(pixels, x, y) == RED for x, y in [(10, 10), (200, 150), (120, 80)])
    assert listener.connections == []


def photo(tmp_path: Path) -> Path:
    return save(photo_like(360, 240), tmp_path / "photo.png")


def luma_of(data: bytes) -> np.ndarray[Any, Any]:
    image = pyvips.Image.new_from_buffer(data, "")
    if image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    return as_array(image.colourspace("b-w"))[:, :, 0]


def test_auto_quality_meets_the_ssim_with_the_smallest_tried(tmp_path: Path) -> None:
    source = photo(tmp_path)
    out = run(source, tmp_path / "out", min_ssim=0.95, formats=["webp", "jpeg"])
    auto = out.payload["auto"]
    assert magic_format(out.data) == auto["format"] == out.payload["format"]
    assert auto["size"] == len(out.data) == out.payload["size"]
    # The constraint holds, recomputed here against the source.
    assert ssim(luma_of(source.read_bytes()), luma_of(out.data)) >= 0.95 - 0.005
    meeting = [t for t in auto["tried"] if t["ssim"] >= 0.95]
    assert auto["size"] == min(t["size"] for t in meeting)
    assert {t["format"] for t in auto["tried"]} == {"webp", "jpeg"}
    assert auto["quality"] < 100


def test_auto_quality_within_a_byte_budget(tmp_path: Path) -> None:
    source = photo(tmp_path)
    out = run(source, tmp_path / "out", max_bytes=6000, formats=["webp", "jpeg"])
    auto = out.payload["auto"]
    assert len(out.data) <= 6000
    fitting = [t for t in auto["tried"] if t["size"] <= 6000]
    assert auto["ssim"] == max(t["ssim"] for t in fitting)
    assert ssim(luma_of(source.read_bytes()), luma_of(out.data)) == pytest.approx(
        auto["ssim"], abs=0.01
    )


def test_auto_quality_says_when_nothing_fits(tmp_path: Path) -> None:
    source = photo(tmp_path)
    with pytest.raises(LimitExceeded, match="no format and quality tried fits"):
        run(source, tmp_path / "small", max_bytes=100, formats=["jpeg"])
    with pytest.raises(InvalidParameter, match="SSIM"):
        run(source, tmp_path / "perfect", min_ssim=1.0, formats=["jpeg"])


@pytest.mark.skipif(not CORPUS.is_dir(), reason="test corpus not present")
def test_auto_on_a_corpus_photo_saves_bytes(tmp_path: Path) -> None:
    source = CORPUS / "images/paper-with-table.jpg"
    out = run(source, tmp_path, width=400, min_ssim=0.97, formats=["webp", "jpeg"])
    plain = run(source, tmp_path / "plain", width=400, format="jpeg", quality=90)
    assert len(out.data) < len(plain.data)
    assert ssim(luma_of(plain.data), luma_of(out.data)) > 0.9


def test_an_animation_past_the_pixel_limit_is_refused(gif: Path, tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, limits=LimitSettings(max_pixels=4000))
    ctx = operation_context(settings, workdir=tmp_path)
    # Three 40 × 40 frames: 4800 pixels in all, each frame 1600.
    with pytest.raises(LimitExceeded, match="take one with 'frame'"):
        ImageOperation().run(ctx, InputFile(gif), ImageParams(format="gif"))
    done = ImageOperation().run(ctx, InputFile(gif), ImageParams(format="gif", frame=2))
    assert done.payload["frames"] == 1


def test_a_named_format_has_only_its_quality_searched(tmp_path: Path) -> None:
    out = run(photo(tmp_path), tmp_path / "out", format="jpeg", min_ssim=0.95)
    assert out.payload["format"] == "jpeg" and magic_format(out.data) == "jpeg"
    assert {t["format"] for t in out.payload["auto"]["tried"]} == {"jpeg"}
    with pytest.raises(ValueError, match="not both"):
        ImageParams(format="jpeg", formats=["webp"], min_ssim=0.9)


@pytest.mark.parametrize(("fmt", "low", "high"), [("webp", 0, 6), ("png", 0, 9)])
def test_effort_changes_the_encoding(tmp_path: Path, fmt: str, low: int, high: int) -> None:
    source = photo(tmp_path)
    quick = run(source, tmp_path / "quick", format=fmt, effort=low)
    thorough = run(source, tmp_path / "thorough", format=fmt, effort=high)
    assert magic_format(quick.data) == magic_format(thorough.data) == fmt
    assert len(thorough.data) < len(quick.data)
