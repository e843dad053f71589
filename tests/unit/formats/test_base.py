"""Page selections and the parse context."""

from __future__ import annotations

from pathlib import Path

import pikepdf
import pytest

from docworker.errors import InvalidParameter, LimitExceeded
from docworker.formats.base import PageSelection, ParseContext, ParseLimits
from docworker.formats.registry import parse_path


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


def test_a_selection_of_no_page_of_the_document_is_refused(tmp_path: Path) -> None:
    # Before, extract and ocr of '5' on a 2-page PDF answered an empty text, as of a scan.
    ctx = ParseContext(pages=PageSelection.parse("5,7-"))
    with pytest.raises(InvalidParameter, match="'5,7-' selects none of its 2 pages"):
        ctx.select_pages(2)
    assert ParseContext(pages=PageSelection.parse("2-9")).select_pages(3) == [2, 3]
    pdf = tmp_path / "two.pdf"
    with pikepdf.new() as doc:
        doc.add_blank_page()
        doc.add_blank_page()
        doc.save(pdf)
    with pytest.raises(InvalidParameter) as refused:
        parse_path(pdf, ParseContext(pages=PageSelection.parse("3")))
    assert refused.value.fields["parameter"] == "pages"
