"""decode_text: byte-order marks, declared charsets, shapes, sniffing, over the corpus too."""

from __future__ import annotations

import codecs

import pytest
from corpus_scoring import CORPUS, needs_corpus
from hypothesis import given, settings
from hypothesis import strategies as st

from docworker.formats.encoding import bom_encoding, decode_text, normalise_codec

SAMPLE = "Grüße aus Köln: déjà vu, 10 €.\nSecond line of plain text for the detectors.\n"


@pytest.mark.parametrize(
    ("bom", "codec", "name"),
    [
        (codecs.BOM_UTF8, "utf-8", "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be", "utf-16-be"),
        (codecs.BOM_UTF32_LE, "utf-32-le", "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be", "utf-32-be"),
    ],
)
def test_a_byte_order_mark_decides_and_is_dropped(bom: bytes, codec: str, name: str) -> None:
    decoded = decode_text(bom + SAMPLE.encode(codec))
    assert (decoded.text, decoded.encoding, decoded.how) == (SAMPLE, name, "bom")


def test_a_bom_wins_over_a_declared_charset() -> None:
    decoded = decode_text(codecs.BOM_UTF8 + SAMPLE.encode(), declared="windows-1252")
    assert decoded.how == "bom"
    assert decoded.text == SAMPLE


def test_bom_encoding_tells_utf32_from_utf16_little_endian() -> None:
    assert bom_encoding(codecs.BOM_UTF32_LE + b"a\0\0\0") == ("utf-32-le", 4)
    assert bom_encoding(codecs.BOM_UTF16_LE + b"a\0") == ("utf-16-le", 2)
    assert bom_encoding(b"plain") is None


def test_a_declared_charset_is_used_when_the_bytes_decode_with_it() -> None:
    data = "Привет, мир".encode("cp1251")
    decoded = decode_text(data, declared="windows-1251")
    assert (decoded.text, decoded.encoding, decoded.how) == ("Привет, мир", "cp1251", "declared")


def test_a_wrong_declaration_is_overruled_by_the_bytes() -> None:
    # Declared UTF-8, but the bytes are not UTF-8: sniffing takes over.
    decoded = decode_text(SAMPLE.encode("cp1252"), declared="utf-8")
    assert decoded.how == "guess"
    assert "Grüße" in decoded.text


def test_an_ascii_declaration_does_not_decide_8_bit_bytes() -> None:
    # A mail client's default label on text it never looked at.
    decoded = decode_text(SAMPLE.encode(), declared="us-ascii")
    assert (decoded.text, decoded.how) == (SAMPLE, "utf-8")
    decoded = decode_text(SAMPLE.encode("cp1252"), declared="ascii")
    assert "Grüße" in decoded.text
    # ASCII bytes keep the declaration.
    assert decode_text(b"plain", declared="us-ascii").how == "declared"


def test_a_declared_utf16_is_ignored_as_browsers_do() -> None:
    decoded = decode_text(b"<p>ascii only</p>", declared="utf-16")
    assert (decoded.text, decoded.encoding) == ("<p>ascii only</p>", "utf-8")


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("UTF-8", "utf-8"),
        ("ISO-8859-8-I", "iso8859-8"),
        ("latin1", "cp1252"),
        ("us-ascii", "cp1252"),
        ("'windows-1251'", "cp1251"),
        ("no-such-charset", None),
        ("utf\x008", None),
        (None, None),
        ("", None),
    ],
)
def test_charset_labels_map_to_python_codecs(label: str | None, codec: str | None) -> None:
    assert normalise_codec(label) == codec


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_utf16_and_utf32_without_a_bom_are_told_by_their_zero_bytes(codec: str) -> None:
    decoded = decode_text(SAMPLE.encode(codec))
    assert (decoded.text, decoded.encoding, decoded.how) == (SAMPLE, codec, "shape")


def test_strict_utf8_comes_before_any_guess() -> None:
    decoded = decode_text(SAMPLE.encode())
    assert (decoded.encoding, decoded.how) == ("utf-8", "utf-8")


def test_empty_input_is_empty_utf8_text() -> None:
    decoded = decode_text(b"")
    assert (decoded.text, decoded.encoding) == ("", "utf-8")


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=512))
def test_any_bytes_decode_without_raising(data: bytes) -> None:
    decoded = decode_text(data)
    assert isinstance(decoded.text, str)
    assert codecs.lookup(decoded.encoding)


@needs_corpus
@pytest.mark.parametrize(
    ("relative", "encoding", "how", "phrase"),
    [
        ("text/plain-utf8.txt", "utf-8", "utf-8", "Doylestown, PA 18901"),
        ("text/utf16le.txt", "utf-16-le", "shape", "Hamburgers are delicious"),
        ("text/utf16be.txt", "utf-16-be", "shape", "Hamburgers are delicious"),
        ("text/utf32.txt", "utf-32-le", "bom", "Dogs are the best"),
        ("text/cp1252.txt", "cp1252", "guess", "“win"),
        ("text/russian-cp866.txt", "cp866", "guess", "Однажды, в студеную зимнюю пору"),
        ("text/ebcdic-cp500.txt", "cp500", "shape", "IntelliStation POWER"),
        ("text/hebrew-iso8859-8i.txt", "utf-8", "utf-8", "8uPr5e8gVGVzbGEgLSDw4"),
        ("text/udhr-multilingual.txt", "utf-8", "utf-8", "人人生而自由"),
        ("web/cp1252.html", "cp1252", "guess", "Die schöne Frau"),
        ("web/utf16.csv", "utf-16-be", "bom", "Maple Leafs,TOR,13"),
    ],
)
def test_corpus_files_decode_as_what_they_are(
    relative: str, encoding: str, how: str, phrase: str
) -> None:
    decoded = decode_text((CORPUS / relative).read_bytes())
    assert (decoded.encoding, decoded.how) == (encoding, how)
    assert phrase in decoded.text
    assert "\ufffd" not in decoded.text


@needs_corpus
def test_the_common_code_page_wins_over_a_sibling_scored_alike() -> None:
    # Detectors rate cp1250 and cp1252 the same on this page; only cp1252 reads "niño".
    decoded = decode_text((CORPUS / "web/cp1252.html").read_bytes())
    assert "El niño comió paella con ñoquis" in decoded.text
    assert "Kvinnan åt köttbullar" in decoded.text
