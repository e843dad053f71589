"""Outlook ``.msg`` files: the MAPI properties of a message, read out of its compound file.

An ``.msg`` is an OLE2 compound file ([MS-OXMSG]). Each variable-length
property is a stream ``__substg1.0_IIIITTTT`` (``IIII`` the property id,
``TTTT`` its type: ``001F`` UTF-16 text, ``001E`` 8-bit text in the message's
code page, ``0102`` binary); fixed-length ones (numbers, times) are 16-byte
records in ``__properties_version1.0`` after a header whose size depends on
what holds it. Recipients and attachments are storages of their own; an
attached message is a message storage inside its attachment, read the same way
and handed on as RFC 822 bytes.

The body is the HTML one when there is one. Outlook often keeps an HTML mail's
HTML only inside its compressed RTF body (``PR_RTF_COMPRESSED``, unpacked by
:mod:`.lzfu`), so that RTF comes next when it carries HTML, or when there is no
plain body, or when it is native RTF that Outlook says is in step with the
plain body (``PR_RTF_IN_SYNC``: it has the formatting the plain body lost).
RTF carrying plain text (``\\fromtext``) yields to the plain body it copies.
An RTF body that cannot be unpacked is noted, and the plain body read instead.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import olefile

from docworker.errors import CorruptDocument
from docworker.formats.cfb import DAMAGE, open_compound
from docworker.formats.embedded import safe_name
from docworker.formats.encoding import decode_text, normalise_codec
from docworker.formats.mail import lzfu
from docworker.formats.mail.message import Body, MailFile, Message, RtfBody, to_rfc822
from docworker.formats.rtf.html import encapsulation
from docworker.formats.web.html import decode_html

_PROPERTIES = "__properties_version1.0"
_RECIPIENT_PREFIX = "__recip_version1.0_#"
_ATTACHMENT_PREFIX = "__attach_version1.0_#"
_EMBEDDED_MESSAGE = "__substg1.0_3701000D"
#: Header bytes before the property records of each kind of storage ([MS-OXMSG] 2.4).
_TOP_HEADER, _EMBEDDED_HEADER, _SUB_HEADER = 32, 24, 8
_RECORD = 16

_PT_LONG, _PT_BOOLEAN, _PT_SYSTIME = 0x0003, 0x000B, 0x0040
_SUBJECT, _BODY, _HTML = 0x0037, 0x1000, 0x1013
_RTF_COMPRESSED, _RTF_IN_SYNC = 0x1009, 0x0E1F
_SENDER_NAMES = (0x0C1A, 0x0042)
_SENDER_ADDRESSES = (0x5D01, 0x0065, 0x0C1F)
_DISPLAY_TO, _DISPLAY_CC, _DISPLAY_BCC = 0x0E04, 0x0E03, 0x0E02
_SUBMIT_TIME, _DELIVERY_TIME = 0x0039, 0x0E06
_MESSAGE_ID, _IN_REPLY_TO = 0x1035, 0x1042
_MESSAGE_CODEPAGE, _INTERNET_CODEPAGE = 0x3FFD, 0x3FDE
_RECIPIENT_TYPE, _DISPLAY_NAME, _EMAIL_ADDRESS, _SMTP_ADDRESS = 0x0C15, 0x3001, 0x3003, 0x39FE
_LONG_FILENAME, _FILENAME, _ATTACH_DATA = 0x3707, 0x3704, 0x3701
_TO, _CC, _BCC = 1, 2, 3

#: Windows code pages whose Python codec is not ``cp<number>``.
_CODE_PAGES = {
    65001: "utf-8",
    1200: "utf-16-le",
    1201: "utf-16-be",
    20127: "ascii",
    20866: "koi8-r",
    21866: "koi8-u",
    10000: "mac-roman",
    50220: "iso2022-jp",
    50221: "iso2022-jp",
    50222: "iso2022-jp",
    51932: "euc-jp",
    51949: "euc-kr",
    52936: "hz",
    54936: "gb18030",
    936: "gbk",
    28603: "iso8859-13",
    28605: "iso8859-15",
}
_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)


def codec_of(code_page: int | None) -> str | None:
    """The Python codec of a Windows code page number, None when unknown."""
    if not code_page:
        return None
    if 28591 <= code_page <= 28599:
        return normalise_codec(f"iso8859-{code_page - 28590}")
    return normalise_codec(_CODE_PAGES.get(code_page, f"cp{code_page}"))


def _filetime(value: bytes) -> datetime | None:
    ticks = int.from_bytes(value, "little")
    if ticks == 0:
        return None
    try:
        return _FILETIME_EPOCH + timedelta(microseconds=ticks // 10)
    except OverflowError:
        return None


class _Storage:
    """One storage of properties: the message itself, a recipient, an attachment."""

    def __init__(self, ole: olefile.OleFileIO, path: list[str], header: int) -> None:
        self.ole = ole
        self.path = path
        self.fixed: dict[int, tuple[int, bytes]] = {}
        data = self.stream(_PROPERTIES) or b""
        for offset in range(header, len(data) - _RECORD + 1, _RECORD):
            tag = int.from_bytes(data[offset : offset + 4], "little")
            self.fixed[tag >> 16] = (tag & 0xFFFF, data[offset + 8 : offset + 16])
        self.codec = codec_of(self.number(_MESSAGE_CODEPAGE) or self.number(_INTERNET_CODEPAGE))

    def stream(self, name: str) -> bytes | None:
        path = [*self.path, name]
        if self.ole.get_type(path) != olefile.STGTY_STREAM:
            return None
        return bytes(self.ole.openstream(path).read())

    def number(self, prop: int) -> int | None:
        kind, value = self.fixed.get(prop, (0, b""))
        return int.from_bytes(value[:4], "little", signed=True) if kind == _PT_LONG else None

    def flag(self, prop: int) -> bool | None:
        kind, value = self.fixed.get(prop, (0, b""))
        return any(value[:2]) if kind == _PT_BOOLEAN else None

    def time(self, prop: int) -> datetime | None:
        kind, value = self.fixed.get(prop, (0, b""))
        return _filetime(value) if kind == _PT_SYSTIME else None

    def binary(self, prop: int) -> bytes | None:
        return self.stream(f"__substg1.0_{prop:04X}0102")

    def text(self, prop: int) -> str | None:
        """A text property, UTF-16 or 8-bit; trailing NULs and blank values dropped."""
        wide = self.stream(f"__substg1.0_{prop:04X}001F")
        if wide is not None:
            text = wide.decode("utf-16-le", errors="replace")
        else:
            narrow = self.stream(f"__substg1.0_{prop:04X}001E")
            if narrow is None:
                return None
            text = decode_text(narrow, self.codec).text
        text = text.rstrip("\0").strip()
        return text or None

    def first_text(self, *props: int) -> str | None:
        return next((t for t in map(self.text, props) if t), None)

    def children(self, prefix: str) -> list[list[str]]:
        """The storages directly inside this one whose names start with ``prefix``."""
        depth = len(self.path) + 1
        found = [
            entry
            for entry in self.ole.listdir(streams=False, storages=True)
            if len(entry) == depth and entry[:-1] == self.path and entry[-1].startswith(prefix)
        ]
        return sorted(found)


def _address(name: str | None, address: str | None) -> str | None:
    """``Name <address>``; only one of them when the other is missing or the same."""
    if address is not None and "@" not in address:
        address = None  # an Exchange distinguished name, not an address
    if name and address and name.strip("'\"") != address:
        return f"{name} <{address}>"
    return address or name


def _split_display(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(";") if part.strip()]


def _recipients(storage: _Storage, message: Message) -> None:
    lists = {_TO: message.to, _CC: message.cc, _BCC: message.bcc}
    for path in storage.children(_RECIPIENT_PREFIX):
        recipient = _Storage(storage.ole, path, _SUB_HEADER)
        shown = _address(
            recipient.text(_DISPLAY_NAME),
            recipient.first_text(_SMTP_ADDRESS, _EMAIL_ADDRESS),
        )
        if shown:
            lists.get(recipient.number(_RECIPIENT_TYPE) or _TO, message.to).append(shown)
    # Without recipient storages, the display lists are all there is.
    for kind, prop in ((_TO, _DISPLAY_TO), (_CC, _DISPLAY_CC), (_BCC, _DISPLAY_BCC)):
        if not lists[kind]:
            lists[kind].extend(_split_display(storage.text(prop)))


def _bodies(storage: _Storage, notes: list[tuple[str, str]]) -> list[Body | RtfBody]:
    """The one body to read: HTML, else RTF or plain text as the module's docstring says."""
    html = storage.binary(_HTML)
    if html:
        charset = codec_of(storage.number(_INTERNET_CODEPAGE) or storage.number(_MESSAGE_CODEPAGE))
        return [Body(decode_html(html, charset)[0], html=True)]
    html_text = storage.text(_HTML)
    if html_text:
        return [Body(html_text, html=True)]
    plain = storage.text(_BODY)
    rtf = _rtf_body(storage, notes)
    if rtf is not None and (plain is None or _rtf_is_richer(storage, rtf)):
        return [RtfBody(rtf)]
    return [Body(plain, html=False)] if plain else []


