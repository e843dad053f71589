"""A TrueType font whose one glyph draws nothing, for text meant to be found, not seen.

A searchable PDF draws its words invisibly over the page image, every character
with this font's glyph 0; what a character is, the PDF's ``ToUnicode`` map
says. The font is under a kilobyte, written here with the tables a TrueType
font needs (``head``, ``hhea``, ``maxp``, ``hmtx``, ``loca``, ``glyf``,
``cmap``, ``post``, ``name``, ``OS/2``), so that nothing is read from the
system's fonts.

The glyph has no area, so nothing is painted even where the text would be, but
it is not without points: pdfium measures a character by its glyph's outline
(FreeType's bounding box of its points), and gives an outline-less glyph no
width and no height. A text object of one such character then has no width and
is left out of text extraction, and so is any turned one (its characters have
no height); the characters of the others get boxes of no height, which text
selection skips. So the glyph is two contours of one point each, at the
corners of its box: from the origin to its advance width along the baseline,
from the descent to the ascent across it. A character's box is then exactly
its advance and the font's height, whatever the script.
"""

from __future__ import annotations

import struct
from datetime import date
from functools import cache

#: Font units to the em.
UNITS_PER_EM = 1000
#: The advance width of the glyph, and the width of its box, in font units: half an
#: em. The text is stretched onto the boxes of the words read, so any width would do;
#: half an em is about a letter's, the width text extraction's guesses expect.
ADVANCE_WIDTH = 500
#: The extent of the glyph's box (and of the font's em) above and below the baseline,
#: in font units.
ASCENT = 800
DESCENT = -200
#: The name the font goes by (``name`` table, and the PDF's ``BaseFont``).
FAMILY = "InvisibleText"
_VERSION = "Version 1.000"
#: Fixed creation and modification dates (seconds since 1904-01-01), so that the
#: bytes are the same from one process to the next.
_DATE = (date(2025, 1, 1) - date(1904, 1, 1)).days * 86_400
#: The whole font's checksum, ``checkSumAdjustment`` included, is this.
_CHECKSUM_MAGIC = 0xB1B0AFBA
#: Where ``checkSumAdjustment`` sits in the ``head`` table.
_CHECKSUM_ADJUSTMENT_OFFSET = 8
_TRUETYPE = 0x00010000
_TABLE_RECORD = struct.Struct(">4sIII")
_ON_CURVE = 0x01


