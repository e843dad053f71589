"""Small OLE2 compound files for the tests: Outlook messages built stream by stream.

:func:`compound_file` writes a version 3 compound file ([MS-CFB]) holding the
streams it is given by path (``"storage/stream"``), the storages on those paths
made on the way. Streams under 4096 bytes go in the mini stream, as readers
expect. Siblings hang off each other's right links (a valid, if lopsided,
tree). :func:`msg_properties` and :func:`property_record` make the
``__properties_version1.0`` streams of an Outlook message.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

SECTOR, MINI_SECTOR, MINI_CUTOFF = 512, 64, 4096
END, FREE, FAT_MARK, NONE = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF
_STORAGE, _STREAM, _ROOT = 1, 2, 5


@dataclass
class _Node:
    name: str
    kind: int
    data: bytes = b""
    children: list[_Node] = field(default_factory=list)
    start: int = END


def _tree(streams: dict[str, bytes]) -> _Node:
    root = _Node("Root Entry", _ROOT)
    for path, data in streams.items():
        node = root
        *storages, name = path.split("/")
        for part in storages:
            found = next((c for c in node.children if c.name == part), None)
            if found is None:
                found = _Node(part, _STORAGE)
                node.children.append(found)
            node = found
        node.children.append(_Node(name, _STREAM, data))
    return root


def _flatten(root: _Node) -> list[_Node]:
    order = [root]
    for node in order:
        order.extend(node.children)
    return order


def _sectors(data: bytes, size: int) -> int:
    return (len(data) + size - 1) // size


def _chain(fat: list[int], start: int, count: int) -> int:
    for i in range(count):
        fat[start + i] = start + i + 1 if i < count - 1 else END
    return start if count else END


def compound_file(streams: dict[str, bytes]) -> bytes:
    """A compound file holding ``streams``, keyed by ``/``-separated paths."""
    nodes = _flatten(_tree(streams))
    mini = b""
    mini_fat: list[int] = []
    big: list[_Node] = []
    for node in nodes:
        if node.kind != _STREAM:
            continue
        if len(node.data) < MINI_CUTOFF:
            count = _sectors(node.data, MINI_SECTOR)
            node.start = _chain_list(mini_fat, count)
            mini += node.data.ljust(count * MINI_SECTOR, b"\0")
        else:
            big.append(node)
    mini_fat_bytes = struct.pack(f"<{len(mini_fat)}I", *mini_fat)
    directory = _sectors(b"\0" * 128 * len(nodes), SECTOR)
    plan = [directory, _sectors(mini_fat_bytes, SECTOR), _sectors(mini, SECTOR)]
    plan += [_sectors(n.data, SECTOR) for n in big]
    fat_sectors = 1
    while fat_sectors * (SECTOR // 4) < fat_sectors + sum(plan):
        fat_sectors += 1
    total = fat_sectors + sum(plan)
    fat = [FREE] * (fat_sectors * SECTOR // 4)
    fat[:fat_sectors] = [FAT_MARK] * fat_sectors
    starts, at = [], fat_sectors
    for count in plan:
        starts.append(_chain(fat, at, count))
        at += count
    nodes[0].start, nodes[0].data = starts[2], b"\0" * len(mini)
    for node, start in zip(big, starts[3:], strict=True):
        node.start = start
    body = b"".join(
        part.ljust(_sectors(part, SECTOR) * SECTOR, b"\0")
        for part in [_directory(nodes), mini_fat_bytes, mini, *(n.data for n in big)]
    )
    header = _header(fat_sectors, starts[0], starts[1], plan[1])
    fat_bytes = struct.pack(f"<{len(fat)}I", *fat)
    assert len(fat_bytes) + len(body) == total * SECTOR
    return header + fat_bytes + body


def _chain_list(mini_fat: list[int], count: int) -> int:
    start = len(mini_fat)
    mini_fat.extend(start + i + 1 for i in range(count))
    if count:
        mini_fat[-1] = END
    return start if count else END


def _directory(nodes: list[_Node]) -> bytes:
    ids = {id(node): i for i, node in enumerate(nodes)}
    right: dict[int, int] = {}
    for node in nodes:
        for a, b in zip(node.children, node.children[1:], strict=False):
            right[id(a)] = ids[id(b)]
    out = bytearray()
    for node in nodes:
        raw = bytearray(128)
        name = node.name.encode("utf-16-le") + b"\0\0"
        raw[: len(name)] = name
        child = ids[id(node.children[0])] if node.children else NONE
        struct.pack_into("<HBB", raw, 0x40, len(name), node.kind, 1)
        struct.pack_into("<III", raw, 0x44, NONE, right.get(id(node), NONE), child)
        size = len(node.data) if node.kind != _STORAGE else 0
        start = node.start if node.kind != _STORAGE else 0
        struct.pack_into("<II", raw, 0x74, start, size)
        out += raw
    return bytes(out)


def _header(fat_sectors: int, directory: int, mini_fat: int, mini_fat_sectors: int) -> bytes:
    header = bytearray(512)
    header[:8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    struct.pack_into("<HHHHH", header, 0x18, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<IIII", header, 0x2C, fat_sectors, directory, 0, MINI_CUTOFF)
    struct.pack_into("<IIII", header, 0x3C, mini_fat, mini_fat_sectors, END, 0)
    difat = list(range(fat_sectors)) + [FREE] * (109 - fat_sectors)
    struct.pack_into("<109I", header, 0x4C, *difat)
    return bytes(header)


# -- Outlook messages --------------------------------------------------------------------

PT_LONG, PT_BOOLEAN, PT_SYSTIME = 0x0003, 0x000B, 0x0040


def property_record(prop: int, kind: int, value: int) -> bytes:
    """One 16-byte fixed-length property record: tag, flags, 8-byte value."""
    return struct.pack("<IIQ", (prop << 16) | kind, 6, value)


def msg_properties(*records: bytes, header: int = 32) -> bytes:
    """A ``__properties_version1.0`` stream: a zeroed header of ``header`` bytes, the records.

    32 bytes for the message itself, 24 for an attached message, 8 for a
    recipient or an attachment.
    """
    return b"\0" * header + b"".join(records)


def utf16(text: str) -> bytes:
    return text.encode("utf-16-le")


# -- OLE objects -------------------------------------------------------------------------


def ole10_native(
    data: bytes, file_name: str, *, label: str | None = None, wide_name: str | None = None
) -> bytes:
    """A Packager ``\\x01Ole10Native`` record holding ``data``, in the "parsed" layout.

    ``wide_name`` adds the UTF-16 command, label and file name that newer writers append.
    """
    ansi = (label or file_name).encode("cp1252") + b"\0" + file_name.encode("cp1252") + b"\0"
    command = f"C:\\Temp\\{file_name}".encode("cp1252") + b"\0"
    body = struct.pack("<H", 2) + ansi + struct.pack("<HHI", 0, 3, len(command)) + command
    body += struct.pack("<I", len(data)) + data
    if wide_name is not None:
        for text in (f"C:\\Temp\\{wide_name}", wide_name, wide_name):
            body += struct.pack("<I", len(text)) + text.encode("utf-16-le")
    return struct.pack("<I", len(body)) + body


def ole_object(stream: str, content: bytes) -> bytes:
    """An embedded OLE object: a compound file with ``content`` in ``stream`` and the usual
    ``\\x01Ole`` and ``\\x01CompObj`` streams beside it."""
    return compound_file(
        {
            "\x01Ole": b"\x01\x00\x00\x02" + b"\0" * 16,
            "\x01CompObj": b"\x01\x00\xfe\xff",
            stream: content,
        }
    )
