"""What the Chromium engine asks the browser for, and the Markdown page it opens."""

from __future__ import annotations

from pathlib import Path

import pytest

from docworker.engines.chromium_capture import PdfOptions, page_for, pdf_params


def test_pdf_parameters_in_inches() -> None:
    params = pdf_params(PdfOptions(width_mm=215.9, height_mm=279.4, margins_mm=(25.4, 0, 12.7, 5)))
    assert params["paperWidth"] == pytest.approx(8.5)
    assert params["paperHeight"] == pytest.approx(11)
    assert (params["marginTop"], params["marginRight"]) == (pytest.approx(1), 0)
    assert (params["marginBottom"], params["marginLeft"]) == (
        pytest.approx(0.5),
        pytest.approx(5 / 25.4),
    )
    assert "displayHeaderFooter" not in params and "pageRanges" not in params


def test_one_template_leaves_the_other_side_empty() -> None:
    params = pdf_params(
        PdfOptions(footer_template="<span class='pageNumber'></span>", page_ranges="1-2")
    )
    assert params["displayHeaderFooter"] is True
    assert params["headerTemplate"] == "<span></span>"  # not Chromium's date and title
    assert params["footerTemplate"] == "<span class='pageNumber'></span>"
    assert params["pageRanges"] == "1-2"


def test_markdown_becomes_a_page_beside_it(tmp_path: Path) -> None:
    source = tmp_path / "notes.md"
    source.write_text(
        "Intro\n\n# Main <title>\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n![x](img/x.png)\n"
    )
    page = page_for(source)
    assert page.parent == tmp_path and page.name == "notes.md.html"
    html = page.read_text()
    assert "<title>Main &lt;title&gt;</title>" in html
    assert "<table>" in html and "<td>1</td>" in html and 'src="img/x.png"' in html
    plain = tmp_path / "page.html"
    plain.write_text("<p>x</p>")
    assert page_for(plain) == plain
