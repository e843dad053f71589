"""OLE objects unwrapped: the Packager's three layouts, whole-file streams, and what is not one."""

from __future__ import annotations

import struct

import pytest
from compound_file import compound_file, ole10_native, ole_object

from docworker.errors import CorruptDocument
from docworker.formats.cfb import OleContent, unwrap_ole_object

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def test_a_packager_object_gives_its_file_and_name() -> None:
    record = ole10_native(b"Minutes of the meeting.\n", "C:\\Users\\ann\\notes.txt", label="notes")
    assert unwrap_ole_object(ole_object("\x01Ole10Native", record)) == OleContent(
        b"Minutes of the meeting.\n", "C:\\Users\\ann\\notes.txt"
    )


def test_the_utf16_file_name_is_preferred() -> None:
    record = ole10_native(b"x", "?.txt", wide_name="Grüße 東京.txt")
    content = unwrap_ole_object(ole_object("\x01Ole10Native", record))
    assert content == OleContent(b"x", "Grüße 東京.txt")


@pytest.mark.parametrize(
    ("record", "data"),
    [
        # "compact": the flags, then the bytes (their first byte is a control character).
        (struct.pack("<IH", 6, 2) + b"\x01\x02\x03\x04", b"\x01\x02\x03\x04"),
        # "unparsed": the bytes straight after the size.
        (struct.pack("<I", 5) + b"\x00\x05hello", b"\x00\x05hel"),
    ],
    ids=["compact", "unparsed"],
)
def test_the_other_packager_layouts(record: bytes, data: bytes) -> None:
    assert unwrap_ole_object(ole_object("\x01Ole10Native", record)) == OleContent(data, None)


@pytest.mark.parametrize("stream", ["CONTENTS", "Package"])
def test_a_whole_file_stream_is_the_file(stream: str) -> None:
    assert unwrap_ole_object(ole_object(stream, PDF)) == OleContent(PDF, None)


def test_what_wraps_no_other_file_is_left_alone() -> None:
    # An embedded Word 97 document is a compound file itself; a PDF is not one at all.
    assert unwrap_ole_object(compound_file({"WordDocument": b"\xec\xa5" + b"\0" * 64})) is None
    assert unwrap_ole_object(PDF) is None
    assert unwrap_ole_object(b"") is None


def test_short_data_is_never_taken_for_a_file_name() -> None:
    # olefile reads bytes shorter than 1536 as a path; the signature alone must not open one.
    with pytest.raises(CorruptDocument):
        unwrap_ole_object(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1/etc/passwd")


@pytest.mark.parametrize(
    "record",
    [
        b"\x01\x00",
        ole10_native(b"0123456789", "a.txt")[:-4],
        struct.pack("<IH", 40, 2) + b"no terminator",
    ],
    ids=["short", "truncated-data", "unterminated-name"],
)
def test_a_damaged_packager_record_is_corrupt(record: bytes) -> None:
    with pytest.raises(CorruptDocument, match="Ole10Native"):
        unwrap_ole_object(ole_object("\x01Ole10Native", record))


def test_a_damaged_compound_file_is_corrupt() -> None:
    data = ole_object("CONTENTS", PDF)
    with pytest.raises(CorruptDocument, match="compound file"):
        unwrap_ole_object(data[:600])


@pytest.mark.parametrize(("offset", "value"), [(0x1E, 30), (0x1E, 0xFFFF), (0x20, 20)])
def test_sector_sizes_the_format_does_not_allow_are_corrupt(offset: int, value: int) -> None:
    # olefile would read sectors of 2**value bytes: gigabytes for a few changed bytes.
    data = bytearray(ole_object("CONTENTS", PDF))
    struct.pack_into("<H", data, offset, value)
    with pytest.raises(CorruptDocument, match="sector sizes the format allows"):
        unwrap_ole_object(bytes(data))
