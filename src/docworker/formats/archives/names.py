"""Entry names: decoded from what the archive stores, and judged before anything is read.

A ZIP entry without the UTF-8 flag, or a tar header, holds its name as bytes in some
code page the archive does not say. The names of one archive are decoded together:
strict UTF-8 when it fits, else the multi-byte encoding charset-normalizer finds in
them (GBK, Big5, Shift-JIS, ...), else the ZIP default, code page 437.

A name is never used as a path: entries are written under names the walker makes.
It is judged all the same, because a name that climbs out of the archive (``..``),
starts at a root (``/``, ``C:``, ``\\\\server``) says the archive was made to attack
whoever unpacks it, and such an entry is refused.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePosixPath

from charset_normalizer import from_bytes

#: Encodings a guess is trusted for: those a short run of names cannot fool easily.
_MULTIBYTE = frozenset(
    {
        "gb18030",
        "gbk",
        "gb2312",
        "big5",
        "big5hkscs",
        "cp950",
        "shift_jis",
        "cp932",
        "euc_jp",
        "euc_kr",
        "cp949",
        "johab",
    }
)
_DRIVE = re.compile(r"^[A-Za-z]:")
_MAX_NAME = 1024


def decode_names(raw: Sequence[bytes], default: str = "cp437") -> list[str]:
    """The names ``raw`` decoded with one encoding (see the module)."""
    joined = b"\n".join(raw)
    if joined.isascii():
        return [name.decode("ascii") for name in raw]
    try:
        return [name.decode("utf-8") for name in raw]
    except UnicodeDecodeError:
        pass
    best = from_bytes(joined).best()
    encoding = best.encoding if best is not None else None
    if encoding in _MULTIBYTE:
        try:
            return [name.decode(encoding) for name in raw]
        except (UnicodeDecodeError, LookupError):
            pass
    return [name.decode(default, errors="replace") for name in raw]


def clean_name(name: str) -> str:
    """The name with backslashes as slashes and ``.`` parts dropped, cut to a sane length."""
    parts = [part for part in name.replace("\\", "/").split("/") if part not in ("", ".")]
    leading = "/" if name.replace("\\", "/").startswith("/") else ""
    return (leading + "/".join(parts))[:_MAX_NAME]


def unsafe_reason(name: str) -> str | None:
    """Why an entry called ``name`` must not be unpacked, or None when it may be."""
    slashed = name.replace("\\", "/")
    if not slashed.strip("/"):
        return "the entry has no name"
    if slashed.startswith("/"):
        return f"the entry's path '{name[:200]}' is absolute"
    if _DRIVE.match(slashed):
        return f"the entry's path '{name[:200]}' names a drive"
    if ".." in PurePosixPath(slashed).parts:
        return f"the entry's path '{name[:200]}' climbs out of the archive (..)"
    if "\x00" in name:
        return "the entry's name holds a NUL character"
    return None
