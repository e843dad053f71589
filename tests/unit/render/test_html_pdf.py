"""HTML and Markdown → PDF with WeasyPrint: page set-up, templates, and what may be fetched."""

from __future__ import annotations

import io
from pathlib import Path

import pikepdf
import pypdfium2
import pytest
from PIL import Image

from bench.scoring import corpus_root, score
from docworker.formats.base import PageSelection
from docworker.render.html_pdf import (
    PageSetup,
    check_margin,
    check_page_size,
    html_to_pdf,
    markdown_to_html,
)
from docworker.url_policy import UrlPolicy
from tests.listener import Listener

CORPUS = corpus_root()
A4 = (595.3, 841.9)
LETTER = (612.0, 792.0)


def _sizes(path: Path) -> list[tuple[float, float]]:
    with pypdfium2.PdfDocument(str(path)) as pdf:
        return [tuple(round(v, 1) for v in pdf[i].get_size()) for i in range(len(pdf))]  # type: ignore[misc]


def _texts(path: Path) -> list[str]:
    with pypdfium2.PdfDocument(str(path)) as pdf:
        texts = []
        for index in range(len(pdf)):
            page = pdf[index]
            textpage = page.get_textpage()
            texts.append(textpage.get_text_range())
            textpage.close()
            page.close()
        return texts


def _image_count(path: Path) -> int:
    """Distinct images drawn in the PDF (one shared by every page counts once)."""
    with pikepdf.open(path) as pdf:
        return len({image.objgen for page in pdf.pages for image in page.get_images().values()})


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(buffer, "PNG")
    return buffer.getvalue()


PARAGRAPHS = "".join(f"<p>Paragraph {n} of the test page.</p>" for n in range(120))


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (PageSetup(), A4),
        (PageSetup(size="letter"), LETTER),
        (PageSetup(size="A4", landscape=True), (A4[1], A4[0])),
        (PageSetup(size="100mm 150mm"), (283.5, 425.2)),
    ],
)
def test_page_size_and_orientation(tmp_path: Path, setup: PageSetup, expected: tuple) -> None:
    target = tmp_path / "out.pdf"
    made = html_to_pdf(f"<body>{PARAGRAPHS}</body>", tmp_path, setup, UrlPolicy(), target)
    sizes = _sizes(target)
    assert made.pages == len(sizes) > 1
    assert all(size == pytest.approx(expected, abs=0.6) for size in sizes)


def test_margins_move_the_text(tmp_path: Path) -> None:
    wide, narrow = tmp_path / "wide.pdf", tmp_path / "narrow.pdf"
    html = f"<body>{PARAGRAPHS}</body>"
    html_to_pdf(html, tmp_path, PageSetup(margin_top="5cm", margin_left="5cm"), UrlPolicy(), wide)
    html_to_pdf(html, tmp_path, PageSetup(margin_top="0", margin_left="0"), UrlPolicy(), narrow)
    assert len(_sizes(wide)) > len(_sizes(narrow))


def test_header_and_footer_show_page_numbers_and_title(tmp_path: Path) -> None:
    target = tmp_path / "out.pdf"
    setup = PageSetup(
        header_html='<div><span class="title"></span></div>',
        footer_html='Page <span class="pageNumber"></span> of <span class="totalPages"></span>',
    )
    html = f"<html><head><title>Quarterly Report</title></head><body>{PARAGRAPHS}</body></html>"
    made = html_to_pdf(html, tmp_path, setup, UrlPolicy(), target)
    texts = _texts(target)
    assert made.pages == len(texts) >= 3
    for number, text in enumerate(texts, start=1):
        assert f"Page {number} of {made.pages}" in text
        assert "Quarterly Report" in text


def test_request_wins_over_the_page_own_style(tmp_path: Path) -> None:
    own = "<style>@page { size: A5; } p { font-size: 8pt; }</style>"
    target = tmp_path / "out.pdf"
    setup = PageSetup(size="letter", css="p { font-size: 30pt; }")
    made = html_to_pdf(own + PARAGRAPHS, tmp_path, setup, UrlPolicy(), target)
    assert set(_sizes(target)) == {LETTER}
    small = tmp_path / "small.pdf"
    html_to_pdf(own + PARAGRAPHS, tmp_path, PageSetup(size="letter"), UrlPolicy(), small)
    assert made.pages > 2 * len(_sizes(small))


