"""What the e-mail formats share: a message's envelope, bodies and files, and their blocks.

The RFC 822 reader and the Outlook reader both fill a :class:`Message`; one
function then makes the document of it, so an ``.eml`` and an ``.msg`` of the
same mail give the same blocks: the subject as a heading, a paragraph of
``From:``/``To:``/``Cc:``/``Date:`` lines, the bodies, and each attached file
read through :func:`~docworker.formats.embedded.append_embedded`. A body is
plain text, HTML, or RTF as Outlook keeps it: RTF that carries HTML
(``\\fromhtml1``) is read as that HTML, other RTF by the RTF reader. Outlook's
embedded messages are turned back into RFC 822 bytes (:func:`to_rfc822`) so
that they go through the same dispatch as any attached ``.eml``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime

from docworker.document import BlockKind, DocumentBuilder, Metadata
from docworker.errors import CorruptDocument
from docworker.formats.base import ParseContext
from docworker.formats.embedded import append_embedded
from docworker.formats.rtf.html import encapsulated_html, encapsulation
from docworker.formats.rtf.parser import add_rtf
from docworker.formats.text.plain import split_paragraphs
from docworker.formats.web.html import parse_page, walk_page

#: A line quoting an earlier message in a plain-text reply.
_QUOTED_LINE = re.compile(r"^\s*>")
_LINE_BREAKS = re.compile(r"[\r\n]+")


@dataclass(frozen=True)
class Body:
    """One body of a message, already decoded: HTML markup or plain text."""

    text: str
    html: bool


@dataclass(frozen=True)
class RtfBody:
    """A body in RTF: native RTF, or HTML or plain text carried in RTF ([MS-OXRTFEX])."""

    data: bytes


@dataclass(frozen=True)
class MailFile:
    """A file carried by a message: its (untrusted) name and its bytes."""

    name: str | None
    data: bytes


@dataclass
class Message:
    """An e-mail as the readers find it; addresses as ``Name <address>``."""

    subject: str | None = None
    sender: str | None = None
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    date: datetime | None = None
    #: The date as the message writes it, when it writes one.
    date_text: str | None = None
    message_id: str | None = None
    in_reply_to: str | None = None
    bodies: list[Body | RtfBody] = field(default_factory=list)
    files: list[MailFile] = field(default_factory=list)

    @property
    def shown_date(self) -> str | None:
        if self.date_text:
            return self.date_text
        return format_datetime(self.date) if self.date is not None else None


def message_metadata(message: Message) -> Metadata:
    """Subject as title, sender as author, the date as created; the rest in ``extra``."""
    metadata = Metadata(
        title=message.subject,
        subject=message.subject,
        authors=[message.sender] if message.sender else [],
        created=message.date,
    )
    fields: dict[str, object] = {
        "from": message.sender,
        "to": message.to,
        "cc": message.cc,
        "bcc": message.bcc,
        "date": message.date.isoformat() if message.date is not None else message.date_text,
        "message_id": message.message_id,
        "in_reply_to": message.in_reply_to,
    }
    metadata.extra.update({key: value for key, value in fields.items() if value})
    return metadata


def add_message(builder: DocumentBuilder, message: Message, ctx: ParseContext) -> None:
    """Add a message's header blocks, its bodies, then its files, in that order."""
    _add_header_blocks(builder, message)
    header_blocks = len(builder.document.blocks)
    for body in message.bodies:
        if isinstance(body, RtfBody):
            _add_rtf_body(builder, body.data, ctx)
        elif body.html:
            _add_html_body(builder, body.text, ctx)
        else:
            _add_plain_body(builder, body.text)
    for file in message.files:
        append_embedded(builder, file.data, file.name, ctx)
    if len(builder.document.blocks) == header_blocks and not message.files:
        builder.warn("empty", "the message has no text and no attachment")


def _add_header_blocks(builder: DocumentBuilder, message: Message) -> None:
    if message.subject:
        builder.add(BlockKind.HEADING, message.subject, level=1)
    lines = [
        f"{label}: {value}"
        for label, value in (
            ("From", message.sender),
            ("To", ", ".join(message.to)),
            ("Cc", ", ".join(message.cc)),
            ("Bcc", ", ".join(message.bcc)),
            ("Date", message.shown_date),
        )
        if value
    ]
    builder.add(BlockKind.PARAGRAPH, "\n".join(lines))


def _add_html_body(builder: DocumentBuilder, text: str, ctx: ParseContext) -> None:
    try:
        root = parse_page(text)
    except CorruptDocument as exc:
        builder.warn("body-unreadable", f"an HTML body could not be read: {exc.detail}")
        return
    if root is not None:
        walk_page(builder, root, ctx.limits.max_cells, ctx.html_content)


def _add_rtf_body(builder: DocumentBuilder, data: bytes, ctx: ParseContext) -> None:
    if encapsulation(data) == "html":
        _add_html_body(builder, encapsulated_html(data), ctx)
    else:
        add_rtf(builder, data, ctx.limits.max_cells)


def _add_plain_body(builder: DocumentBuilder, text: str) -> None:
    """Paragraphs of a plain body; a paragraph quoting an earlier mail is a quote."""
    for paragraph in split_paragraphs(text):
        lines = paragraph.split("\n")
        if all(_QUOTED_LINE.match(line) for line in lines):
            unquoted = "\n".join(_QUOTED_LINE.sub("", line, count=1).strip() for line in lines)
            builder.add(BlockKind.QUOTE, unquoted)
        else:
            builder.add(BlockKind.PARAGRAPH, paragraph)


def to_rfc822(message: Message) -> bytes:
    """The message as RFC 822 bytes: its headers, its first body and its files attached."""
    mail = EmailMessage(policy=policy.default)
    headers = (
        ("Subject", message.subject),
        ("From", message.sender),
        ("To", ", ".join(message.to)),
        ("Cc", ", ".join(message.cc)),
        ("Date", message.shown_date),
        ("Message-ID", message.message_id),
        ("In-Reply-To", message.in_reply_to),
    )
    for name, value in headers:
        if value:
            # A header value may not hold a line break; a stored one would be refused.
            mail[name] = _LINE_BREAKS.sub(" ", value)
    html = next((b for b in message.bodies if isinstance(b, Body) and b.html), None)
    body = html or next(iter(message.bodies), None)
    if isinstance(body, RtfBody):
        mail.set_content(body.data, maintype="text", subtype="rtf", disposition="inline")
    elif body is not None:
        mail.set_content(body.text, subtype="html" if body.html else "plain")
    for file in message.files:
        mail.add_attachment(
            file.data, maintype="application", subtype="octet-stream", filename=file.name
        )
    return mail.as_bytes()
