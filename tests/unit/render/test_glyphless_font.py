"""The invisible text's font, checked against the OpenType rules for its file and read
by FreeType (through Pillow): its checksums hold, and its glyph has a box but no ink."""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from docworker.render.glyphless_font import (
    ADVANCE_WIDTH,
    ASCENT,
    DESCENT,
    FAMILY,
    UNITS_PER_EM,
    glyphless_font,
)

#: What the OpenType specification says every word of a font file sums to.
WHOLE_FILE_SUM = 0xB1B0AFBA
REQUIRED = {
    b"head",
    b"hhea",
    b"maxp",
    b"hmtx",
    b"loca",
    b"glyf",
    b"cmap",
    b"post",
    b"name",
    b"OS/2",
}


def word_sum(data: bytes) -> int:
    """The big-endian 32-bit words of ``data`` (zero-padded) summed modulo 2³²."""
    padded = data + bytes(-len(data) % 4)
    words = (int.from_bytes(padded[at : at + 4], "big") for at in range(0, len(padded), 4))
    return sum(words) % 2**32


def table_directory(font: bytes) -> dict[bytes, tuple[int, int, int]]:
    """Each table's checksum, offset and length, by tag, in the file's order."""
    (count,) = struct.unpack_from(">H", font, 4)
    records = (struct.unpack_from(">4sIII", font, 12 + 16 * index) for index in range(count))
    return {tag: (checksum, offset, length) for tag, checksum, offset, length in records}


def test_the_tables_and_the_whole_file_carry_their_checksums() -> None:
    font = glyphless_font()
    assert glyphless_font() is font  # built once
    assert len(font) < 1024
    version, count, search_range, entry_selector, range_shift = struct.unpack_from(">IHHHH", font)
    assert (version, count) == (0x00010000, len(REQUIRED))
    assert (search_range, entry_selector, range_shift) == (128, 3, 32)
    tables = table_directory(font)
    assert set(tables) == REQUIRED
    assert list(tables) == sorted(tables)
    end = 12 + 16 * count
    for tag, (checksum, offset, length) in tables.items():
        assert offset % 4 == 0 and offset >= end, tag
        end = offset + length
        data = bytearray(font[offset:end])
        if tag == b"head":
            # The head table's checksum is taken with checkSumAdjustment at zero.
            assert data[12:16] == b"\x5f\x0f\x3c\xf5"  # magicNumber
            data[8:12] = bytes(4)
        assert word_sum(bytes(data)) == checksum, tag
    assert end <= len(font) < end + 4
    assert word_sum(font) == WHOLE_FILE_SUM


def test_freetype_reads_the_font_and_its_glyph_paints_nothing() -> None:
    size = UNITS_PER_EM // 10  # pixels to the em: a font unit is a tenth of a pixel
    font = ImageFont.truetype(io.BytesIO(glyphless_font()), size)
    assert font.getname() == (FAMILY, "Regular")
    assert font.getmetrics() == (ASCENT // 10, -DESCENT // 10)
    # Every character, of any script, is the one glyph: half an em wide, its box the
    # advance along the line and the font's height across it.
    text = "Ab 中한ア"
    advance = ADVANCE_WIDTH // 10
    assert font.getlength(text) == len(text) * advance
    assert font.getbbox(text) == (0, 0, len(text) * advance, (ASCENT - DESCENT) // 10)
    for mode in ("L", "1"):  # anti-aliased and bilevel
        canvas = Image.new(mode, (800, 200))
        ImageDraw.Draw(canvas).text((10, 10), text, font=font, fill=255)
        assert not np.asarray(canvas).any()