def test_page_selection_keeps_those_pages(tmp_path: Path) -> None:
    target = tmp_path / "out.pdf"
    setup = PageSetup(footer_html='<span class="pageNumber"></span>')
    html = f"<body>{PARAGRAPHS}</body>"
    made = html_to_pdf(html, tmp_path, setup, UrlPolicy(), target, pages=PageSelection.parse("2-3"))
    assert made.pages == 2
    assert [text.split()[-1] for text in _texts(target)] == ["2", "3"]


def test_relative_assets_inside_the_folder_are_used(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "img").mkdir(parents=True)
    (site / "img" / "logo.png").write_bytes(_png(120, 60))
    (site / "style.css").write_text("p { font-size: 40pt; }")
    target = tmp_path / "out.pdf"
    html = '<link rel="stylesheet" href="style.css"><img src="img/logo.png">' + PARAGRAPHS
    made = html_to_pdf(html, site, PageSetup(), UrlPolicy(), target)
    assert made.warnings == []
    assert _image_count(target) == 1
    small = tmp_path / "small.pdf"
    html_to_pdf(PARAGRAPHS, site, PageSetup(), UrlPolicy(), small)
    assert made.pages > len(_sizes(small))  # the style sheet's large type was applied


def test_remote_and_outside_resources_are_refused_and_never_reached(
    tmp_path: Path, listener: Listener
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    secret = tmp_path / "secret.png"
    secret.write_bytes(_png(30, 30))
    html = (
        f'<img src="{listener.url}/tracker.png">'
        f'<link rel="stylesheet" href="{listener.url}/style.css">'
        f'<img src="{secret.as_uri()}"><img src="../secret.png">'
        '<img src="ftp://example.com/a.png"><p>Body text</p>'
    )
    target = tmp_path / "out.pdf"
    # Even allow-listed, a loopback address is never fetched.
    made = html_to_pdf(html, site, PageSetup(), UrlPolicy(allow=("127.0.0.1",)), target)
    assert listener.connections == []
    assert _image_count(target) == 0
    messages = " ".join(w.message for w in made.warnings)
    assert "tracker.png" in messages and "non-public address" in messages
    assert "secret.png" in messages and "outside the uploaded files" in messages
    assert "ftp" in messages
    assert {w.code for w in made.warnings} == {"resource-refused"}


def test_a_symlink_in_the_folder_is_not_followed(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (tmp_path / "secret.png").write_bytes(_png(30, 30))
    (site / "link.png").symlink_to(tmp_path / "secret.png")
    target = tmp_path / "out.pdf"
    made = html_to_pdf('<img src="link.png"><p>x</p>', site, PageSetup(), UrlPolicy(), target)
    assert _image_count(target) == 0
    assert "link.png" in made.warnings[0].message


def test_markdown_page_keeps_the_text(tmp_path: Path) -> None:
    source = CORPUS / "web" / "wiki.md"
    if not source.is_file():
        pytest.skip(f"corpus not found at {CORPUS}")
    text = source.read_text()
    target = tmp_path / "out.pdf"
    html = markdown_to_html(text)
    assert "<h1>" in html
    html_to_pdf(html, tmp_path, PageSetup(), UrlPolicy(), target)
    assert score("\n".join(_texts(target)), "txt", text, "md") > 0.9


def test_markdown_tables_and_front_matter() -> None:
    html = markdown_to_html("---\ntitle: Prices\n---\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    assert "<title>Prices</title>" in html
    assert "<table>" in html and "<td>2</td>" in html
    assert "title:" not in html


@pytest.mark.parametrize(
    ("value", "css"),
    [
        ("A4", "A4"),
        ("letter", "letter"),
        ("8.5in x 11in", "8.5in 11in"),
        ("210mm 297mm", "210mm 297mm"),
    ],
)
def test_page_sizes_accepted(value: str, css: str) -> None:
    assert check_page_size(value) == css


@pytest.mark.parametrize("value", ["A9", "10 x 20", "210mm", "red"])
def test_page_sizes_refused(value: str) -> None:
    with pytest.raises(ValueError, match="not a page size"):
        check_page_size(value)


def test_margins_need_a_unit() -> None:
    assert check_margin("1.5cm") == "1.5cm"
    assert check_margin("0") == "0"
    with pytest.raises(ValueError, match="unit"):
        check_margin("12")
