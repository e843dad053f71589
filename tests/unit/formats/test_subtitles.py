"""Subtitles: the corpus SubRip and WebVTT files, WebVTT's odd corners, and TTML built here."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus_scoring import CORPUS, corpus_f1, needs_corpus, parse

from docworker.document import BlockKind, Document
from docworker.errors import CorruptDocument
from docworker.formats.base import ParseContext
from docworker.formats.registry import parse_path
from docworker.formats.text.subtitles import SubtitleParser

VTT, SRT, TTML = "text/vtt", "application/x-subrip", "application/ttml+xml"


def texts(doc: Document) -> list[str]:
    return [b.text for b in doc.blocks]


def cues(doc: Document) -> list[tuple[float, float, str | None]]:
    return [(c["start"], c["end"], c["speaker"]) for c in doc.metadata.extra["cues"]]


def read(tmp_path: Path, name: str, data: str | bytes) -> Document:
    """Detect and parse, as an upload is."""
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return parse_path(path, ParseContext(), name=name)


@needs_corpus
def test_webvtt_voices_are_speakers_not_text() -> None:
    assert corpus_f1(SubtitleParser(), "media/webvtt-example.vtt", VTT) >= 0.99
    doc = parse(SubtitleParser(), CORPUS / "media/webvtt-example.vtt", VTT)
    assert len(doc.blocks) == 13
    assert all(b.kind is BlockKind.PARAGRAPH for b in doc.blocks)
    assert texts(doc)[0] == "We are in New York City"
    assert texts(doc)[11] == "Laughs"  # <i> dropped
    assert "Copyright" not in " ".join(texts(doc))  # the NOTE block
    listed = doc.metadata.extra["cues"]
    assert listed[0] == {
        "index": 1,
        "start": 11.0,
        "end": 13.0,
        "speaker": "Roger Bingham",
        "block_id": doc.blocks[0].id,
    }
    assert cues(doc)[9] == (30.5, 32.5, "Neil deGrasse Tyson")
    assert doc.metadata.extra["duration"] == 38.0


@needs_corpus
def test_webvtt_with_a_byte_order_mark() -> None:
    doc = parse(SubtitleParser(), CORPUS / "media/subtitles-utf8.vtt", VTT)
    assert texts(doc)[0] == "Well, the feedback indicates"
    assert texts(doc)[-1] == "about who does what and who reports to whom."
    assert cues(doc)[0] == (0.35, 2.01, None)
    assert cues(doc)[-1] == (20.89, 23.663, None)


@needs_corpus
def test_subrip_keeps_line_breaks_and_accents() -> None:
    doc = parse(SubtitleParser(), CORPUS / "media/subtitles.srt", SRT)
    assert len(doc.blocks) == 10
    assert texts(doc)[1] == '"Pour tester la reconnaissance,\nil faut des lignes de textes."'
    assert texts(doc)[7] == "PREMIÈRE PARTIE : VIE DE TOTO"
    assert cues(doc)[0] == (74.44, 75.76, None)


def test_webvtt_blocks_tags_entities_and_settings(tmp_path: Path) -> None:
    vtt = (
        "WEBVTT - a header\nKind: captions\nLanguage: fr\n\n"
        "STYLE\n::cue { color: yellow }\n\n"
        "REGION\nid:fred width:40%\n\n"
        "NOTE spanning\ntwo lines\n\n"
        "intro\n"
        "00:00:01.000 --> 00:00:02.500 line:0 position:20%\n"
        "<c.yellow>Bonjour</c> &amp; <b>bienvenue</b>\n"
        "<00:00:02.000>à tous\n\n"
        "101:00:00.000 --> 101:00:01.000\n"
        "<v.loud Anne>Oui</v> <v Bruno>Non</v>\n\n"
        "00:03.000 --> 00:04.000\n"
        "<v Anne>1 &lt; 2 &gt; 0\n"
    )
    doc = read(tmp_path, "talk.vtt", vtt)
    assert doc.mime == VTT
    assert texts(doc) == ["Bonjour & bienvenue\nà tous", "Oui Non", "1 < 2 > 0"]
    assert cues(doc) == [(1.0, 2.5, None), (363600.0, 363601.0, "Anne, Bruno"), (3.0, 4.0, "Anne")]
    assert doc.metadata.language == "fr"


def test_subrip_in_a_legacy_code_page_with_markup(tmp_path: Path) -> None:
    srt = (
        "1\r\n00:00:01,000 --> 00:00:02,000 X1:10 X2:20 Y1:10 Y2:20\r\n"
        "{\\an8}<i>Où est la gare ?</i>\r\n\r\n"
        '2\r\n00:00:03,5 --> 00:00:04,25\r\n<font color="#ff0">Là-bas.</font>\r\n'
        "3\r\n00:00:05,000 --> 00:00:06,000\r\nNo blank line before this cue.\r\n"
    )
    doc = read(tmp_path, "film.srt", srt.encode("cp1252"))
    assert doc.mime == SRT
    assert texts(doc) == ["Où est la gare ?", "Là-bas.", "No blank line before this cue."]
    assert cues(doc) == [(1.0, 2.0, None), (3.5, 4.25, None), (5.0, 6.0, None)]


def test_a_file_without_cues_is_empty_with_a_warning(tmp_path: Path) -> None:
    doc = read(tmp_path, "empty.vtt", "WEBVTT\n\nNOTE nothing to show\n")
    assert not doc.blocks
    assert [w.code for w in doc.warnings] == ["empty"]


TTML_DOCUMENT = """<?xml version="1.0" encoding="utf-8"?>
<tt xmlns="http://www.w3.org/ns/ttml" xmlns:ttp="http://www.w3.org/ns/ttml#parameter"
    xmlns:ttm="http://www.w3.org/ns/ttml#metadata" xmlns:tts="http://www.w3.org/ns/ttml#styling"
    ttp:frameRate="25" ttp:tickRate="10000000" xml:lang="en">
  <head>
    <metadata>
      <ttm:agent xml:id="narrator" type="person">
        <ttm:name type="full">Nora Narrator</ttm:name>
      </ttm:agent>
    </metadata>
    <styling><style xml:id="s1" tts:color="white"/></styling>
  </head>
  <body>
    <div>
      <p begin="00:00:01.500" end="00:00:03.000" ttm:agent="narrator">Once upon<br/>a   time</p>
      <p begin="00:00:04:10" dur="2s"><span tts:fontStyle="italic">there</span> was
         a <span>cat</span>.</p>
    </div>
    <div begin="10s">
      <div begin="5s">
        <p begin="500ms" end="1500ms">Nested divs add up.</p>
        <p begin="20000000t" end="3.5s">Ticks count too.</p>
        <p begin="50f">Frames, and the end of the div.</p>
      </div>
    </div>
  </body>
</tt>
"""


def test_ttml_cues_times_and_speakers(tmp_path: Path) -> None:
    doc = read(tmp_path, "captions.xml", TTML_DOCUMENT)
    assert doc.mime == TTML
    assert texts(doc) == [
        "Once upon\na time",
        "there was a cat.",
        "Nested divs add up.",
        "Ticks count too.",
        "Frames, and the end of the div.",
    ]
    assert cues(doc) == [
        (1.5, 3.0, "Nora Narrator"),
        (4.4, 6.4, None),
        (15.5, 16.5, None),
        (17.0, 18.5, None),
        (17.0, 17.0, None),
    ]
    assert doc.metadata.language == "en"


def test_an_xml_file_that_is_not_ttml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.xml"
    path.write_text("<root><p>Hello</p></root>")
    with pytest.raises(CorruptDocument):
        parse(SubtitleParser(), path, TTML)
