"""The ``image`` operation with several input files: a watermark image, and batches
(run whole, and split into parts then merged as the executor does)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pyvips

from docworker.config import load_settings
from docworker.errors import InvalidParameter, UnsupportedFormat
from docworker.operations.base import InputFile, PartResult, SplitPlan, operation_context
from docworker.operations.image import ImageOperation, ImageParams
from tests.unit.operations.image_files import (
    as_array,
    close,
    colour_at,
    from_array,
    magic_format,
    quadrants,
    run_inputs,
    save,
)

OPERATION = ImageOperation()


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return save(quadrants(400, 200), tmp_path / "base.png")


@pytest.fixture
def mark(tmp_path: Path) -> Path:
    """A magenta square, half transparent on its left half."""
    pixels = np.zeros((50, 50, 4), dtype=np.uint8)
    pixels[:, :, :3] = (255, 0, 255)
    pixels[:, :, 3] = 255
    pixels[:, :25, 3] = 0
    return save(from_array(pixels), tmp_path / "mark.png")


def test_a_watermark_image_is_drawn_where_placed(base: Path, mark: Path, tmp_path: Path) -> None:
    steps = [{"op": "watermark", "position": "north-west", "opacity": 1, "width": 0.25}]
    payload, result = run_inputs([base, mark], tmp_path / "out", steps=steps)
    pixels = as_array(pyvips.Image.new_from_file(str(result.artifacts[0].path)))
    before = as_array(quadrants(400, 200))
    changed = np.any(pixels[:, :, :3] != before, axis=-1)
    margin = 4  # 2% of the shorter side
    # A 100 × 100 mark at (4, 4): its opaque right half is magenta, its left half not drawn.
    assert colour_at(pixels, margin + 75, margin + 50) == (255, 0, 255)
    assert not changed[:, : margin + 50].any()
    assert not changed[margin + 100 :, :].any() and not changed[:, margin + 100 :].any()
    assert pixels.shape == (200, 400, 3) and payload["width"] == 400


def test_a_watermark_with_opacity_blends(base: Path, mark: Path, tmp_path: Path) -> None:
    steps = [{"op": "watermark", "position": "south-east", "opacity": 0.5, "margin": 0}]
    _, result = run_inputs([base, mark], tmp_path / "out", steps=steps)
    pixels = as_array(pyvips.Image.new_from_file(str(result.artifacts[0].path)))
    # Magenta at half over white: (255, 128, 255).
    assert close(colour_at(pixels, 395, 195), (255, 128, 255), 3)


def test_a_missing_watermark_file_is_named(base: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="file 2 is the watermark, but 1 were given"):
        run_inputs([base], tmp_path, steps=[{"op": "watermark"}])


def test_further_files_without_a_use_are_refused(base: Path, mark: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="2 files were given"):
        run_inputs([base, mark], tmp_path)


def test_a_batch_gives_one_output_per_file(tmp_path: Path) -> None:
    paths = [save(quadrants(100 + 20 * i, 80), tmp_path / f"in {i}.png") for i in range(3)]
    payload, result = run_inputs(paths, tmp_path / "out", batch=True, width=50, format="webp")
    assert payload["batch"] is True and payload["files"] == 3
    names = [a.name for a in result.artifacts]
    assert names == ["001-in_0.webp", "002-in_1.webp", "003-in_2.webp"]
    for image, artifact in zip(payload["images"], result.artifacts, strict=True):
        data = artifact.path.read_bytes()
        assert magic_format(data) == "webp" and image["artifact"] == artifact.name
        assert pyvips.Image.new_from_buffer(data, "").width == 50


def test_a_batch_goes_on_past_a_bad_file(tmp_path: Path) -> None:
    good = save(quadrants(60, 40), tmp_path / "good.png")
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    payload, result = run_inputs([good, bad], tmp_path / "out", batch=True)
    assert [image["file"] for image in payload["images"]] == [1]
    [error] = result.errors
    assert error["file"] == 2 and error["code"] == "unsupported-format"
    with pytest.raises(UnsupportedFormat):
        run_inputs([bad, bad], tmp_path / "all-bad", batch=True)


def test_a_batch_takes_no_watermark_image() -> None:
    with pytest.raises(ValueError, match="batch takes no watermark"):
        ImageParams(batch=True, steps=[{"op": "watermark"}])


def test_a_batch_splits_into_parts_and_merges_back(tmp_path: Path) -> None:
    paths = [save(quadrants(100, 50 + 10 * i), tmp_path / f"p{i}.png") for i in range(5)]
    source = InputFile(paths[0], "p0.png", others=tuple(InputFile(p, p.name) for p in paths[1:]))
    params = ImageParams(batch=True, width=40, format="png")
    settings = load_settings(data_dir=tmp_path)
    parts = OPERATION.split(
        operation_context(settings), source, params, SplitPlan(parts=2, min_pages=2)
    )
    assert parts is not None and [p.params for p in parts] == [{"files": "1-3"}, {"files": "4-5"}]
    results = []
    for number, part in enumerate(parts):
        folder = tmp_path / f"part{number}"
        folder.mkdir()
        ctx = operation_context(settings, workdir=folder)
        done = OPERATION.run(ctx, source, params.model_copy(update=part.params))
        artifacts = {a.name: a.path for a in done.artifacts}
        results.append(PartResult(number, part.params, "succeeded", done.payload, artifacts))
    (tmp_path / "merged").mkdir()
    merged = OPERATION.merge(
        operation_context(settings, workdir=tmp_path / "merged"), source, params, results
    )
    assert [image["file"] for image in merged.payload["images"]] == [1, 2, 3, 4, 5]
    heights = [pyvips.Image.new_from_file(str(a.path)).height for a in merged.artifacts]
    assert heights == [20, 24, 28, 32, 36]
    assert not merged.errors


def test_a_single_image_is_never_split(tmp_path: Path) -> None:
    path = save(quadrants(10, 10), tmp_path / "one.png")
    plan = SplitPlan(parts=4, min_pages=2)
    ctx = operation_context(load_settings(data_dir=tmp_path))
    assert OPERATION.split(ctx, InputFile(path), ImageParams(width=5), plan) is None
    assert OPERATION.split(ctx, InputFile(path), ImageParams(batch=True), plan) is None
