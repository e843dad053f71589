"""HtmlParser: encodings, what is dropped, structure, tables with spans, metadata, corpus scores."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest
from corpus_scoring import CORPUS, corpus_f1, needs_corpus, parse

from docworker.document import BlockKind, Document, Link
from docworker.errors import LimitExceeded
from docworker.formats.base import ParseContext, ParseLimits
from docworker.formats.web.html import HtmlParser, declared_charset

PARSER = HtmlParser()


def parse_html(tmp_path: Path, markup: str | bytes, ctx: ParseContext | None = None) -> Document:
    path = tmp_path / "page.html"
    path.write_bytes(markup.encode() if isinstance(markup, str) else markup)
    return parse(PARSER, path, "text/html", ctx)


def texts(doc: Document, kind: BlockKind | None = None) -> list[str]:
    return [b.text for b in doc.blocks if kind is None or b.kind == kind]


@needs_corpus
def test_wikipedia_page_matches_its_ground_truth() -> None:
    # Measured 0.997 (links written inline); the best peer scored 0.983.
    assert corpus_f1(PARSER, "web/wiki-duck.html", "text/html") >= 0.99


@needs_corpus
def test_wikipedia_page_structure_and_metadata() -> None:
    doc = parse(PARSER, CORPUS / "web/wiki-duck.html", "text/html")
    headings = [(b.level, b.text) for b in doc.blocks if b.kind == BlockKind.HEADING]
    assert (1, "Duck") in headings
    assert (2, "Etymology") in headings
    assert (3, "Feeding") in headings
    assert doc.metadata.title == "Duck - Wikipedia"
    assert doc.metadata.language == "en"
    assert doc.metadata.producer is not None and doc.metadata.producer.startswith("MediaWiki")
    # The page marks its main content, so the site banner and footer are dropped ...
    all_text = "\n".join(texts(doc))
    assert "Privacy policy" not in all_text
    assert "Create account" not in all_text
    # ... while the article, its tables and its reference list stay.
    assert any(b.kind == BlockKind.TABLE for b in doc.blocks)
    assert any(b.kind == BlockKind.LIST_ITEM and b.ordered for b in doc.blocks)
    assert any(link.url == "/wiki/Anatidae" for b in doc.blocks for link in b.links)


@needs_corpus
def test_nested_tables_are_flattened_into_their_cell() -> None:
    doc = parse(PARSER, CORPUS / "web/table-rowspan.html", "text/html")
    assert [b.kind for b in doc.blocks] == [
        BlockKind.HEADING,
        BlockKind.PARAGRAPH,
        BlockKind.TABLE,
        BlockKind.PARAGRAPH,
    ]
    table = doc.blocks[2].table
    assert table is not None
    assert (table.n_rows, table.n_cols) == (2, 2)
    assert table.grid()[1] == ["A1 B1 C1 D1 I II III IV V E1 E2 E3 E4 VII VIII F1", "2..."]
    assert doc.blocks[3].text == "After table"
    # Measured 1.000, as the best peer.
    assert corpus_f1(PARSER, "web/table-rowspan.html", "text/html") == pytest.approx(1.0)


@needs_corpus
def test_windows_1252_page_without_a_declaration() -> None:
    doc = parse(PARSER, CORPUS / "web/cp1252.html", "text/html")
    assert doc.metadata.encoding == "cp1252"
    assert texts(doc)[:3] == [
        "My First Heading",
        "My first paragraph.",
        "Some text with CP1252-specific characters:",
    ]
    [code] = [b for b in doc.blocks if b.kind == BlockKind.CODE]
    assert 'El niño comió paella con ñoquis. La señora dijo: "¡Qué rico!"' in code.text
    assert code.text.count("\n") == 5


@needs_corpus
def test_utf16_page_with_a_bom_and_a_bogus_declaration() -> None:
    doc = parse(PARSER, CORPUS / "web/utf16le.html", "text/html")
    assert texts(doc) == ["This is a sample text"]
    assert (doc.metadata.title, doc.metadata.encoding) == ("Title", "utf-16-le")


@needs_corpus
def test_scripts_and_styles_are_not_text() -> None:
    doc = parse(PARSER, CORPUS / "web/with-scripts.html", "text/html")
    all_text = "\n".join(texts(doc))
    assert "Russian Offensive Campaign Assessment, December 13" in all_text
    assert "Belarusian forces remain unlikely to attack Ukraine" in all_text
    for code in ("function(", "googletag", "window.", "{display"):
        assert code not in all_text
    assert doc.metadata.language == "en"
    assert doc.metadata.keywords.count("ISW") == 1
    assert doc.metadata.extra["description"].startswith("Belarusian forces remain unlikely")


def test_a_meta_charset_is_honoured(tmp_path: Path) -> None:
    page = '<html><head><meta charset="windows-1251"></head><body><p>Привет, мир</p></body></html>'
    doc = parse_html(tmp_path, page.encode("cp1251"))
    assert (doc.metadata.encoding, texts(doc)) == ("cp1251", ["Привет, мир"])


def test_an_http_equiv_charset_is_honoured(tmp_path: Path) -> None:
    page = '<meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-7"><p>Καλημέρα</p>'
    doc = parse_html(tmp_path, page.encode("iso-8859-7"))
    assert (doc.metadata.encoding, texts(doc)) == ("iso8859-7", ["Καλημέρα"])


def test_a_bom_wins_over_the_declared_charset(tmp_path: Path) -> None:
    page = '<meta charset="iso-8859-1"><p>Grüße €</p>'
    doc = parse_html(tmp_path, codecs.BOM_UTF8 + page.encode())
    assert (doc.metadata.encoding, texts(doc)) == ("utf-8", ["Grüße €"])


def test_an_xhtml_declaration_is_read_and_removed(tmp_path: Path) -> None:
    page = (
        '<?xml version="1.0" encoding="ISO-8859-15"?>\n<html><body><p>Prix : 5 €</p></body></html>'
    )
    doc = parse_html(tmp_path, page.encode("iso-8859-15"))
    assert (doc.metadata.encoding, texts(doc)) == ("iso8859-15", ["Prix : 5 €"])


def test_an_internal_subset_of_the_doctype_is_not_text(tmp_path: Path) -> None:
    page = (
        '<?xml version="1.0"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.1//EN" "x.dtd" [\n'
        '<!ENTITY who "the ]> world"><!-- a ] here --><!ATTLIST p class CDATA "x">\n]>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>T</title></head>'
        "<body><p>Hello</p></body></html>"
    )
    doc = parse_html(tmp_path, page)
    assert (doc.metadata.title, texts(doc)) == ("T", ["Hello"])


def test_an_internal_subset_never_closed_costs_one_pass(tmp_path: Path) -> None:
    doc = parse_html(tmp_path, "<!DOCTYPE html [" + "'" * 1_000_001 + "<p>x</p>")
    assert texts(doc)


def test_declared_charset_reads_only_the_first_kilobyte() -> None:
    assert declared_charset(b"<meta charset='koi8-r'>") == "koi8-r"
    assert declared_charset(b" " * 1100 + b"<meta charset='koi8-r'>") is None


def test_block_structure(tmp_path: Path) -> None:
    page = """<body>
      <h2>Sub <em>title</em></h2>
      <p>Some   <b>bold</b>
         text<br>next line <a href="https://x.org">a link</a>.</p>
      <ul><li>one<ul><li>one.one</li></ul></li><li><p>two</p></li></ul>
      <ol><li>first</li></ol>
      <pre><code class="language-python">def f():
    return 1
