"""XmlParser: safe parsing, JATS articles, generic XML, encodings and malformed input."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from corpus_scoring import CORPUS, corpus_f1, needs_corpus, parse

from docworker.document import BlockKind, Document
from docworker.errors import CorruptDocument, HostileInput
from docworker.formats.text.xml import XmlParser

PARSER = XmlParser()
JATS = "web/jats-article.xml"


def parse_xml(tmp_path: Path, data: str | bytes) -> Document:
    path = tmp_path / "doc.xml"
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return parse(PARSER, path, "application/xml")


@pytest.fixture(scope="module")
def jats() -> Document:
    return parse(PARSER, CORPUS / JATS, "application/xml")


@needs_corpus
def test_jats_article_matches_its_ground_truth() -> None:
    # Measured 0.965; the best peer scored 0.518.
    assert corpus_f1(PARSER, JATS, "application/xml") >= 0.96


@needs_corpus
def test_jats_front_matter(jats: Document) -> None:
    title = "Potential to reduce greenhouse gas emissions through different dairy cattle systems"
    first = jats.blocks[:4]
    assert first[0].kind == BlockKind.TITLE and first[0].text.startswith(title)
    assert first[1].text == "Henrique M. N. Ribeiro-Filho, Maurício Civiero, Ermias Kebreab"
    # Only the authors' affiliations, not the editor's.
    assert first[2].text.startswith("Department of Animal Science, University of California")
    assert "USDA" not in first[2].text
    assert (first[3].kind, first[3].level, first[3].text) == (BlockKind.HEADING, 2, "Abstract")
    meta = jats.metadata
    assert meta.title is not None and meta.title.startswith(title)
    assert meta.authors == ["Henrique M. N. Ribeiro-Filho", "Maurício Civiero", "Ermias Kebreab"]
    assert meta.extra["doi"] == "10.1371/journal.pone.0234687"
    assert meta.extra["schema"] == "jats"
    assert meta.created is not None and meta.created.year == 2020
    assert isinstance(meta.created, datetime)


@needs_corpus
def test_jats_sections_nest_as_heading_levels(jats: Document) -> None:
    headings = [(b.level, b.text) for b in jats.blocks if b.kind == BlockKind.HEADING]
    assert headings[:5] == [
        (2, "Abstract"),
        (2, "Introduction"),
        (2, "Materials and methods"),
        (3, "System boundary"),
        (3, "Functional unit"),
    ]
    assert (4, "Diets composition") in headings
    assert headings[-2:] == [(2, "Acknowledgments"), (2, "References")]


@needs_corpus
def test_jats_tables_figures_and_references(jats: Document) -> None:
    captions = [b.text for b in jats.blocks if b.kind == BlockKind.CAPTION]
    assert "Table 1 Descriptive characteristics of the herd." in captions
    assert "Fig 1 Overview of the milk production system boundary considered in the study." in (
        captions
    )
    tables = [b.table for b in jats.blocks if b.table is not None]
    assert tables[0].grid()[:2] == [["Item", "Unit", "Average"], ["Milking cows", "#", "165"]]
    assert tables[0].header_rows() == 1
    references = [b for b in jats.blocks if b.kind == BlockKind.LIST_ITEM]
    assert references[0].text == "IPCC. Climate Change and Land. Chapter 5: Food Security. 2019."
    assert all(not r.text[0].isdigit() for r in references[:9])
    paragraphs = [b.text for b in jats.blocks if b.kind == BlockKind.PARAGRAPH]
    assert any("emissions from livestock activities represent 10–12%" in p for p in paragraphs)


@needs_corpus
def test_utf16_xml_is_read_from_its_bom() -> None:
    doc = parse(PARSER, CORPUS / "web/factbook-utf16.xml", "application/xml")
    texts = [b.text for b in doc.blocks]
    assert texts[:4] == ["United States", "Washington, DC", "Joe Biden", "Baseball"]
    assert "Trinidad & Tobado" in texts
    assert doc.metadata.encoding == "UTF-16LE"
    assert doc.metadata.extra["root"] == "factbook"


def test_generic_xml_gives_a_paragraph_per_text_element(tmp_path: Path) -> None:
    xml = '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
    xml += "<doc xml:lang='fr'><p>Un <b>été</b> chaud</p><meta><k>v</k></meta><p/></doc>"
    doc = parse_xml(tmp_path, xml.encode("latin-1"))
    assert [(b.kind, b.text) for b in doc.blocks] == [
        (BlockKind.PARAGRAPH, "Un été chaud"),
        (BlockKind.PARAGRAPH, "v"),
    ]
    assert (doc.metadata.language, doc.metadata.encoding) == ("fr", "ISO-8859-1")


def test_namespaced_xml_is_read_by_local_names(tmp_path: Path) -> None:
    doc = parse_xml(tmp_path, '<r xmlns="urn:x"><a>one</a><a>two</a></r>')
    assert [b.text for b in doc.blocks] == ["one", "two"]
    assert doc.metadata.extra["root"] == "r"


def test_xhtml_sent_as_xml_is_read_as_html(tmp_path: Path) -> None:
    page = (
        '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>t</title></head><body>'
        "<h1>Title</h1><p>Text <em>here</em>.</p>"
        "<table><tbody><tr><th>k</th><td>v</td></tr></tbody></table></body></html>"
    )
    doc = parse_xml(tmp_path, page)
    assert [(b.kind, b.text) for b in doc.blocks[:2]] == [
        (BlockKind.HEADING, "Title"),
        (BlockKind.PARAGRAPH, "Text here."),
    ]
    table = doc.blocks[2].table
    assert table is not None
    assert table.grid() == [["k", "v"]]


def test_external_entities_are_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    doc = parse_xml(
        tmp_path,
        f'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file://{secret}">]>'
        "<d><p>before &x; after</p></d>",
    )
    assert [b.text for b in doc.blocks] == ["before after"]


def entity_levels(depth: int) -> str:
    """An XML document whose entity ``e{depth}`` expands to 3 * 10**depth characters."""
    levels = "".join(f'<!ENTITY e{n} "{f"&e{n - 1};" * 10}">' for n in range(1, depth + 1))
    return (
        f'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e0 "lol">{levels}]>'
        f"<d><p>a &e{depth}; b</p></d>"
    )


def test_internal_entities_stay_unexpanded(tmp_path: Path) -> None:
    doc = parse_xml(tmp_path, entity_levels(3))
    assert [b.text for b in doc.blocks] == ["a b"]


def test_an_entity_bomb_is_refused_as_hostile(tmp_path: Path) -> None:
    with pytest.raises(HostileInput, match="entities"):
        parse_xml(tmp_path, entity_levels(9))


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ("<a><b></a>", "line 1 column"),
        ("<a>\n<b>ok</b>\n<c>", "line 3 column"),
        ("<?xml version='1.0'?>\n<a>&undefined;</a>", "line 2 column"),
        ("plain text, not XML", "line 1 column"),
    ],
)
def test_malformed_xml_is_a_corrupt_document_with_a_location(
    tmp_path: Path, data: str, where: str
) -> None:
    with pytest.raises(CorruptDocument, match=where) as caught:
        parse_xml(tmp_path, data)
    assert caught.value.fields == {"format": "xml"}


def test_an_empty_file_is_a_corrupt_document(tmp_path: Path) -> None:
    with pytest.raises(CorruptDocument, match="empty"):
        parse_xml(tmp_path, b" \n")


def test_an_element_without_text_gives_an_empty_document(tmp_path: Path) -> None:
    doc = parse_xml(tmp_path, "<a><b/></a>")
    assert doc.blocks == []
    assert [w.code for w in doc.warnings] == ["empty"]


def test_a_minimal_jats_article(tmp_path: Path) -> None:
    article = """<article xml:lang="en"><front><article-meta>
      <title-group><article-title>On <italic>Ducks</italic></article-title></title-group>
      <contrib-group><contrib contrib-type="author"><name><surname>Roe</surname>
      <given-names>Jane</given-names></name></contrib></contrib-group>
      <kwd-group><kwd>birds</kwd><kwd>water</kwd></kwd-group>
      <abstract><title>Summary</title><p>Ducks swim.</p></abstract></article-meta></front>
      <body><sec><title>Intro</title><p>See the list:<list list-type="order">
      <list-item><p>first</p></list-item><list-item><p>second</p>
      <list><list-item><p>nested</p></list-item></list></list-item></list> and more.</p>
      <disp-formula>E = mc<sup>2</sup></disp-formula>
      <sec><title>Detail</title><p>Deeper.</p></sec></sec></body>
      <back><ref-list><ref><label>1</label><mixed-citation>A book.</mixed-citation></ref>
      </ref-list></back></article>"""
    doc = parse_xml(tmp_path, article)
    assert [(b.kind.value, b.level, b.ordered, b.text) for b in doc.blocks] == [
        ("title", None, None, "On Ducks"),
        ("paragraph", None, None, "Jane Roe"),
        ("heading", 2, None, "Summary"),
        ("paragraph", None, None, "Ducks swim."),
        ("heading", 2, None, "Intro"),
        ("paragraph", None, None, "See the list:"),
        ("list_item", 1, True, "first"),
        ("list_item", 1, True, "second"),
        ("list_item", 2, False, "nested"),
        ("paragraph", None, None, "and more."),
        ("formula", None, None, "E = mc2"),
        ("heading", 3, None, "Detail"),
        ("paragraph", None, None, "Deeper."),
        ("heading", 2, None, "References"),
        ("list_item", 1, False, "A book."),
    ]
    assert doc.metadata.keywords == ["birds", "water"]
    assert doc.metadata.language == "en"
