"""The ``image`` operation with the real libvips, on corpus images and images made here:
outputs opened again and checked (dimensions, pixels, formats by magic bytes, EXIF)."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import pyvips
from PIL import Image, ImageOps
from pydantic import ValidationError

from bench.scoring import corpus_root
from docworker.errors import CorruptDocument, LimitExceeded, UnsupportedFormat
from docworker.operations.image import ImageParams
from tests.unit.operations.image_files import (
    as_array,
    close,
    colour_at,
    from_array,
    magic_format,
    photo_like,
    png_header_only,
    quadrants,
    run,
    save,
)

CORPUS = corpus_root()
corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="test corpus not present")
GPS_IFD = 0x8825


@pytest.fixture
def wide(tmp_path: Path) -> Path:
    """A 400 × 200 PNG in four colours."""
    return save(quadrants(400, 200), tmp_path / "wide.png")


FIT_SIZES = [
    # fit, box, no_upscale, expected size
    ("contain", (100, 100), False, (100, 100)),
    ("cover", (100, 100), False, (100, 100)),
    ("fill", (100, 100), False, (100, 100)),
    ("inside", (100, 100), False, (100, 50)),
    ("outside", (100, 100), False, (200, 100)),
    ("contain", (1000, 1000), True, (1000, 1000)),
    ("cover", (1000, 1000), True, (400, 200)),
    ("fill", (1000, 1000), True, (400, 200)),
    ("inside", (1000, 1000), True, (400, 200)),
    ("outside", (1000, 1000), True, (400, 200)),
    ("inside", (1000, 1000), False, (1000, 500)),
    ("cover", (300, 300), True, (300, 200)),
]


@pytest.mark.parametrize(("fit", "box", "no_upscale", "size"), FIT_SIZES)
@pytest.mark.parametrize("as_step", [False, True], ids=["shortcut", "step"])
def test_every_fit_mode_gives_its_size(
    wide: Path,
    tmp_path: Path,
    fit: str,
    box: tuple[int, int],
    no_upscale: bool,
    size: tuple[int, int],
    as_step: bool,
) -> None:
    resize = {"width": box[0], "height": box[1], "fit": fit, "no_upscale": no_upscale}
    params = {"steps": [{"op": "resize", **resize}]} if as_step else resize
    out = run(wide, tmp_path / "out", format="png", **params)
    assert (out.image.width, out.image.height) == size
    assert (out.payload["width"], out.payload["height"]) == size


def test_contain_pads_with_the_background(wide: Path, tmp_path: Path) -> None:
    out = run(wide, tmp_path, width=100, height=100, fit="contain", background="#ffff00")
    pixels = out.pixels()
    assert colour_at(pixels, 50, 5) == (255, 255, 0)  # padding above the 100 × 50 image
    assert close(colour_at(pixels, 10, 30), (255, 0, 0))  # the red quadrant, scaled


def test_one_side_keeps_the_aspect(wide: Path, tmp_path: Path) -> None:
    out = run(wide, tmp_path, height=50)
    assert (out.image.width, out.image.height) == (100, 50)


def test_crop_box_takes_exactly_that_region(wide: Path, tmp_path: Path) -> None:
    steps = [{"op": "crop", "left": 190, "top": 90, "width": 20, "height": 20}]
    pixels = run(wide, tmp_path, steps=steps).pixels()
    assert pixels.shape[:2] == (20, 20)
    assert colour_at(pixels, 0, 0) == (255, 0, 0) and colour_at(pixels, 19, 19) == (255,) * 3
    assert colour_at(pixels, 19, 0) == (0, 255, 0) and colour_at(pixels, 0, 19) == (0, 0, 255)


@pytest.mark.parametrize("mode", ["centre", "attention", "entropy"])
def test_smart_crops_give_the_size_asked(wide: Path, tmp_path: Path, mode: str) -> None:
    steps = [{"op": "crop", "mode": mode, "width": 120, "height": 80}]
    out = run(wide, tmp_path, steps=steps)
    assert (out.image.width, out.image.height) == (120, 80)


def test_crop_outside_the_image_is_refused(wide: Path, tmp_path: Path) -> None:
    with pytest.raises(Exception, match="outside the image"):
        run(wide, tmp_path, steps=[{"op": "crop", "left": 500, "width": 5, "height": 5}])


def test_rotate_by_right_angles_moves_pixels_without_loss(wide: Path, tmp_path: Path) -> None:
    pixels = run(wide, tmp_path, steps=[{"op": "rotate", "angle": 90}]).pixels()
    assert pixels.shape[:2] == (400, 200)
    # Clockwise: the red top-left quadrant goes to the top right.
    assert colour_at(pixels, 199, 0) == (255, 0, 0) and colour_at(pixels, 0, 0) == (0, 0, 255)


def test_rotate_by_any_angle_fills_the_corners(wide: Path, tmp_path: Path) -> None:
    steps = [{"op": "rotate", "angle": 45, "background": "#00ff00"}]
    pixels = run(wide, tmp_path, steps=steps).pixels()
    assert pixels.shape[0] > 200 and pixels.shape[1] > 400
    assert colour_at(pixels, 0, 0) == (0, 255, 0)


def test_flip_mirrors(wide: Path, tmp_path: Path) -> None:
    flop = run(wide, tmp_path / "h", steps=[{"op": "flop"}]).pixels()
    assert colour_at(flop, 0, 0) == (0, 255, 0)
    flip = run(wide, tmp_path / "v", steps=[{"op": "flip"}]).pixels()
    assert colour_at(flip, 0, 0) == (0, 0, 255)
    across = run(wide, tmp_path / "a", steps=[{"op": "flip", "axis": "horizontal"}]).pixels()
    assert colour_at(across, 0, 0) == (0, 255, 0)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_turns_the_image_upright(tmp_path: Path, orientation: int) -> None:
    stored = quadrants(60, 40).copy()
    stored.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    path = save(stored, tmp_path / f"o{orientation}.jpg", Q=95)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    pixels = run(path, tmp_path / "out", format="png").pixels()[:, :, :3]
    assert pixels.shape == expected.shape
    for x, y in [(5, 5), (pixels.shape[1] - 5, 5), (5, pixels.shape[0] - 5)]:
        assert close(colour_at(pixels, x, y), colour_at(expected, x, y))
    # The output says it is upright: read again, it is not turned a second time.
    kept = run(path, tmp_path / "keep", metadata="keep").image
    fields = kept.get_fields()
    assert "orientation" not in fields or kept.get("orientation") == 1


def test_exif_orientation_is_left_alone_when_asked(tmp_path: Path) -> None:
    stored = quadrants(60, 40).copy()
    stored.set_type(pyvips.GValue.gint_type, "orientation", 6)
    path = save(stored, tmp_path / "o6.jpg")
    out = run(path, tmp_path / "out", auto_orient=False)
    assert (out.image.width, out.image.height) == (60, 40)


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "avif", "tiff", "gif"])
def test_each_output_format_by_its_magic_bytes(wide: Path, tmp_path: Path, fmt: str) -> None:
    out = run(wide, tmp_path, width=80, format=fmt)
    assert magic_format(out.data) == fmt
    assert (out.image.width, out.image.height) == (80, 40)
    assert out.payload["mime"] == f"image/{fmt}" and out.payload["size"] == len(out.data)


def test_quality_trades_bytes(tmp_path: Path) -> None:
    path = save(photo_like(300, 200), tmp_path / "photo.png")
    low = run(path, tmp_path / "low", format="jpeg", quality=30)
    high = run(path, tmp_path / "high", format="jpeg", quality=95)
    assert len(low.data) < len(high.data) and low.payload["quality"] == 30


def exif_of(data: bytes) -> Image.Exif:
    with Image.open(io.BytesIO(data)) as image:
        return image.getexif()


@corpus
def test_gps_is_stripped_by_default_and_the_rest_kept(tmp_path: Path) -> None:
    source = CORPUS / "images/exif-gps.jpg"
    assert exif_of(source.read_bytes()).get_ifd(GPS_IFD)
    out = run(source, tmp_path)
    exif = exif_of(out.data)
    assert not exif.get_ifd(GPS_IFD) and GPS_IFD not in exif
    assert exif.get(0x010F) == "Canon"  # Make
    assert b"GPS" not in out.data


@corpus
def test_gps_is_kept_with_keep_and_everything_goes_with_strip(tmp_path: Path) -> None:
    source = CORPUS / "images/exif-gps.jpg"
    kept = exif_of(run(source, tmp_path / "keep", metadata="keep").data)
    assert kept.get_ifd(GPS_IFD)
    stripped = run(source, tmp_path / "strip", metadata="strip")
    assert len(exif_of(stripped.data)) == 0


def test_cmyk_becomes_srgb(tmp_path: Path) -> None:
    rgb = quadrants(80, 40)
    cmyk = rgb.icc_transform("cmyk", intent="perceptual")
    assert cmyk.interpretation == "cmyk"
    with_profile = save(cmyk, tmp_path / "cmyk.jpg", Q=95)
    no_profile = cmyk.copy()
    no_profile.remove("icc-profile-data")
    bare = save(no_profile, tmp_path / "bare.jpg", Q=95)
    for path in (with_profile, bare):
        out = run(path, tmp_path / path.stem, format="png")
        image = out.image
        assert image.interpretation == "srgb" and image.bands == 3
        pixels = as_array(image)
        assert close(colour_at(pixels, 10, 10), (255, 0, 0), 70)
        assert close(colour_at(pixels, 70, 30), (255, 255, 255), 30)


def test_text_watermark_changes_pixels_only_where_placed(tmp_path: Path) -> None:
    path = save(quadrants(300, 200), tmp_path / "q.png")
    before = as_array(quadrants(300, 200))
    text = {"text": "© Docs", "position": "south-east", "opacity": 1, "size": 30}
    steps = [{"op": "text", "colour": "#ff00ff", **text}]
    after = run(path, tmp_path / "out", steps=steps).pixels()
    changed = np.any(before != after, axis=-1)
    assert changed[150:, 150:].sum() > 50  # in the bottom-right corner
    assert not changed[:100, :].any() and not changed[:, :150].any()


def test_filters_change_the_image_as_named(wide: Path, tmp_path: Path) -> None:
    grey = run(wide, tmp_path / "g", steps=[{"op": "grayscale"}]).image
    assert grey.bands == 1
    dark = run(wide, tmp_path / "d", steps=[{"op": "adjust", "brightness": 0.5}]).pixels()
    assert close(colour_at(dark, 300, 150), (128, 128, 128), 3)
    flat = run(wide, tmp_path / "s", steps=[{"op": "adjust", "saturation": 0}]).pixels()
    red = colour_at(flat, 10, 10)
    assert max(red) - min(red) <= 3
    blurred = run(wide, tmp_path / "b", steps=[{"op": "blur", "sigma": 5}]).pixels()
    edge = colour_at(blurred, 200, 50)
    assert 40 < edge[0] < 215 and 40 < edge[1] < 215
    tinted = run(wide, tmp_path / "t", steps=[{"op": "tint", "colour": "#0000ff"}]).pixels()
    white = colour_at(tinted, 300, 150)
    assert white[2] >= white[0]
    gamma = run(wide, tmp_path / "y", steps=[{"op": "gamma", "gamma": 2}]).pixels()
    assert colour_at(gamma, 300, 150) == (255, 255, 255)
    sharp = run(wide, tmp_path / "x", steps=[{"op": "sharpen"}]).image
    assert (sharp.width, sharp.height) == (400, 200)


def test_a_pixel_bomb_is_refused_from_its_header(tmp_path: Path) -> None:
    bomb = png_header_only(tmp_path / "bomb.png", 100_000, 100_000)
    started = time.perf_counter()
    with pytest.raises(LimitExceeded) as refused:
        run(bomb, tmp_path / "out", width=100)
    # Refused before decoding: the data (16 bytes) would otherwise fail as corrupt.
    assert time.perf_counter() - started < 2
    assert refused.value.fields["limit"] == "pixels"
    assert refused.value.fields["value"] == 10**10


@corpus
def test_heic_in(tmp_path: Path) -> None:
    out = run(CORPUS / "images/tika-test.heic", tmp_path)
    assert magic_format(out.data) == "jpeg"
    assert (out.image.width, out.image.height) == (800, 544)
    assert out.payload["input"]["format"] == "heic"


def test_not_an_image_is_unsupported(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("just words\n")
    with pytest.raises(UnsupportedFormat):
        run(text, tmp_path / "out")


def test_a_truncated_image_is_corrupt(tmp_path: Path) -> None:
    whole = save(quadrants(200, 200), tmp_path / "whole.jpg").read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole[: len(whole) // 3])
    with pytest.raises(CorruptDocument):
        run(cut, tmp_path / "out", format="png")


def test_auto_without_a_target_is_refused() -> None:
    with pytest.raises(ValidationError):
        ImageParams(format="auto")


_STREAM_CHILD = """
import resource, sys
from pathlib import Path
from tests.unit.operations.image_files import run
source, workdir = Path(sys.argv[1]), Path(sys.argv[2])
steps = [{"op": "grayscale"}, {"op": "text", "text": "streamed", "size": 200}]
run(source, workdir / "warm", width=50)  # imports and libvips start-up out of the count
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = run(source, workdir / "out", steps=steps, format="jpeg")
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(out.payload["width"], out.payload["height"], (after - before) // 1024)
"""


def test_a_large_image_streams_in_bounded_memory(tmp_path: Path) -> None:
    """A 6000 × 5000 JPEG (90 MB decoded) through a chain that needs no random access:
    the worker's peak memory grows by a fraction of the decoded image."""
    source = tmp_path / "large.jpg"
    noise = pyvips.Image.gaussnoise(6000, 5000, sigma=40, mean=128).cast("uchar")
    noise.bandjoin([noise, noise]).copy(interpretation="srgb").jpegsave(str(source), Q=80)
    done = subprocess.run(
        [sys.executable, "-c", _STREAM_CHILD, str(source), str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    width, height, grown_mib = (int(v) for v in done.stdout.split())
    assert (width, height) == (6000, 5000)
    assert grown_mib < 45, f"peak memory grew by {grown_mib} MiB"


@pytest.mark.parametrize("as_step", [False, True], ids=["shortcut", "step"])
def test_an_output_past_the_pixel_limit_is_refused(
    wide: Path, tmp_path: Path, as_step: bool
) -> None:
    resize = {"width": 100_000, "height": 100_000, "fit": "fill"}
    params = {"steps": [{"op": "resize", **resize}]} if as_step else resize
    with pytest.raises(LimitExceeded) as refused:
        run(wide, tmp_path, **params)
    assert refused.value.fields["limit"] == "output pixels"


def test_a_wide_gamut_profile_becomes_srgb(tmp_path: Path) -> None:
    """Display P3 values (sRGB green written in P3: about 117, 251, 76) come out as sRGB
    green again, through the embedded profile; with srgb=false they stay as they are."""
    green = pyvips.Image.black(40, 40).new_from_image([0, 255, 0]).copy(interpretation="srgb")
    p3 = green.cast("uchar").icc_transform("p3", input_profile="srgb")
    path = save(p3, tmp_path / "p3.png")
    converted = run(path, tmp_path / "srgb").pixels()
    assert close(colour_at(converted, 20, 20), (0, 255, 0), 4)
    kept = run(path, tmp_path / "kept", srgb=False).pixels()
    assert close(colour_at(kept, 20, 20), (117, 251, 76), 4)


def test_transparency_is_laid_on_white_for_jpeg_and_kept_for_webp(tmp_path: Path) -> None:
    pixels = np.zeros((20, 20, 4), dtype=np.uint8)
    pixels[:, :10] = (255, 0, 0, 255)  # opaque red left half, transparent right half
    path = save(from_array(pixels), tmp_path / "alpha.png")
    jpeg = run(path, tmp_path / "jpeg", format="jpeg").pixels()
    assert close(colour_at(jpeg, 15, 10), (255, 255, 255), 8)
    assert close(colour_at(jpeg, 4, 10), (255, 0, 0), 40)
    webp = run(path, tmp_path / "webp", format="webp", lossless=True).image
    assert webp.hasalpha() and as_array(webp)[10, 15, 3] == 0
