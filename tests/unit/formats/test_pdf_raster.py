"""Scales and bitmap sizes of PDF page rendering: a fitted page lands on its box exactly."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from docworker.formats.pdf.raster import NO_CROP, bitmap_size, fit_scale

SIDES = st.floats(min_value=1.0, max_value=14_400.0, allow_nan=False)
BOUNDS = st.integers(min_value=1, max_value=20_000)


@given(SIDES, SIDES, BOUNDS, st.none() | BOUNDS)
def test_a_fitted_page_fills_its_bounding_side_and_stays_inside(
    width: float, height: float, max_width: int, max_height: int | None
) -> None:
    scale = fit_scale(width, height, max_width, max_height)
    across, down = bitmap_size(width, height, NO_CROP, scale)
    assert across <= max_width and (max_height is None or down <= max_height)
    # The side that bounds the page is exactly its bound, give or take the page's own
    # rounding where the other side is under one pixel.
    assert across == max_width or (max_height is not None and down == max_height) or down <= 1


def test_a_page_at_a_resolution_is_its_size_in_inches_times_it() -> None:
    # An A4 page (595.276 × 841.89 points) at 150 dpi.
    assert bitmap_size(595.276, 841.89, NO_CROP, 150 / 72) == (1241, 1754)
    assert bitmap_size(612, 792, NO_CROP, 2.0) == (1224, 1584)


def test_cuts_are_taken_off_whole_pixels() -> None:
    assert bitmap_size(100, 100, (10.2, 0, 0, 0), 1.0) == (89, 100)


def test_fitting_needs_a_bound() -> None:
    with pytest.raises(ValueError, match="width or a height"):
        fit_scale(100, 100, None, None)
    assert math.isclose(fit_scale(100, 50, None, 25), 0.5)
