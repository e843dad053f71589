"""The text, Markdown, HTML and JSON renderings of hand-built documents."""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from html.parser import HTMLParser
from urllib.parse import urlsplit

import lxml.html
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from docworker.document import (
    Block,
    BlockKind,
    Document,
    DocumentBuilder,
    Link,
    Metadata,
    Table,
    TableCell,
)
from docworker.render.document import (
    OutputFormat,
    _safe_url,
    page_blocks,
    render,
    render_html,
    render_json,
    render_markdown,
    render_text,
)


def sample() -> Document:
    """Every block kind once, over two pages, with a nested list and a spanning table."""
    b = DocumentBuilder("test", "text/plain", Metadata(title="Sample <doc>", language="en"))
    b.add_page(1)
    b.add_page(2)
    b.add_page(3)
    b.add(BlockKind.TITLE, "The Title", page=1)
    b.add(BlockKind.HEADER, "Running head", page=1)
    b.add(BlockKind.HEADING, "Intro", level=2, page=1)
    b.add(
        BlockKind.PARAGRAPH,
        "See the docs or <script>alert(1)</script> here.",
        links=[
            Link(text="the docs", url="https://example.com/docs"),
            Link(text="here", url="javascript:alert(1)"),
        ],
        page=1,
    )
    b.add(BlockKind.LIST_ITEM, "one", level=1, ordered=True, page=1)
    b.add(BlockKind.LIST_ITEM, "two", level=1, ordered=True, page=1)
    b.add(BlockKind.LIST_ITEM, "sub a", level=2, ordered=False, page=1)
    b.add(BlockKind.LIST_ITEM, "sub b", level=2, ordered=False, page=1)
    b.add(BlockKind.LIST_ITEM, "three", level=1, ordered=True, page=1)
    b.add(BlockKind.PAGE_BREAK)
    b.add(BlockKind.CAPTION, "Table 1: sizes", page=2)
    b.add(BlockKind.TABLE, table=spanning_table(), page=2)
    b.add(BlockKind.CODE, 'print("hi")', language="python", page=2)
    b.add(BlockKind.QUOTE, "Quoted words", page=2)
    b.add(BlockKind.IMAGE, "A duck", links=[Link(text="A duck", url="duck.png")], page=2)
    b.add(BlockKind.CAPTION, "Figure 1: a duck", page=2)
    b.add(BlockKind.FORMULA, "E = mc^2", page=2)
    b.add(BlockKind.FOOTNOTE, "A footnote.", page=2)
    b.add(BlockKind.FOOTER, "Page 2", page=2)
    return b.finish()


def spanning_table() -> Table:
    """Header "Name | Size (2 columns)"; "x" spans two rows; a cell holds a "|"."""
    return Table(
        n_rows=3,
        n_cols=3,
        cells=[
            TableCell(row=0, col=0, text="Name", header=True),
            TableCell(row=0, col=1, text="Size", header=True, col_span=2),
            TableCell(row=1, col=0, text="x", row_span=2),
            TableCell(row=1, col=1, text="a|b"),
            TableCell(row=1, col=2, text="two\nlines"),
            TableCell(row=2, col=1, text="c"),
            TableCell(row=2, col=2, text="d"),
        ],
    )


# -- text --------------------------------------------------------------------------------


def test_text() -> None:
    assert render_text(sample()) == (
        "The Title\n\nRunning head\n\nIntro\n\n"
        "See the docs or <script>alert(1)</script> here.\n\n"
        "1. one\n2. two\n  - sub a\n  - sub b\n3. three"
        "\n\f"
        "Table 1: sizes\n\n"
        "Name\tSize\tSize\nx\ta|b\ttwo lines\nx\tc\td\n\n"
        'print("hi")\n\nQuoted words\n\nA duck\n\nFigure 1: a duck\n\nE = mc^2\n\n'
        "A footnote.\n\nPage 2\n"
    )


def test_text_separates_pages_without_page_breaks() -> None:
    b = DocumentBuilder("pdf", "application/pdf")
    b.add(BlockKind.PARAGRAPH, "first", page=1)
    b.add(BlockKind.PARAGRAPH, "second", page=1)
    b.add(BlockKind.PARAGRAPH, "third", page=2)
    assert render_text(b.finish()) == "first\n\nsecond\n\fthird\n"