@cache
def glyphless_font() -> bytes:
    """The font program (a TrueType file), built once per process."""
    glyph = _glyph()
    tables = {
        b"OS/2": _os2(),
        b"cmap": _cmap(),
        b"glyf": glyph,
        b"head": _head(),
        b"hhea": _hhea(),
        b"hmtx": struct.pack(">Hh", ADVANCE_WIDTH, 0),
        # Short offsets (halved): glyph 0 is the whole glyf table.
        b"loca": struct.pack(">HH", 0, len(glyph) // 2),
        b"maxp": _maxp(),
        b"name": _name(),
        b"post": _post(),
    }
    return _assemble(tables)


def _checksum(data: bytes) -> int:
    """The OpenType checksum of ``data``: its big-endian 32-bit words summed, modulo
    2³², the last one padded with zeros."""
    padded = data + bytes(-len(data) % 4)
    words: tuple[int, ...] = struct.unpack(f">{len(padded) // 4}I", padded)
    return sum(words) & 0xFFFFFFFF


def _assemble(tables: dict[bytes, bytes]) -> bytes:
    """The font file of ``tables``: the table directory (tags in ascending order),
    then each table on a 4-byte boundary, then ``checkSumAdjustment`` set."""
    count = len(tables)
    power = 1 << (count.bit_length() - 1)
    header = struct.pack(
        ">IHHHH", _TRUETYPE, count, power * 16, power.bit_length() - 1, (count - power) * 16
    )
    offset = len(header) + count * _TABLE_RECORD.size
    records: list[bytes] = []
    body = b""
    head_at = 0
    for tag in sorted(tables):
        data = tables[tag]
        if tag == b"head":
            head_at = offset
        records.append(_TABLE_RECORD.pack(tag, _checksum(data), offset, len(data)))
        padded = data + bytes(-len(data) % 4)
        body += padded
        offset += len(padded)
    font = bytearray(header + b"".join(records) + body)
    # The head table's checksum above is of the table with a zero adjustment, as it
    # must be; the adjustment makes the checksum of the whole file the magic number.
    adjustment = (_CHECKSUM_MAGIC - _checksum(bytes(font))) & 0xFFFFFFFF
    struct.pack_into(">I", font, head_at + _CHECKSUM_ADJUSTMENT_OFFSET, adjustment)
    return bytes(font)


def _glyph() -> bytes:
    """Glyph 0: two contours of one on-curve point each, at the bottom left and the top
    right of its box (coordinates as deltas from the previous point, in words)."""
    return struct.pack(
        ">hhhhhHHHBBhhhh",
        2,  # numberOfContours
        0,  # xMin
        DESCENT,  # yMin
        ADVANCE_WIDTH,  # xMax
        ASCENT,  # yMax
        0,  # endPtsOfContours: point 0 ends the first contour,
        1,  # point 1 the second
        0,  # instructionLength
        _ON_CURVE,
        _ON_CURVE,
        0,  # x of point 0
        ADVANCE_WIDTH,  # x of point 1
        DESCENT,  # y of point 0
        ASCENT - DESCENT,  # y of point 1
    )


def _head() -> bytes:
    # Flags: baseline at y=0, left side bearing at x=0, integer scaling.
    flags = 0b1011
    return struct.pack(
        ">IIIIHHqqhhhhHHhhh",
        0x00010000,  # version 1.0
        0x00010000,  # fontRevision 1.0
        0,  # checkSumAdjustment, set once the file is assembled
        0x5F0F3CF5,  # magicNumber
        flags,
        UNITS_PER_EM,
        _DATE,
        _DATE,
        0,  # the glyph's box: xMin, yMin, xMax, yMax
        DESCENT,
        ADVANCE_WIDTH,
        ASCENT,
        0,  # macStyle: regular
        8,  # lowestRecPPEM
        2,  # fontDirectionHint (deprecated value)
        0,  # indexToLocFormat: short offsets
        0,  # glyphDataFormat
    )


def _hhea() -> bytes:
    return struct.pack(
        ">IhhhHhhhhhh4hhH",
        0x00010000,  # version 1.0
        ASCENT,
        DESCENT,
        0,  # lineGap
        ADVANCE_WIDTH,  # advanceWidthMax
        0,  # minLeftSideBearing
        0,  # minRightSideBearing
        ADVANCE_WIDTH,  # xMaxExtent
        1,  # caretSlopeRise: upright
        0,  # caretSlopeRun
        0,  # caretOffset
        0,
        0,
        0,
        0,  # reserved
        0,  # metricDataFormat
        1,  # numberOfHMetrics
    )


def _maxp() -> bytes:
    # Version 1.0 (TrueType outlines): one glyph of two points in two contours, no
    # composite glyphs, no instructions (so no twilight zone: one zone).
    glyphs, points, contours, zones = 1, 2, 2, 1
    return struct.pack(
        ">IHHHHHHHHHHHHHH", 0x00010000, glyphs, points, contours, 0, 0, zones, *[0] * 8
    )


def _cmap() -> bytes:
    """A Windows Unicode (3, 1) map of format 4 holding only the closing segment
    (U+FFFF): no character has a glyph of its own; the PDF maps its codes to glyph 0."""
    segments = 1
    subtable = struct.pack(
        ">10HhH",
        4,  # format
        16 + 8 * segments,  # length
        0,  # language
        2 * segments,  # segCountX2
        2,  # searchRange: 2 × 2^floor(log2(segments))
        0,  # entrySelector
        0,  # rangeShift
        0xFFFF,  # endCode
        0,  # reservedPad
        0xFFFF,  # startCode
        1,  # idDelta: U+FFFF + 1 = glyph 0
        0,  # idRangeOffset
    )
    return struct.pack(">HHHHI", 0, 1, 3, 1, 12) + subtable


def _name() -> bytes:
    """Names for Windows (platform 3, Unicode BMP, US English), in UTF-16BE."""
    names = {
        1: FAMILY,  # family
        2: "Regular",  # subfamily
        3: f"{FAMILY}:{_VERSION}",  # unique identifier
        4: FAMILY,  # full name
        5: _VERSION,
        6: FAMILY,  # PostScript name
    }
    encoded = {name_id: text.encode("utf-16-be") for name_id, text in names.items()}
    storage_at = 6 + 12 * len(encoded)
    records, storage = b"", b""
    for name_id, data in sorted(encoded.items()):
        records += struct.pack(">HHHHHH", 3, 1, 0x0409, name_id, len(data), len(storage))
        storage += data
    return struct.pack(">HHH", 0, len(encoded), storage_at) + records + storage


def _os2() -> bytes:
    """Version 4 of the OS/2 table."""
    return struct.pack(
        ">HhHHHhhhhhhhhhhh10sIIII4sHHHhhhHHIIhhHHH",
        4,  # version
        ADVANCE_WIDTH,  # xAvgCharWidth
        400,  # usWeightClass: normal
        5,  # usWidthClass: medium
        0,  # fsType: installable embedding
        650,  # ySubscriptXSize
        600,  # ySubscriptYSize
        0,  # ySubscriptXOffset
        75,  # ySubscriptYOffset
        650,  # ySuperscriptXSize
        600,  # ySuperscriptYSize
        0,  # ySuperscriptXOffset
        350,  # ySuperscriptYOffset
        50,  # yStrikeoutSize
        300,  # yStrikeoutPosition
        0,  # sFamilyClass: no classification
        bytes(10),  # panose: any
        0,
        0,
        0,
        0,  # ulUnicodeRange1-4: no character has a glyph
        b"NONE",  # achVendID
        0x40,  # fsSelection: REGULAR
        0xFFFF,  # usFirstCharIndex: the cmap holds U+FFFF only
        0xFFFF,  # usLastCharIndex
        ASCENT,  # sTypoAscender
        DESCENT,  # sTypoDescender
        0,  # sTypoLineGap
        ASCENT,  # usWinAscent
        -DESCENT,  # usWinDescent
        0,
        0,  # ulCodePageRange1-2
        500,  # sxHeight
        700,  # sCapHeight
        0,  # usDefaultChar: glyph 0
        0x20,  # usBreakChar: space
        0,  # usMaxContext: no layout features
    )


def _post() -> bytes:
    # Format 3: no glyph names. One advance width for all: fixed pitch.
    return struct.pack(">IIhhIIIII", 0x00030000, 0, -100, 50, 1, 0, 0, 0, 0)
