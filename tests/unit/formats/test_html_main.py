"""``content=main``: a web page's article without its site, and ``full`` unchanged.

Real pages saved from installed documentation (tests/fixtures/web, sources in its
README) and the corpus' Wikipedia page: ``main`` drops their navigation, banners,
sidebars and footers and keeps the article's headings, paragraphs, lists, tables,
code, captions and links. ``full`` is checked byte for byte against the output the
reader gave before ``content`` existed.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from corpus_scoring import CORPUS, needs_corpus, parse

from docworker.document import Block, BlockKind, Document
from docworker.formats.base import HtmlContent, ParseContext
from docworker.formats.mail.parser import EmlParser
from docworker.formats.web.epub import EpubParser
from docworker.formats.web.html import HtmlParser
from docworker.render.document import render_markdown

PARSER = HtmlParser()
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "web"


def page(path: Path, content: HtmlContent = "main") -> Document:
    return parse(PARSER, path, "text/html", ParseContext(html_content=content))


def text(doc: Document) -> str:
    return "\n".join(doc.text_of(b) for b in doc.blocks)


def headings(doc: Document) -> list[tuple[int | None, str]]:
    return [(b.level, b.text) for b in doc.blocks if b.kind == BlockKind.HEADING]


def kinds(doc: Document, kind: BlockKind) -> list[Block]:
    return [b for b in doc.blocks if b.kind == kind]


def urls(doc: Document) -> set[str]:
    return {link.url for b in doc.blocks for link in b.links}


def test_a_news_story_loses_its_site_and_keeps_its_article() -> None:
    doc = page(FIXTURES / "news-article.html")
    kept = text(doc)
    for clutter in (
        "We use cookies",
        "Accept all cookies",
        "Skip to content",
        "Opinion",  # the banner's navigation
        "Share",
        "Most read",
        "Get the Courier in your inbox",
        "Related stories",
        "Beavers released on the Camel",
        "Comments (2)",
        "saw one last week by the weir",
        "All rights reserved",
        "Privacy policy",
    ):
        assert clutter not in kept, clutter
    assert headings(doc) == [
        (1, "River otters return to the Tamar"),
        (2, "What the survey found"),
        (2, "Why they came back"),
    ]
    assert kept.count("Otters are breeding again along the upper Tamar") == 1
    assert "we must keep them." in kept
    [table] = kinds(doc, BlockKind.TABLE)
    assert table.table is not None and table.table.grid()[2] == ["2024", "52", "41"]
    captions = [b.text for b in kinds(doc, BlockKind.CAPTION)]
    assert captions == [
        "An otter cub photographed near Gunnislake in February.",
        "Sites with signs of otters",
    ]
    assert len(kinds(doc, BlockKind.LIST_ITEM)) == 3
    assert [b.text for b in kinds(doc, BlockKind.IMAGE)] == ["An otter cub on a mossy bank"]
    assert "https://trust.example.org/wetlands" in urls(doc)
    assert [b.id for b in doc.blocks] == [f"b{n}" for n in range(1, len(doc.blocks) + 1)]


def test_main_reads_what_the_page_declares_about_its_article() -> None:
    metadata = page(FIXTURES / "news-article.html").metadata
    assert metadata.title == "River otters return to the Tamar | The Valley Courier"
    assert metadata.authors == ["Morwenna Hicks"]
    summer = timezone(timedelta(hours=1))
    assert metadata.created == datetime(2024, 5, 14, 7, 30, tzinfo=summer)
    assert metadata.modified == datetime(2024, 5, 15, 9, 12, tzinfo=summer)
    assert metadata.language == "en-GB"
    assert metadata.extra == {
        "description": "Otters are breeding again along the upper Tamar, thirty years after "
        "the last sighting.",
        "site_name": "The Valley Courier",
        "canonical_url": "https://courier.example.org/nature/otters-return-tamar",
    }


def test_the_first_paragraph_stands_for_a_description_the_page_lacks() -> None:
    main = page(FIXTURES / "valgrind-quick-start.html").metadata.extra["description"]
    assert main.startswith("The Valgrind tool suite provides a number of debugging")
    assert main.endswith("…") and len(main) <= 301
    assert "description" not in page(FIXTURES / "valgrind-quick-start.html", "full").metadata.extra


def test_a_visible_byline_names_the_author_when_the_head_does_not(tmp_path: Path) -> None:
    path = tmp_path / "post.html"
    prose = "<p>A paragraph of the post, long enough to be read as its prose, and more.</p>"
    path.write_text(
        '<html lang="fr"><head><title>Post</title></head><body><article><h1>Post</h1>'
        f'<p class="byline">par <span>Jeanne Martin</span></p>{prose * 4}</article></body></html>'
    )
    metadata = page(path).metadata
    assert metadata.authors == ["par Jeanne Martin"]
    assert metadata.language == "fr"
    assert page(path, "full").metadata.authors == []


@pytest.mark.parametrize(
    ("name", "dropped", "kept_headings", "kept"),
    [
        pytest.param(
            "node-punycode.html",
            ["Assertion testing", "Table of contents", "Code repository and issue tracker"],
            [(2, "Punycode#"), (3, "punycode.decode(string)#")],
            ["Punycode is a character encoding scheme defined by RFC 3492"],
            id="nodejs",
        ),
        pytest.param(
            "npm-ci.html",
            ["npm command-line interface", "Table of contents"],
            [(1, "npm-ci @11.19.1"), (3, "Synopsis"), (4, "install-strategy")],
            ["This command is similar to npm install"],
            id="npm",
        ),
        pytest.param(
            "valgrind-quick-start.html",
            ["Next"],
            [(1, "The Valgrind Quick Start Guide"), (2, "1. Introduction")],
            ["Compile your program with -g"],
            id="valgrind-docbook",
        ),
        pytest.param(
            "libxslt-python.html",
            ["Main Menu", "Related links", "API Indexes", "Action against software patents"],
            [],
            ["There is a number of language bindings and wrappers available for libxml2"],
            id="libxslt-layout-tables",
        ),
        pytest.param(
            "libffi-simple-example.html",
            ["Previous: The Basics", "[Index]"],
            [(3, "2.2 Simple Example")],
            ["Here is a trivial example that calls puts a few times.", "ffi_prep_cif"],
            id="libffi-texinfo",
        ),
        pytest.param(
            "python-idle.html",
            ["Previous topic", "Report a Bug", "Show Source", "Theme"],
            [(1, "IDLE¶"), (2, "Menus¶"), (3, "File menu (Shell and Editor)¶")],
            ["Source code: Lib/idlelib/", "(see PEP 434)"],
            id="sphinx",
        ),
        pytest.param(
            "rust-book-comments.html",
            ["Keyboard shortcuts", "Press ← or → to navigate"],
            [(2, "Comments")],
            ["// I'm feeling lucky today"],
            id="mdbook",
        ),
        pytest.param(
            "rustdoc-keyword-match.html",
            ["Skip to main content", "Copy item path"],
            [(1, "Keyword match")],
            ["Control flow based on pattern matching."],
            id="rustdoc",
        ),
    ],
)
def test_documentation_pages_keep_their_article_alone(
    name: str, dropped: list[str], kept_headings: list[tuple[int, str]], kept: list[str]
) -> None:
    full, main = page(FIXTURES / name, "full"), page(FIXTURES / name)
    for clutter in dropped:
        assert clutter in text(full), clutter
        assert clutter not in text(main), clutter
    for heading in kept_headings:
        assert heading in headings(main)
    for words in kept:
        assert words in text(main)
    assert main.metadata.word_count < full.metadata.word_count


def test_code_blocks_keep_their_text_and_lose_their_buttons() -> None:
    doc = page(FIXTURES / "node-punycode.html")
    code = [b.text for b in kinds(doc, BlockKind.CODE)]
    assert "punycode.decode('maana-pta'); // 'mañana'" in code[1]
    assert not any(block.endswith("copy") for block in code)
    assert all(b.language == "js" for b in kinds(doc, BlockKind.CODE))


def test_a_page_of_links_alone_keeps_them(tmp_path: Path) -> None:
    path = tmp_path / "contents.html"
    items = "".join(f'<li><a href="s{n}.html">Section {n} of the manual</a></li>' for n in range(9))
    path.write_text(f"<html><body><h1>Contents</h1><ul>{items}</ul></body></html>")
    doc = page(path)
    assert headings(doc) == [(1, "Contents")]
    assert len(kinds(doc, BlockKind.LIST_ITEM)) == 9


@needs_corpus
def test_the_wikipedia_article_without_the_wiki() -> None:
    doc = page(CORPUS / "web/wiki-duck.html")
    kept = text(doc)
    for clutter in (
        "Jump to content",
        "136 languages",
        "Afrikaans",
        "Toggle the table of contents",
        "Privacy policy",
        "Create account",
        "Retrieved from",
        "Hidden categories",
        "Edit links",
        "[edit]",
        "Categories",
    ):
        assert clutter not in kept, clutter
    # Citation markers and the reference list are clutter, and the headings over them
    # are left out with them.
    assert "[1]" not in kept
    assert (2, "Notes") not in headings(doc) and (2, "References") not in headings(doc)
    assert headings(doc)[:3] == [(1, "Duck"), (2, "Etymology"), (2, "Taxonomy")]
    assert (3, "Feeding") in headings(doc)
    assert "Duck is the common name for numerous species of waterfowl" in kept
    assert any(b.kind == BlockKind.TABLE for b in doc.blocks)
    captions = [b.text for b in kinds(doc, BlockKind.CAPTION)]
    assert any(c.startswith("Pacific black duck displaying") for c in captions)
    assert "/wiki/Anatidae" in urls(doc)
    metadata = doc.metadata
    assert (metadata.title, metadata.language) == ("Duck - Wikipedia", "en")
    assert metadata.created == datetime(2002, 2, 25, 15, 43, 11, tzinfo=UTC)
    assert metadata.extra["canonical_url"] == "https://en.wikipedia.org/wiki/Duck"


@needs_corpus
def test_a_report_keeps_its_endnotes_and_loses_its_site() -> None:
    full, main = (
        page(CORPUS / "web/with-scripts.html", "full"),
        page(CORPUS / "web/with-scripts.html"),
    )
    for clutter in ("Skip to main content", "File Attachments", "Ukraine Project"):
        assert clutter in text(full), clutter
        assert clutter not in text(main), clutter
    assert headings(main) == [(1, "Russian Offensive Campaign Assessment, December 13")]
    assert "Karolina Hird, George Barros" in text(main)
    # The endnotes are paragraphs of links, part of the report.
    assert "[79] https://t.me/m0sc0wcalling/16191" in text(main)


#: sha256 (first 16 hex digits) of each page's Markdown and JSON model as the reader gave
#: them before ``content`` existed: ``full`` must give them still. (wiki-duck's since a
#: list item's further paragraphs became lines of that item rather than items;
#: libxslt-python's since its layout tables are read as the page they lay out; every
#: JSON since blocks have a list start and a note label, the Markdown unchanged.)
BEFORE = {
    "wiki-duck.html": ("00b593ab131952ce", "c6b9993ebe081c5f"),
    "with-scripts.html": ("a3f8c234b31a3408", "1c3f347a05f6c997"),
    "table-rowspan.html": ("896be6dc8f62df8a", "4500c6481a4c2020"),
    "cp1252.html": ("4269ad3f5de6fe02", "1f00dcd137265572"),
    "utf16le.html": ("29ae9bfe32bcb3e5", "37bf181f67164550"),
    "libffi-simple-example.html": ("d51c573374c87419", "5b0bde5e9ea6f772"),
    "libxslt-python.html": ("9f9061106a8adcfa", "6571bf105fd2d6ae"),
    "news-article.html": ("d9408f5d84742316", "af43574721372cde"),
    "node-punycode.html": ("f1cffc3ddb9c747d", "da6ac4450c271a5d"),
    "npm-ci.html": ("ec76f73d5556456c", "a90b1b21a5691e61"),
    "python-idle.html": ("d1b7a01c43994afa", "d761a7039d311515"),
    "rust-book-comments.html": ("65824f3dae64a12e", "a0bf8c1def122b53"),
    "rustdoc-keyword-match.html": ("293e293c9bb31adc", "fb977a58f00b4264"),
    "valgrind-quick-start.html": ("2997534d6f09c033", "376c80e71d5c0a4a"),
}


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@needs_corpus
@pytest.mark.parametrize("name", sorted(BEFORE))
def test_full_is_the_output_of_before(name: str) -> None:
    path = FIXTURES / name if (FIXTURES / name).exists() else CORPUS / "web" / name
    default = parse(PARSER, path, "text/html")
    full = page(path, "full")
    assert full == default
    assert (_digest(render_markdown(full)), _digest(full.model_dump_json())) == BEFORE[name]


@needs_corpus
def test_an_e_mail_html_body_goes_through_main_too() -> None:
    path = CORPUS / "office/email-html-inline-image.eml"
    main = parse(EmlParser(), path, "message/rfc822", ParseContext(html_content="main"))
    full = parse(EmlParser(), path, "message/rfc822")
    assert main.blocks[0].text == "This is the subject"
    assert text(main) == text(full)


@needs_corpus
def test_epub_chapters_go_through_main_too() -> None:
    path = CORPUS / "office/poetry.epub"
    main = parse(EpubParser(), path, "application/epub+zip", ParseContext(html_content="main"))
    full = parse(EpubParser(), path, "application/epub+zip")
    # A book's chapters have no site around them: main keeps them whole.
    assert text(main) == text(full)
    assert {b.page for b in main.blocks} == {b.page for b in full.blocks}


PROSE = (
    "<p>Long enough to count as prose, with a comma, and another, for the scoring to see "
    "it as a paragraph of the article rather than a label.</p>"
)


def test_a_form_around_the_whole_page_is_no_furniture(tmp_path: Path) -> None:
    # ASP.NET writes every page inside one <form>.
    path = tmp_path / "aspx.html"
    menu = "".join(f'<li><a href="/p{n}">Page {n}</a></li>' for n in range(6))
    path.write_text(
        f'<html><body><form id="aspnetForm"><div class="menu"><ul>{menu}</ul></div>'
        f'<div id="story">{PROSE * 5}</div></form></body></html>'
    )
    doc = page(path)
    assert text(doc).count("Long enough to count as prose") == 5
    assert "Page 3" not in text(doc)


def test_headings_over_links_are_content(tmp_path: Path) -> None:
    # An API page lists the implementations of a trait: headings of links, no prose.
    path = tmp_path / "trait.html"
    impls = "".join(
        f'<section class="impl"><h3>impl Trait for <a href="t{n}.html">Type{n}</a></h3></section>'
        for n in range(5)
    )
    path.write_text(
        f'<html><body><main><h1>Trait</h1>{PROSE}<h2>Implementors</h2><div id="list">{impls}'
        "</div></main></body></html>"
    )
    assert (3, "impl Trait for Type4") in headings(page(path))


def test_a_page_of_headings_alone_keeps_them(tmp_path: Path) -> None:
    path = tmp_path / "diagrams.html"
    path.write_text("<html><body><h1>Forward</h1><h1>Column name</h1></body></html>")
    assert headings(page(path)) == [(1, "Forward"), (1, "Column name")]


def test_dates_as_some_sites_write_them(tmp_path: Path) -> None:
    path = tmp_path / "dated.html"
    path.write_text(
        '<html><head><meta name="date" content="Tue, 14 May 2024 07:30:00 GMT">'
        '<meta property="og:locale" content="en_GB"></head>'
        f"<body><article>{PROSE * 2}</article></body></html>"
    )
    metadata = page(path).metadata
    assert metadata.created == datetime(2024, 5, 14, 7, 30, tzinfo=UTC)
    assert metadata.language == "en-GB"


def test_a_newsletter_laid_out_in_tables_reads_as_its_article(tmp_path: Path) -> None:
    path = tmp_path / "digest.eml"
    path.write_text(
        "From: News <news@example.com>\nTo: you@example.com\nSubject: Weekly digest\n"
        "MIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n"
        '<html><body><table width="100%"><tr><td><table width="600"><tr>'
        '<td><img src="logo.png" alt="Example News"></td>'
        '<td><a href="https://ex.com/view">View in browser</a></td></tr>'
        '<tr><td colspan="2"><h1>This week</h1>'
        "<p>Hello reader, here is what happened this week at Example, in short.</p>"
        "<p>We shipped the new search, which is faster, finds more and understands typos.</p>"
        "<p>Our team grew: welcome to Ana, Ben and Chloé, who join the support desk.</p></td></tr>"
        '<tr><td colspan="2" class="footer"><p>You receive this because you subscribed. '
        '<a href="https://ex.com/u">Unsubscribe</a></p></td></tr>'
        "</table></td></tr></table></body></html>\n"
    )
    full = parse(EmlParser(), path, "message/rfc822")
    main = parse(EmlParser(), path, "message/rfc822", ParseContext(html_content="main"))
    # Read whole, the layout tables give the page they lay out, links and footer too;
    # its article alone is headings and paragraphs.
    assert not kinds(full, BlockKind.TABLE)
    assert headings(full) == [(1, "Weekly digest"), (1, "This week")]
    assert "Unsubscribe" in text(full)
    assert headings(main) == [(1, "Weekly digest"), (1, "This week")]
    assert len(kinds(main, BlockKind.PARAGRAPH)) == 4  # the header lines and three
    for gone in ("View in browser", "Unsubscribe"):
        assert gone not in text(main)


def test_a_main_element_no_reader_sees_is_not_the_article(tmp_path: Path) -> None:
    # Found by mutating a saved page: a <main> inside <noscript> was chosen, unmeasured.
    path = tmp_path / "hidden-main.html"
    path.write_text(
        f"<html><body><noscript><main><p>Enable scripts.</p></main></noscript>"
        f'<div id="story">{PROSE * 3}</div><template><article>{PROSE}</article></template>'
        "</body></html>"
    )
    assert text(page(path)).count("Long enough to count as prose") == 3


def test_text_the_tree_would_refuse_to_be_given_back_is_kept(tmp_path: Path) -> None:
    # Found by mutating a saved page: libxml2 keeps a form feed in text, lxml refuses to
    # set one, and cutting the clutter once moved the text after it by setting it.
    path = tmp_path / "form-feed.html"
    path.write_text(
        f'<html><body><div id="story">{PROSE * 3}<nav><a href="/">Home</a></nav>'
        "after\x0cthe nav<pre>code<template><button>copy</button></template></pre>"
        "</div></body></html>"
    )
    kept = text(page(path))
    assert "after the nav" in kept
    assert "Home" not in kept
