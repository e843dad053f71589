"""MarkdownParser: structure from markdown-it tokens, front matter, raw HTML, corpus scores."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus_scoring import CORPUS, corpus_f1, needs_corpus, parse

from docworker.document import BlockKind, Document, Link
from docworker.errors import LimitExceeded
from docworker.formats.base import ParseContext, ParseLimits
from docworker.formats.text.markdown import MarkdownParser, parse_front_matter

PARSER = MarkdownParser()


def parse_md(tmp_path: Path, text: str, ctx: ParseContext | None = None) -> Document:
    path = tmp_path / "doc.md"
    path.write_text(text, encoding="utf-8")
    return parse(PARSER, path, "text/markdown", ctx)


def shape(doc: Document) -> list[tuple[str, int | None, bool | None, str]]:
    return [(b.kind.value, b.level, b.ordered, b.text) for b in doc.blocks]


@needs_corpus
@pytest.mark.parametrize("name", ["wiki.md", "nested.md"])
def test_corpus_markdown_matches_its_ground_truth(name: str) -> None:
    # Measured 1.000 on both, as the best peer.
    assert corpus_f1(PARSER, f"web/{name}", "text/markdown") == pytest.approx(1.0)


@needs_corpus
def test_wiki_article_headings_and_paragraphs() -> None:
    doc = parse(PARSER, CORPUS / "web/wiki.md", "text/markdown")
    headings = [(b.level, b.text) for b in doc.blocks if b.kind == BlockKind.HEADING]
    assert headings == [(1, "IBM"), (2, "1910s–1950s"), (2, "1960s–1980s")]
    assert doc.metadata.title == "IBM"
    assert sum(b.kind == BlockKind.PARAGRAPH for b in doc.blocks) == 9


@needs_corpus
def test_nested_lists_keep_their_depth_and_html_lists_are_lists_too() -> None:
    doc = parse(PARSER, CORPUS / "web/nested.md", "text/markdown")
    items = [(b.level, b.text) for b in doc.blocks if b.kind == BlockKind.LIST_ITEM]
    assert items[:6] == [
        (1, "abc"),
        (2, "abc123"),
        (3, "abc1234"),
        (4, "abc12345"),
        (5, "a."),
        (5, "b."),
    ]
    assert (1, "changing symbol") in items
    assert items[-4:] == [
        (1, "Second item with subitems:"),
        (2, "Subitem 1"),
        (2, "Subitem 2"),
        (1, "Last list item"),
    ]
    # The commented-out HTML table is not content.
    assert not any("Nested Table" in b.text for b in doc.blocks)


def test_inline_markup_keeps_its_words_and_loses_its_characters(tmp_path: Path) -> None:
    doc = parse_md(
        tmp_path,
        "Some *emphasis*, __strong__, ~~gone~~, `code span` and [a link](https://x.org/a).\n",
    )
    [block] = doc.blocks
    assert block.text == "Some emphasis, strong, gone, code span and a link."
    assert block.links == [Link(text="a link", url="https://x.org/a")]


def test_soft_breaks_join_and_hard_breaks_stay(tmp_path: Path) -> None:
    doc = parse_md(tmp_path, "one\ntwo  \nthree<br>four\n")
    assert doc.blocks[0].text == "one two\nthree\nfour"


def test_lists_ordered_and_bulleted(tmp_path: Path) -> None:
    doc = parse_md(tmp_path, "1. first\n   - inner\n2. second\n\n* other\n")
    assert shape(doc) == [
        ("list_item", 1, True, "first"),
        ("list_item", 2, False, "inner"),
        ("list_item", 1, True, "second"),
        ("list_item", 1, False, "other"),
    ]


def test_code_fences_keep_language_and_text(tmp_path: Path) -> None:
    doc = parse_md(tmp_path, "```python title=x\nprint('*not emphasis*')\n```\n\n    indented\n")
    assert [(b.kind, b.language, b.text) for b in doc.blocks] == [
        (BlockKind.CODE, "python", "print('*not emphasis*')"),
        (BlockKind.CODE, None, "indented"),
    ]


def test_quotes_tables_and_images(tmp_path: Path) -> None:
    text = (
        "> quoted **words**\n\n"
        "| Name | Value |\n|:-----|------:|\n| a | [b](u) |\n| c | |\n\n"
        "![a chart](img/chart.png)\n"
    )
    doc = parse_md(tmp_path, text)
    assert [b.kind for b in doc.blocks] == [BlockKind.QUOTE, BlockKind.TABLE, BlockKind.IMAGE]
    assert doc.blocks[0].text == "quoted words"
    table = doc.blocks[1].table
    assert table is not None
    assert table.grid() == [["Name", "Value"], ["a", "b"], ["c", ""]]
    assert table.header_rows() == 1
    assert doc.blocks[1].links == [Link(text="b", url="u")]
    assert doc.blocks[2].text == "a chart"
    assert doc.blocks[2].links == [Link(text="a chart", url="img/chart.png")]


def test_front_matter_goes_to_metadata_not_text(tmp_path: Path) -> None:
    text = (
        '---\ntitle: "My: Doc"\nauthor: Jane Roe\ntags: [a, b]\nlang: fr\n'
        "aliases:\n  - one\n  - two\n---\n\n# Heading\n\nBody.\n"
    )
    doc = parse_md(tmp_path, text)
    assert shape(doc) == [("heading", 1, None, "Heading"), ("paragraph", None, None, "Body.")]
    meta = doc.metadata
    assert (meta.title, meta.authors, meta.keywords, meta.language) == (
        "My: Doc",
        ["Jane Roe"],
        ["a", "b"],
        "fr",
    )
    assert meta.extra["front_matter"]["aliases"] == ["one", "two"]


def test_parse_front_matter_only_at_the_very_top() -> None:
    assert parse_front_matter("text\n---\nkey: v\n---\n") == ({}, "text\n---\nkey: v\n---\n")
    fields, rest = parse_front_matter("---\nkey: v\nnot a pair\n...\nafter")
    assert (fields, rest) == ({"key": "v"}, "after")


def test_a_thematic_break_is_not_front_matter_when_unclosed(tmp_path: Path) -> None:
    doc = parse_md(tmp_path, "---\njust text\n")
    assert [b.text for b in doc.blocks] == ["just text"]


def test_an_empty_document_warns(tmp_path: Path) -> None:
    doc = parse_md(tmp_path, "\n  \n")
    assert doc.blocks == []
    assert [w.code for w in doc.warnings] == ["empty"]


def test_tables_count_against_the_cell_limit(tmp_path: Path) -> None:
    table = "| a | b |\n|---|---|\n" + "| 1 | 2 |\n" * 10
    with pytest.raises(LimitExceeded):
        parse_md(tmp_path, table, ParseContext(limits=ParseLimits(max_cells=10)))


def test_tables_wider_than_the_column_limit_are_refused_before_they_are_read(
    tmp_path: Path,
) -> None:
    def table(columns: int) -> str:
        return "".join("|" + cell * columns + "\n" for cell in (" a |", "---|", " 1 |"))

    ctx = ParseContext(limits=ParseLimits(max_markdown_columns=4))
    assert [b.table.n_cols for b in parse_md(tmp_path, table(4), ctx).blocks if b.table] == [4]
    with pytest.raises(LimitExceeded, match="5 columns") as refused:
        parse_md(tmp_path, table(5), ctx)
    assert refused.value.fields["limit"] == "table columns"
    # Pipes alone are no table: a line of them under text is read as text.
    assert parse_md(tmp_path, "a\n" + "|" * 20 + "\n", ctx).blocks
    # 100,000 columns were read for 5.7 s; refused, they cost one count of the pipes.
    with pytest.raises(LimitExceeded):
        parse_md(tmp_path, table(100_000), ParseContext())


def test_deep_quotes_and_lists_keep_their_text(tmp_path: Path) -> None:
    # markdown-it's CommonMark preset dropped a quote 20 deep, or a list 10 deep, silently.
    lists = "".join("  " * i + f"- item{i}\n" for i in range(12))
    doc = parse_md(tmp_path, ">" * 25 + " quoted\n\n" + lists)
    assert [b.text for b in doc.blocks] == ["quoted"] + [f"item{i}" for i in range(12)]
    assert doc.warnings == []
    deeper = parse_md(tmp_path, ">" * 5000 + " the deepest\n\nafter\n\n" + "- " * 200 + "end\n")
    assert shape(deeper) == [
        ("quote", None, None, "the deepest"),
        ("paragraph", None, None, "after"),
        ("list_item", 49, False, "end"),
    ]
    assert [w.code for w in deeper.warnings] == ["nested-too-deep"]


def test_a_change_of_delimiter_starts_a_new_list_and_round_trips(tmp_path: Path) -> None:
    from markdown_it import MarkdownIt

    from docworker.render.document import render_html, render_markdown, render_text

    doc = parse_md(tmp_path, "1. one\n2. two\n\n1) again\n2) more\n\n7. seven\n8. eight\n")
    starts = [(b.text, b.start) for b in doc.blocks]
    assert starts == [
        ("one", 1),
        ("two", None),
        ("again", 1),
        ("more", None),
        ("seven", 7),
        ("eight", None),
    ]
    markdown = render_markdown(doc)
    assert markdown.splitlines() == [
        "1. one",
        "2. two",
        "1) again",
        "2) more",
        "7. seven",
        "8. eight",
    ]
    # Read back, the Markdown holds three lists, as the source did.
    tokens = MarkdownIt("commonmark").parse(markdown)
    assert sum(t.type == "ordered_list_open" for t in tokens) == 3
    assert "1. again" in render_text(doc) and "7. seven" in render_text(doc)
    assert render_html(doc).count("<ol") == 3 and '<ol start="7">' in render_html(doc)


def test_code_inside_a_list_item_stays_under_the_item(tmp_path: Path) -> None:
    from markdown_it import MarkdownIt

    from docworker.render.document import render_html, render_markdown, render_text

    source = "- item\n\n  ```python\n  x = 1\n  ```\n\n- next\n\n      indented code\n\nafter\n"
    doc = parse_md(tmp_path, source)
    assert [(b.kind.value, b.level, b.text) for b in doc.blocks] == [
        ("list_item", 1, "item"),
        ("code", 1, "x = 1"),
        ("list_item", 1, "next"),
        ("code", 1, "indented code"),
        ("paragraph", None, "after"),
    ]
    markdown = render_markdown(doc)
    tokens = MarkdownIt("commonmark").parse(markdown)
    # One list of two items, each with its code block inside it.
    assert [t.type for t in tokens if t.type.endswith("list_open") or t.type == "fence"] == [
        "bullet_list_open",
        "fence",
        "fence",
    ]
    fences = [t for t in tokens if t.type == "fence"]
    assert [(t.info, t.content, t.level) for t in fences] == [
        ("python", "x = 1\n", 2),
        ("", "indented code\n", 2),
    ]
    assert render_text(doc).startswith("- item\n  x = 1\n- next\n  indented code\n")
    assert "<li" in render_html(doc) and "x = 1</code></pre></li>" in render_html(doc)