def test_mostly_empty_documents_render_to_nothing() -> None:
    b = DocumentBuilder("pdf", "application/pdf")
    b.add_page(1)
    b.add(BlockKind.PAGE_BREAK)
    b.add(BlockKind.IMAGE, "")
    doc = b.finish()
    assert render_text(doc) == ""
    assert render_markdown(doc) == "![](image)\n"
    assert render_text(Document(format="x", mime="y")) == ""
    assert render_markdown(Document(format="x", mime="y")) == ""


# -- Markdown ----------------------------------------------------------------------------


def test_markdown() -> None:
    assert render_markdown(sample()) == (
        "# The Title\n\n## Intro\n\n"
        "See [the docs](https://example.com/docs) or \\<script>alert(1)\\</script> here.\n\n"
        "1. one\n2. two\n   - sub a\n   - sub b\n3. three\n\n"
        "*Table 1: sizes*\n\n"
        "| Name | Size | Size |\n| --- | --- | --- |\n| x | a\\|b | two lines |\n| x | c | d |\n\n"
        '```python\nprint("hi")\n```\n\n'
        "> Quoted words\n\n![A duck](duck.png)\n\n*Figure 1: a duck*\n\n$$E = mc^2$$\n\n"
        "[^1] A footnote.\n"
    )


def markdown_to_html(markdown: str) -> lxml.html.HtmlElement:
    rendered = MarkdownIt("commonmark").enable("table").render(markdown)
    return lxml.html.fromstring(f"<div>{rendered}</div>")


def test_markdown_means_what_the_document_says() -> None:
    tree = markdown_to_html(render_markdown(sample()))
    assert [h.text_content() for h in tree.xpath("//h1 | //h2")] == ["The Title", "Intro"]
    assert tree.xpath("//ol/li[2]/ul/li/text()") == ["sub a", "sub b"]
    assert [th.text_content() for th in tree.xpath("//table//th")] == ["Name", "Size", "Size"]
    assert tree.xpath("//table//td/text()")[1] == "a|b"
    assert tree.xpath("//pre/code/@class") == ["language-python"]
    assert tree.xpath("//blockquote/p/text()") == ["Quoted words"]
    assert tree.xpath("//a/@href") == ["https://example.com/docs"]
    assert not tree.xpath("//script")


def test_markdown_keeps_paragraphs_paragraphs() -> None:
    starts = [
        "# not a heading",
        "- not a list",
        "+ nor this",
        "* nor this",
        "1. not numbered",
        "2) nor this",
        "> not a quote",
        "```",
        "---",
        "--",
        "***",
        "===",
        "    not code",
    ]
    b = DocumentBuilder("x", "text/plain")
    for text in starts:
        b.add(BlockKind.PARAGRAPH, f"{text}\n{text}")
    tree = markdown_to_html(render_markdown(b.finish()))
    assert len(tree) == len(starts)
    assert {child.tag for child in tree} == {"p"}
    assert [p.text_content() for p in tree] == [f"{s.strip()}\n{s.strip()}" for s in starts]


def test_markdown_list_numbering_and_depths() -> None:
    b = DocumentBuilder("x", "text/plain")
    for text, level, ordered in [
        ("a", 1, True), ("b", 1, True), ("deep", 3, True), ("deeper", 4, True),
        ("c", 1, True), ("bullet", 1, False), ("d", 1, True),
    ]:  # fmt: skip
        b.add(BlockKind.LIST_ITEM, text, level=level, ordered=ordered)
    b.add(BlockKind.PARAGRAPH, "between")
    b.add(BlockKind.LIST_ITEM, "again", level=1, ordered=True)
    assert render_markdown(b.finish()) == (
        "1. a\n2. b\n   1. deep\n      1. deeper\n3. c\n- bullet\n1. d\n\nbetween\n\n1. again\n"
    )


def test_markdown_links_take_the_first_free_occurrence() -> None:
    b = DocumentBuilder("x", "text/plain")
    links = [Link(text="here", url="/a"), Link(text="here", url="/b"), Link(text="gone", url="/c")]
    b.add(BlockKind.PARAGRAPH, "click here, or here", links=links)
    b.add(BlockKind.PARAGRAPH, "odd [text]", links=[Link(text="[text]", url="/x (1)")])
    assert render_markdown(b.finish()) == (
        "click [here](/a), or [here](/b)\n\nodd [\\[text\\]](</x (1)>)\n"
    )