def _rtf_body(storage: _Storage, notes: list[tuple[str, str]]) -> bytes | None:
    """The compressed RTF body unpacked; None (noted when damaged) when there is none."""
    packed = storage.binary(_RTF_COMPRESSED)
    if not packed:
        return None
    try:
        return lzfu.decompress(packed) or None
    except CorruptDocument as exc:
        notes.append(("body-unreadable", f"the RTF body could not be unpacked: {exc.detail}"))
        return None


def _rtf_is_richer(storage: _Storage, rtf: bytes) -> bool:
    """Whether the RTF body says more than the plain body beside it."""
    carried = encapsulation(rtf)
    if carried is not None:
        return carried == "html"
    return storage.flag(_RTF_IN_SYNC) is not False


def _attachments(
    storage: _Storage, depth_left: int, notes: list[tuple[str, str]]
) -> list[MailFile]:
    files: list[MailFile] = []
    for path in storage.children(_ATTACHMENT_PREFIX):
        attachment = _Storage(storage.ole, path, _SUB_HEADER)
        name = attachment.first_text(_LONG_FILENAME, _FILENAME, _DISPLAY_NAME)
        data = attachment.binary(_ATTACH_DATA)
        if data is not None:
            files.append(MailFile(name, data))
            continue
        inner = [*path, _EMBEDDED_MESSAGE]
        if storage.ole.get_type(inner) != olefile.STGTY_STORAGE:
            notes.append(("attachment-failed", f"{safe_name(name)}: an OLE object, not read"))
        elif depth_left <= 0:
            notes.append(("embedded-depth-limit", f"{safe_name(name)}: nested too deep, not read"))
        else:
            nested = _message(_Storage(storage.ole, inner, _EMBEDDED_HEADER), depth_left - 1, notes)
            fallback = f"{nested.subject}.eml" if nested.subject else "message.eml"
            files.append(MailFile(name or fallback, to_rfc822(nested)))
    return files


def _message(storage: _Storage, depth_left: int, notes: list[tuple[str, str]]) -> Message:
    date = storage.time(_SUBMIT_TIME) or storage.time(_DELIVERY_TIME)
    message = Message(
        subject=storage.text(_SUBJECT),
        sender=_address(storage.first_text(*_SENDER_NAMES), storage.first_text(*_SENDER_ADDRESSES)),
        date=date,
        message_id=storage.text(_MESSAGE_ID),
        in_reply_to=storage.text(_IN_REPLY_TO),
        bodies=_bodies(storage, notes),
    )
    _recipients(storage, message)
    message.files = _attachments(storage, depth_left, notes)
    return message


def read_msg(path: Path, max_depth: int) -> tuple[Message, list[tuple[str, str]]]:
    """The message in an ``.msg`` file, and (code, text) notes on what was left out.

    Attached messages are read ``max_depth`` levels down at most.
    """
    notes: list[tuple[str, str]] = []
    try:
        with open_compound(path) as ole:
            message = _message(_Storage(ole, [], _TOP_HEADER), max_depth, notes)
    except DAMAGE as exc:
        raise CorruptDocument("msg", f"the compound file cannot be read: {exc}") from exc
    return message, notes