</code></pre>
      <blockquote><p>Quoted</p></blockquote>
      <figure><img src="a.png" alt="A duck"><figcaption>Fig. 1 A duck</figcaption></figure>
      <div hidden>secret</div><p style="color: red; DISPLAY : none">unseen</p>
      <template><p>later</p></template><noscript>enable js</noscript>
      <svg><text>drawn</text></svg>
    </body>"""
    doc = parse_html(tmp_path, page)
    assert [(b.kind.value, b.level, b.ordered, b.text) for b in doc.blocks] == [
        ("heading", 2, None, "Sub title"),
        ("paragraph", None, None, "Some bold text\nnext line a link."),
        ("list_item", 1, False, "one"),
        ("list_item", 2, False, "one.one"),
        ("list_item", 1, False, "two"),
        ("list_item", 1, True, "first"),
        ("code", None, None, "def f():\n    return 1"),
        ("quote", None, None, "Quoted"),
        ("image", None, None, "A duck"),
        ("caption", None, None, "Fig. 1 A duck"),
    ]
    assert doc.blocks[1].links == [Link(text="a link", url="https://x.org")]
    assert doc.blocks[6].language == "python"
    assert doc.blocks[8].links == [Link(text="A duck", url="a.png")]


def test_links_and_line_breaks_in_a_paragraph(tmp_path: Path) -> None:
    page = """<p><a href="/a">plain  <b>bold</b>
      text</a>, <a href="javascript:go()">run</a>, <a>no target</a> and<br>  <br>a
      second<br>line</p>"""
    doc = parse_html(tmp_path, page)
    assert texts(doc) == ["plain bold text, run, no target and\na second\nline"]
    assert doc.blocks[0].links == [Link(text="plain bold text", url="/a")]


def test_layout_tables_read_as_the_page_they_lay_out(tmp_path: Path) -> None:
    page = (
        '<table width="100%"><tr><td><table width="600">'
        '<tr><td><img src="logo.png" alt="Logo"></td></tr>'
        "<tr><td><h1>News</h1><p>Dear reader,</p><ul><li>First</li><li>Second</li></ul></td></tr>"
        "<tr><td><h2>Left</h2><p>Left text.</p></td><td><h2>Right</h2></td></tr>"
        "</table></td></tr></table>"
        '<table role="presentation"><tr><td>Framed</td><td>words</td></tr></table>'
        "<table><tr><th>Name</th><th>Notes</th></tr><tr><td>A</td><td><ul><li>kept</li></ul></td>"
        "</tr></table><table><tr><td>One cell of data</td></tr></table>"
    )
    doc = parse_html(tmp_path, page)
    assert [(b.kind, b.text) for b in doc.blocks] == [
        (BlockKind.IMAGE, "Logo"),
        (BlockKind.HEADING, "News"),
        (BlockKind.PARAGRAPH, "Dear reader,"),
        (BlockKind.LIST_ITEM, "First"),
        (BlockKind.LIST_ITEM, "Second"),
        (BlockKind.HEADING, "Left"),
        (BlockKind.PARAGRAPH, "Left text."),
        (BlockKind.HEADING, "Right"),
        (BlockKind.PARAGRAPH, "Framed"),
        (BlockKind.PARAGRAPH, "words"),
        (BlockKind.TABLE, ""),
        (BlockKind.TABLE, ""),
    ]
    assert doc.blocks[-2].table is not None
    assert doc.blocks[-2].table.grid() == [["Name", "Notes"], ["A", "kept"]]


def test_paragraphs_of_one_list_item_are_one_item(tmp_path: Path) -> None:
    page = (
        "<ol><li><p>One</p></li><li><p>Two</p><p>Two, <a href='/more'>more</a></p></li>"
        "<li>Three<ul><li><p>Nested</p></li></ul></li>"
        "<li>Four<table><tr><td>cell</td></tr></table>after the table</li></ol>"
    )
    doc = parse_html(tmp_path, page)
    assert [(b.kind, b.level, b.text) for b in doc.blocks] == [
        (BlockKind.LIST_ITEM, 1, "One"),
        (BlockKind.LIST_ITEM, 1, "Two\nTwo, more"),
        (BlockKind.LIST_ITEM, 1, "Three"),
        (BlockKind.LIST_ITEM, 2, "Nested"),
        (BlockKind.LIST_ITEM, 1, "Four"),
        (BlockKind.TABLE, None, ""),
        (BlockKind.LIST_ITEM, 1, "after the table"),
    ]
    assert doc.blocks[1].links == [Link(text="more", url="/more")]


def test_soft_hyphens_do_not_split_words(tmp_path: Path) -> None:
    page = (
        "<p>fi&shy;nance, ad&#173;dress, in&#xAD;come, data\u00adbase</p>"
        '<table><tr><td>con&shy;tract</td></tr></table><p><a href="/x">hy&shy;per</a></p>'
    )
    doc = parse_html(tmp_path, page)
    assert texts(doc) == ["finance, address, income, database", "", "hyper"]
    assert doc.blocks[1].table is not None
    assert doc.blocks[1].table.grid() == [["contract"]]
    assert doc.blocks[2].links == [Link(text="hyper", url="/x")]


def test_table_spans_and_header_cells(tmp_path: Path) -> None:
    page = """<table><caption>Results</caption>
      <thead><tr><th rowspan="2">Name</th><th colspan="2">Score</th></tr>
             <tr><th>A</th><th>B</th></tr></thead>
      <tbody><tr><td>x</td><td colspan="2">both</td></tr>
             <tr><td rowspan="9">y</td><td>1</td><td>2</td></tr></tbody></table>"""
    doc = parse_html(tmp_path, page)
    assert [b.kind for b in doc.blocks] == [BlockKind.CAPTION, BlockKind.TABLE]
    table = doc.blocks[1].table
    assert table is not None
    assert table.grid() == [
        ["Name", "Score", "Score"],
        ["Name", "A", "B"],
        ["x", "both", "both"],
        ["y", "1", "2"],
    ]
    assert table.header_rows() == 2
    # A rowspan past the last row is cut to the table.
    assert [c.row_span for c in table.cells if c.text == "y"] == [1]


def test_huge_spans_count_against_the_cell_limit(tmp_path: Path) -> None:
    page = '<table><tr><td colspan="1000">a</td></tr><tr><td>b</td></tr></table>'
    with pytest.raises(LimitExceeded):
        parse_html(tmp_path, page, ParseContext(limits=ParseLimits(max_cells=500)))


def test_a_wide_row_over_many_narrow_ones_counts_as_its_grid(tmp_path: Path) -> None:
    # 39 slots taken, but laid out as 20 rows of 20 columns: 12 KB of such a page made a
    # grid of 100 million cells, read for seconds and then cut from the text.
    page = "<table><tr>" + '<td colspan="20">a</td>' + "</tr>" + "<tr><td>b</td></tr>" * 19
    with pytest.raises(LimitExceeded) as refused:
        parse_html(tmp_path, page + "</table>", ParseContext(limits=ParseLimits(max_cells=300)))
    assert refused.value.fields["value"] == 400
    table = parse_html(tmp_path, page + "</table>", ParseContext(limits=ParseLimits(max_cells=400)))
    assert [(b.table.n_rows, b.table.n_cols) for b in table.blocks if b.table] == [(20, 20)]


def test_without_a_main_element_the_whole_body_is_kept(tmp_path: Path) -> None:
    page = "<header>Site name</header><p>Body text</p><footer>Contact us</footer>"
    assert texts(parse_html(tmp_path, page)) == ["Site name", "Body text", "Contact us"]


def test_with_a_main_element_only_the_page_banner_and_footer_go(tmp_path: Path) -> None:
    page = """<header>Site name</header><nav><a href="/">Home</a></nav>
      <main><article><header>Article header</header><p>Body text</p>
      <footer>Article footer</footer></article></main>
      <div role="contentinfo">Legal</div><footer>Contact us</footer>"""
    assert texts(parse_html(tmp_path, page)) == [
        "Home",
        "Article header",
        "Body text",
        "Article footer",
    ]


def test_page_metadata(tmp_path: Path) -> None:
    page = """<html lang="de"><head><title> The  title </title>
      <meta name="author" content="Jane Roe"><meta name="keywords" content="a, b,, a">
      <meta name="description" content="What it is."><meta name="generator" content="Hugo">
      </head><body><p>x</p></body></html>"""
    meta = parse_html(tmp_path, page).metadata
    assert (meta.title, meta.language, meta.authors, meta.keywords, meta.producer) == (
        "The title",
        "de",
        ["Jane Roe"],
        ["a", "b"],
        "Hugo",
    )
    assert meta.extra["description"] == "What it is."


@pytest.mark.parametrize("page", [b"", b"   \n", b"<html><head><title>t</title></head></html>"])
def test_a_page_without_text_is_empty_with_a_warning(tmp_path: Path, page: bytes) -> None:
    doc = parse_html(tmp_path, page)
    assert doc.blocks == []
    assert [w.code for w in doc.warnings] == ["empty"]


def test_broken_markup_is_repaired_not_refused(tmp_path: Path) -> None:
    doc = parse_html(tmp_path, "<p>one<p>two<div><b>bold</div><li>stray item")
    assert texts(doc) == ["one", "two", "bold", "stray item"]


@pytest.mark.parametrize("depth", [80, 400])
def test_deep_nesting_does_not_exhaust_the_stack(tmp_path: Path, depth: int) -> None:
    page = "<body>" + "<div><ul><li>" * depth + "deep" + "</li></ul></div>" * depth + "</body>"
    doc = parse_html(tmp_path, page)
    assert texts(doc) == ["deep"]


@pytest.mark.parametrize("depth", [300, 100_000])
def test_a_page_nested_past_libxml2s_limit_keeps_all_its_text(tmp_path: Path, depth: int) -> None:
    # libxml2 stops at 256 levels and drops the rest of the page: it is read again
    # without that limit, its elements nested no deeper than the walk reads them.
    deep = "<div><span>" * depth + "deep words" + "</span></div>" * depth
    page = f"<html><head><title>Deep</title></head><body><h1>Top</h1>{deep}<p>after</p></body>"
    doc = parse_html(tmp_path, page + "</html>")
    assert texts(doc) == ["Top", "deep words", "after"]
    assert doc.metadata.title == "Deep"
    assert [w.code for w in doc.warnings] == ["nested-too-deep"]


def test_elements_nested_past_the_stack_are_read_as_text(tmp_path: Path) -> None:
    # libxml2 keeps up to 255 levels; each costs the walk several calls (a heading four).
    deep = "<h1>" * 250 + "deep words" + "</h1>" * 250
    doc = parse_html(tmp_path, f"<html><body><p>top</p>{deep}<p>after</p></body></html>")
    text = " ".join(texts(doc))
    assert "top" in text and "deep words" in text and "after" in text
    assert [w.code for w in doc.warnings] == ["nested-too-deep"]


def test_ruby_gives_the_base_text_without_its_reading(tmp_path: Path) -> None:
    markup = (
        "<html><body><p>東京の<ruby>漢<rp>(</rp><rt>kan</rt><rp>)</rp>"
        "<rb>字</rb><rt>ji</rt></ruby>を読む</p>"
        "<table><tr><td><ruby>明日<rt>あした</rt></ruby></td></tr></table>"
        '<p><a href="https://example.org/"><ruby>東<rt>とう</rt>京<rt>きょう</rt></ruby></a></p>'
        "</body></html>"
    )
    doc = parse_html(tmp_path, markup)
    assert texts(doc, BlockKind.PARAGRAPH) == ["東京の漢字を読む", "東京"]
    [table] = [b.table for b in doc.blocks if b.table is not None]
    assert table.grid() == [["明日"]]
    assert [(link.text, link.url) for b in doc.blocks for link in b.links] == [
        ("東京", "https://example.org/")
    ]


def test_adjacent_numbered_lists_stay_apart_and_keep_their_start(tmp_path: Path) -> None:
    from docworker.render.document import render_markdown, render_text

    markup = (
        "<ol><li>one</li><li>two</li></ol><ol><li>again</li></ol>"
        '<ol start="7"><li>seven</li><li>eight</li></ol><ul><li>dot</li></ul>'
    )
    doc = parse_html(tmp_path, markup)
    assert [(b.text, b.ordered, b.start) for b in doc.blocks] == [
        ("one", True, 1),
        ("two", True, None),
        ("again", True, 1),
        ("seven", True, 7),
        ("eight", True, None),
        ("dot", False, None),
    ]
    assert render_markdown(doc).splitlines() == [
        "1. one",
        "2. two",
        "1) again",
        "7. seven",
        "8. eight",
        "- dot",
    ]
    assert "1. again\n7. seven" in render_text(doc)


def test_code_in_a_list_item_stays_in_the_list(tmp_path: Path) -> None:
    from docworker.render.document import render_markdown

    markup = "<ul><li>Run it:<pre>make all</pre></li><li>Then rest</li></ul><pre>after</pre>"
    doc = parse_html(tmp_path, markup)
    assert [(b.kind.value, b.level, b.text) for b in doc.blocks] == [
        ("list_item", 1, "Run it:"),
        ("code", 1, "make all"),
        ("list_item", 1, "Then rest"),
        ("code", None, "after"),
    ]
    assert render_markdown(doc) == (
        "- Run it:\n  ```\n  make all\n  ```\n- Then rest\n\n```\nafter\n```\n"
    )