def test_markdown_code_fence_outgrows_backticks_in_the_code() -> None:
    b = DocumentBuilder("x", "text/plain")
    b.add(BlockKind.CODE, "```\nnot the end\n```", language="md; rm -rf")
    assert render_markdown(b.finish()) == "````mdrm-rf\n```\nnot the end\n```\n````\n"


# -- HTML --------------------------------------------------------------------------------

_VOID = frozenset({"meta", "br", "img", "hr", "link"})


class _Nesting(HTMLParser):
    """Records tags that close out of order or never close."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open.pop() != tag:
            self.errors.append(tag)


def assert_well_formed(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>\n<html")
    checker = _Nesting()
    checker.feed(page)
    checker.close()
    assert checker.errors == []
    assert checker.open == []


def test_html() -> None:
    page = render_html(sample())
    assert_well_formed(page)
    tree = lxml.html.fromstring(page)
    assert tree.get("lang") == "en"
    assert tree.findtext("head/title") == "Sample <doc>"
    assert not tree.xpath("//script")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert tree.xpath("//p[@data-page='1']//a/@href") == ["https://example.com/docs"]
    assert "javascript:" not in page
    assert tree.xpath("//h1/text()") == ["The Title"]
    assert tree.xpath("//ol/li[2]/ul/li/text()") == ["sub a", "sub b"]
    assert tree.xpath("//table/caption/text()") == ["Table 1: sizes"]
    assert tree.xpath("//table/thead/tr/th[@colspan='2']/text()") == ["Size"]
    assert tree.xpath("//table/tbody/tr[1]/td[@rowspan='2']/text()") == ["x"]
    assert tree.xpath("//pre/code[@class='language-python']/text()") == ['print("hi")']
    assert tree.xpath("//figure/img/@src") == ["duck.png"]
    assert tree.xpath("//figure/figcaption/text()") == ["Figure 1: a duck"]
    assert tree.xpath("//blockquote/p/text()") == ["Quoted words"]
    assert tree.xpath("//header/p/text()") == ["Running head"]
    assert tree.xpath("//footer[@data-page='2']/p/text()") == ["Page 2"]
    assert len(tree.xpath("//hr[@class='page-break']")) == 1


def test_html_of_an_untitled_empty_document() -> None:
    page = render_html(Document(format="x", mime="y", metadata=Metadata(language='en"><x')))
    assert_well_formed(page)
    assert "<html>" in page
    assert "<title>Document</title>" in page


# -- dispatch, pages, JSON ---------------------------------------------------------------


def test_page_blocks() -> None:
    doc = sample()
    groups = page_blocks(doc)
    assert list(groups) == [1, 2, 3]  # the page break, the one block without a page, is left out
    assert [b.text for b in groups[1]][:3] == ["The Title", "Running head", "Intro"]
    assert groups[3] == []
    assert sum(len(blocks) for blocks in groups.values()) == len(doc.blocks) - 1
    loose = DocumentBuilder("x", "text/plain")
    loose.add(BlockKind.PARAGRAPH, "no page")
    loose.add(BlockKind.PARAGRAPH, "page two", page=2)
    assert {n: [b.text for b in bs] for n, bs in page_blocks(loose.finish()).items()} == {
        2: ["page two"],
        None: ["no page"],
    }


def test_render_dispatch_and_subsets() -> None:
    doc = sample()
    second = page_blocks(doc)[2]
    assert render(doc, OutputFormat.TEXT) == render_text(doc)
    assert render(doc, OutputFormat.TEXT, second).startswith("Table 1: sizes\n")
    assert "The Title" not in str(render(doc, OutputFormat.MARKDOWN, second))
    assert 'data-page="1"' not in str(render(doc, OutputFormat.HTML, second))
    subset = render(doc, OutputFormat.JSON, second)
    assert isinstance(subset, dict)
    assert [b["id"] for b in subset["blocks"]] == [b.id for b in second]
    assert [f.value for f in OutputFormat] == ["text", "markdown", "json", "html"]


def test_json_round_trip() -> None:
    doc = sample()
    data = render_json(doc)
    assert data["schema_name"] == "docworker.document"
    assert "level" not in data["blocks"][3]  # None fields are left out
    assert Document.model_validate(json.loads(json.dumps(data))) == doc


# -- property ----------------------------------------------------------------------------

_WORD = st.text(alphabet="abcxyzÄé字09_", min_size=1, max_size=6)
_NOISE = st.sampled_from([" ", " ", "\n", "# ", "- ", "1. ", "|", "<", "<b>", "*", "`", "[", "]",
                          "(", ")", "&", "\\", "$", "\t", "> ", "```", "="])  # fmt: skip
_TEXT = st.lists(st.one_of(_WORD, _NOISE), max_size=10).map("".join)
_URL = st.sampled_from(["https://x.org/a b", "rel/p(1)", "javascript:alert(1)", "", "#top"])


@st.composite
def tables(draw: st.DrawFn) -> Table:
    n_rows, n_cols = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    positions = [(r, c) for r in range(n_rows) for c in range(n_cols)]
    chosen = draw(st.lists(st.sampled_from(positions), unique=True)) if positions else []
    cells = [
        TableCell(
            row=r,
            col=c,
            text=draw(_TEXT),
            row_span=draw(st.integers(1, 2)),
            col_span=draw(st.integers(1, 2)),
            header=draw(st.booleans()),
        )
        for r, c in chosen
    ]
    return Table(n_rows=n_rows, n_cols=n_cols, cells=cells)


@st.composite
def documents(draw: st.DrawFn) -> Document:
    b = DocumentBuilder("x", "text/plain", Metadata(title=draw(st.none() | _TEXT)))
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(list(BlockKind)))
        text = "" if kind in {BlockKind.PAGE_BREAK, BlockKind.TABLE} else draw(_TEXT)
        links = [Link(text=draw(_WORD), url=draw(_URL)) for _ in range(draw(st.integers(0, 2)))]
        b.add(
            kind,
            text,
            level=draw(st.none() | st.integers(1, 7)),
            ordered=draw(st.none() | st.booleans()),
            page=draw(st.none() | st.integers(1, 3)),
            table=draw(tables()) if kind is BlockKind.TABLE else None,
            language=draw(st.none() | _TEXT),
            links=links,
        )
    return b.finish()


def words(text: str) -> Counter[str]:
    return Counter(re.findall(r"\w+", text.lower()))


def block_words(doc: Document, skip: frozenset[BlockKind] = frozenset()) -> Counter[str]:
    total: Counter[str] = Counter()
    for block in doc.blocks:
        if block.kind not in skip:
            total += words(doc.text_of(block))
    return total


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_renderers_keep_every_word(doc: Document) -> None:
    assert block_words(doc) <= words(render_text(doc))
    markdown = render_markdown(doc)
    assert block_words(doc, frozenset({BlockKind.HEADER, BlockKind.FOOTER})) <= words(markdown)
    page = render_html(doc)
    assert_well_formed(page)
    assert set(block_words(doc)) <= set(words(html.unescape(page)))  # alt texts are attributes
    assert Document.model_validate(render_json(doc)) == doc
    for number, blocks in page_blocks(doc).items():
        assert all(b.page == number for b in blocks)


def test_block_ids_in_html_are_attribute_safe() -> None:
    doc = Document(format="x", mime="y", blocks=[Block(id='a" onload="x', kind=BlockKind.PARAGRAPH,
                                                        text="t")])  # fmt: skip
    assert "onload" not in render_html(doc)


def _reference_safe_url(url: str) -> str | None:
    """What a URL's scheme is, said by the standard library's parser."""
    url = url.strip()
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if url and scheme in {"", "http", "https", "mailto", "ftp", "tel"} else None


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        " JavaScript:alert(1)",
        "java\tscript:alert(1)",
        "\x01javascript:alert(1)",
        "\x00 java\nscript:x",
        "data:text/html,<script>",
        "vbscript:x",
    ],
)
def test_script_urls_are_never_links(url: str) -> None:
    assert _safe_url(url) is None


@given(st.text(alphabet="ab:/[]1+.- jJsS\t\n\r\x00\x01\x1f\x7féΩ%#?@", max_size=16))
def test_the_quick_scheme_check_agrees_with_urlsplit(url: str) -> None:
    assert _safe_url(url) == _reference_safe_url(url)
