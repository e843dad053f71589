"""Compressed RTF: the examples of [MS-OXRTFCP] section 3, round trips, damaged input."""

from __future__ import annotations

import os
import struct

import pytest
from compressed_rtf import (
    CROSSING,
    CROSSING_TEXT,
    LZFU,
    SIMPLE,
    SIMPLE_TEXT,
    compress_literally,
    spec_crc32,
    stored,
)

from docworker.errors import CorruptDocument
from docworker.formats.mail.lzfu import INITIAL_DICTIONARY, crc32, decompress


def test_the_initial_dictionary_is_207_bytes_of_rtf() -> None:
    assert len(INITIAL_DICTIONARY) == 207
    assert INITIAL_DICTIONARY.startswith(b"{\\rtf1\\ansi\\mac\\deff0\\deftab720")
    assert INITIAL_DICTIONARY[168:170] == b"\r\n"  # the spec's one non-printable pair
    assert INITIAL_DICTIONARY.endswith(b"\\tab\\tx")


@pytest.mark.parametrize(
    ("compressed", "text"),
    [(SIMPLE, SIMPLE_TEXT), (CROSSING, CROSSING_TEXT)],
    ids=["3.1.1-simple", "3.1.2-crossing-the-write-offset"],
)
def test_the_specification_examples(compressed: bytes, text: bytes) -> None:
    comp_size, raw_size, kind, crc = struct.unpack_from("<4I", compressed)
    assert (kind, comp_size + 4, raw_size) == (LZFU, len(compressed), len(text))
    assert crc32(compressed[16:]) == spec_crc32(compressed[16:]) == crc
    assert decompress(compressed) == text


def test_the_crc_is_the_specifications_on_any_bytes() -> None:
    data = os.urandom(3000)
    assert crc32(data) == spec_crc32(data)
    assert crc32(b"") == 0


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 4096, 10_000])
def test_literal_runs_round_trip(size: int) -> None:
    # Past 4096 bytes the dictionary wraps round; a multiple of 8 ends with a run of its own.
    rtf = (b"{\\rtf1 " + bytes(range(32, 127)) * 200)[:size]
    assert decompress(compress_literally(rtf)) == rtf


def test_the_uncompressed_form_is_read_as_is() -> None:
    assert decompress(stored(SIMPLE_TEXT)) == SIMPLE_TEXT


def test_output_stops_at_the_declared_size() -> None:
    shorter = SIMPLE[:4] + struct.pack("<I", 20) + SIMPLE[8:]
    assert decompress(shorter) == SIMPLE_TEXT[:20]


@pytest.mark.parametrize(
    ("damaged", "reason"),
    [
        (SIMPLE[:15], "shorter than its 16-byte header"),
        (SIMPLE[:8] + b"ABCD" + SIMPLE[12:], "unknown compression type"),
        (SIMPLE[:-3], "the data has fewer"),
        (SIMPLE[:20] + b"\xff" + SIMPLE[21:], "CRC"),
    ],
    ids=["short-header", "unknown-type", "truncated", "bad-crc"],
)
def test_damaged_data_is_refused(damaged: bytes, reason: str) -> None:
    with pytest.raises(CorruptDocument, match=reason):
        decompress(damaged)


def test_a_reference_cut_in_half_is_refused() -> None:
    contents = b"\x01\x00"  # a control byte announcing a reference, and one byte of it
    header = struct.pack("<4I", len(contents) + 12, 10, LZFU, spec_crc32(contents))
    with pytest.raises(CorruptDocument, match="inside a dictionary reference"):
        decompress(header + contents)
