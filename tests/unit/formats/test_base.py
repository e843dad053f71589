"""Page selections and the parse context."""

from __future__ import annotations

import pytest

from docworker.errors import InvalidParameter, LimitExceeded
from docworker.formats.base import PageSelection, ParseContext, ParseLimits


@pytest.mark.parametrize(
    ("spec", "pages"),
    [
        ("1", [1]),
        ("1-3", [1, 2, 3]),
        ("2,4-5", [2, 4, 5]),
        ("9-", [9, 10]),
        ("-2", [1, 2]),
        (" 3 - 4 , 1 ", [1, 3, 4]),
        ("1-3,2-4", [1, 2, 3, 4]),
        ("11-20", []),
    ],
)
def test_page_selection(spec: str, pages: list[int]) -> None:
    assert PageSelection.parse(spec).pages(10) == pages


@pytest.mark.parametrize("spec", ["", "a", "3-1", "0", "1,,2", "-", "1-2-3"])
def test_bad_page_selection(spec: str) -> None:
    with pytest.raises(InvalidParameter):
        PageSelection.parse(spec)


def test_page_limit_applies_to_the_selected_pages() -> None:
    ctx = ParseContext(limits=ParseLimits(max_pages=3))
    with pytest.raises(LimitExceeded):
        ctx.select_pages(4)
    ctx = ParseContext(pages=PageSelection.parse("2-4"), limits=ParseLimits(max_pages=3))
    assert ctx.select_pages(100) == [2, 3, 4]


def test_each_page_reports_progress_and_stops_when_cancelled() -> None:
    seen: list[float] = []
    stop_after = 2
    ctx = ParseContext(
        progress=lambda f, _m: seen.append(f), cancelled=lambda: len(seen) >= stop_after
    )
    assert list(ctx.each_page([1, 2, 3, 4], 4)) == [1, 2]
    assert seen == [0.25, 0.5]
