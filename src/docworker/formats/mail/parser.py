"""E-mail files: RFC 822 messages (``.eml``) and Outlook messages (``.msg``).

An ``.eml`` is read by the standard library's ``email`` package with its
modern policy, which decodes RFC 2047 headers, RFC 2231 file names and the
transfer encodings (quoted-printable, base64). The MIME tree is walked once:
of a ``multipart/alternative`` only the richest part is read (HTML over plain
text, the last of equals, as RFC 2046 orders them), so no text comes twice;
plain, HTML and RTF parts that are not attachments are bodies; every other leaf
(inline images included) and every attached message is a file, read through
the embedded-document dispatch. An ``.msg`` is read by :mod:`.outlook`.
Both become the same blocks (see :mod:`.message`).

The standard library's parser is linear but slow per part (it parses each part's
headers) and decodes many encoded words in one header in more than linear time,
so an ``.eml`` is refused past ``limits.max_mime_parts`` parts, counted as they
are made, and past ``limits.max_header_encoded_words`` encoded words in any
header, counted in the raw headers before one is decoded.
"""

from __future__ import annotations

from email import policy
from email.message import EmailMessage, MIMEPart
from email.parser import BytesParser
from email.policy import Policy
from mimetypes import guess_extension
from typing import ClassVar

from docworker.document import Document, DocumentBuilder
from docworker.errors import CorruptDocument, HostileInput, LimitExceeded
from docworker.formats.base import ParseContext, ParseLimits, Source
from docworker.formats.encoding import decode_text
from docworker.formats.mail.message import (
    Body,
    MailFile,
    Message,
    RtfBody,
    add_message,
    message_metadata,
)
from docworker.formats.mail.outlook import read_msg
from docworker.formats.web.html import decode_html

_RTF_TYPES = frozenset({"text/rtf", "application/rtf"})
_BODY_TYPES = frozenset({"text/plain", "text/html"}) | _RTF_TYPES
_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})


def _header(mail: MIMEPart, name: str) -> str | None:
    """A header's decoded value on one line; None when missing or unreadable."""
    try:
        value = mail.get(name)
    except (ValueError, TypeError, IndexError, LookupError):
        # The header parser gives up on some malformed values; the rest still reads.
        return None
    text = " ".join(str(value).split()) if value is not None else ""
    return text or None


def _addresses(mail: EmailMessage, name: str) -> list[str]:
    """Each address of an address header as ``Name <address>`` (or as written)."""
    try:
        value = mail.get(name)
        addresses = getattr(value, "addresses", None)
        if addresses is not None:
            return [" ".join(str(a).split()) for a in addresses if str(a).strip()]
    except (ValueError, TypeError, IndexError, LookupError):
        pass
    text = _header(mail, name)
    return [text] if text else []


def _envelope(mail: EmailMessage) -> Message:
    sender = _addresses(mail, "from")
    message = Message(
        subject=_header(mail, "subject"),
        sender=", ".join(sender) or None,
        to=_addresses(mail, "to"),
        cc=_addresses(mail, "cc"),
        bcc=_addresses(mail, "bcc"),
        date_text=_header(mail, "date"),
        message_id=_header(mail, "message-id"),
        in_reply_to=_header(mail, "in-reply-to"),
    )
    try:
        message.date = getattr(mail.get("date"), "datetime", None)
    except (ValueError, TypeError, IndexError, LookupError):
        message.date = None
    return message


def _contains(part: MIMEPart, content_type: str) -> bool:
    """Whether ``part`` is, or holds among its non-attachment parts, ``content_type``."""
    if part.get_content_type() in _MESSAGE_TYPES:
        return False
    if part.is_multipart():
        return any(_contains(sub, content_type) for sub in part.iter_parts())
    return part.get_content_type() == content_type and not _is_file(part)


def _richest(alternatives: list[MIMEPart]) -> MIMEPart | None:
    """The alternative to read: the last holding HTML, else the last holding plain text."""
    for wanted in ("text/html", "text/plain"):
        holding = [part for part in alternatives if _contains(part, wanted)]
        if holding:
            return holding[-1]
    return alternatives[-1] if alternatives else None


def _filename(part: MIMEPart) -> str | None:
    """The part's file name (RFC 2231 and 2047 decoded), None when it has none or a bad one."""
    try:
        return part.get_filename() or None
    except (ValueError, TypeError, IndexError, LookupError):
        return None


def _is_file(part: MIMEPart) -> bool:
    """A leaf that is a file rather than a body: not plain/HTML/RTF, or named, or attached."""
    return (
        part.get_content_type() not in _BODY_TYPES
        or part.get_content_disposition() == "attachment"
        or _filename(part) is not None
    )


def _collect(part: MIMEPart, message: Message) -> None:
    """Add ``part``'s bodies and files to ``message``, in the order they come."""
    content_type = part.get_content_type()
    if content_type in _MESSAGE_TYPES:
        message.files.append(_attached_message(part))
    elif content_type == "multipart/alternative":
        alternatives = list(part.iter_parts())
        chosen = _richest(alternatives)
        for alternative in alternatives:
            # An alternative other than a body (a calendar invitation) is a file of its own.
            other = alternative.get_content_type() not in _BODY_TYPES and not (
                alternative.is_multipart()
            )
            if alternative is chosen or other:
                _collect(alternative, message)
    elif part.is_multipart():
        for sub in part.iter_parts():
            _collect(sub, message)
    elif _is_file(part):
        message.files.append(MailFile(_file_name(part, len(message.files)), _payload(part)))
    else:
        message.bodies.append(_body(part))


def _payload(part: MIMEPart) -> bytes:
    """A leaf's bytes with its transfer encoding undone (a bad encoding is read as is)."""
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _body(part: MIMEPart) -> Body | RtfBody:
    data = _payload(part)
    if part.get_content_type() in _RTF_TYPES:
        return RtfBody(data)
    charset = part.get_content_charset()
    if part.get_content_type() == "text/html":
        return Body(decode_html(data, charset)[0], html=True)
    text = decode_text(data, charset).text
    if _param(part, "format") == "flowed":
        text = unflow(text, delete_space=_param(part, "delsp") == "yes")
    return Body(text, html=False)


def _param(part: MIMEPart, name: str) -> str:
    """A ``Content-Type`` parameter, lower-cased ('' when absent)."""
    value = part.get_param(name)
    return value.lower() if isinstance(value, str) else ""


def unflow(text: str, *, delete_space: bool) -> str:
    """A ``format=flowed`` body (RFC 3676) with its soft line breaks undone.

    A line that ends in a space goes on on the next line of the same quote depth; with
    ``delsp=yes`` that space was added by the sender only to mark the break and goes.
    The one space a sender puts before a line starting with a space, ``>`` or ``From``
    goes too; the signature separator (``-- ``) is never a soft break.
    """
    lines: list[str] = []
    open_text: str | None = None  # a flowed line still going on
    open_depth = 0
    for raw in text.split("\n"):
        line = raw.removesuffix("\r")
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:].removeprefix(" ")
        if open_text is not None and depth != open_depth:
            lines.append(_quoted(open_depth, open_text))
            open_text = None
        if open_text is not None:
            content = open_text + content
        if content.endswith(" ") and content != "-- ":
            open_text, open_depth = (content[:-1] if delete_space else content), depth
            continue
        open_text = None
        lines.append(_quoted(depth, content))
    if open_text is not None:
        lines.append(_quoted(open_depth, open_text))
    return "\n".join(lines)


def _quoted(depth: int, text: str) -> str:
    return f"{'>' * depth} {text}" if depth else text


def _file_name(part: MIMEPart, position: int) -> str:
    """The part's file name, else one made of its position and type."""
    extension = guess_extension(part.get_content_type()) or ".bin"
    return _filename(part) or f"part-{position + 1}{extension}"


def _attached_message(part: MIMEPart) -> MailFile:
    """An attached message as a file of its own: its RFC 822 bytes."""
    inner = part.get_payload(0) if part.is_multipart() else None
    if not isinstance(inner, EmailMessage):
        return MailFile(_filename(part) or "message.eml", _payload(part))
    subject = _header(inner, "subject")
    name = _filename(part) or (f"{subject}.eml" if subject else "message.eml")
    return MailFile(name, inner.as_bytes(policy=policy.default))


class _PartCounter:
    """The message factory of the MIME parser's policy: it counts the parts the parser
    makes, and refuses the message at the first past ``maximum``, before its headers
    are parsed."""

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.count = 0

    def __call__(self, policy: Policy[EmailMessage]) -> EmailMessage:
        self.count += 1
        if self.count > self.maximum:
            raise LimitExceeded(
                "MIME parts",
                self.count,
                self.maximum,
                f"the message has more than {self.maximum} MIME parts, "
                "over the configured limit (limits.max_mime_parts)",
            )
        return EmailMessage(policy=policy)


def _parse_mime(data: bytes, limits: ParseLimits) -> EmailMessage:
    """The MIME tree of ``data``, within the limits on parts and on encoded words."""
    counting = policy.default.clone(message_factory=_PartCounter(limits.max_mime_parts))
    mail = BytesParser(policy=counting).parsebytes(data)
    if not isinstance(mail, EmailMessage):  # the factory always makes these
        raise CorruptDocument("eml", "the file is not a MIME message")
    for part in mail.walk():
        for name, value in part.raw_items():
            words = value.count("=?")
            if words > limits.max_header_encoded_words:
                raise LimitExceeded(
                    "encoded words in a header",
                    words,
                    limits.max_header_encoded_words,
                    f"the {name} header holds {words} encoded words, over the configured "
                    f"limit of {limits.max_header_encoded_words} "
                    "(limits.max_header_encoded_words)",
                )
    return mail


def read_eml(data: bytes, limits: ParseLimits) -> tuple[Message, list[str]]:
    """The message in RFC 822 ``data``, and the kinds of defect the MIME parser met."""
    try:
        mail = _parse_mime(data, limits)
        message = _envelope(mail)
        _collect(mail, message)
        defects = sorted({type(d).__name__ for part in mail.walk() for d in part.defects})
    except RecursionError as exc:
        # Thousands of nested parts: no mail client shows such a thing.
        raise HostileInput("the MIME parts nest past any real message", format="eml") from exc
    return message, defects


class EmlParser:
    """``message/rfc822``: envelope, bodies (HTML preferred) and attachments read in turn."""

    name: ClassVar[str] = "eml"
    media_types: ClassVar[frozenset[str]] = frozenset({"message/rfc822"})

    def parse(self, source: Source, ctx: ParseContext) -> Document:
        message, defects = read_eml(source.path.read_bytes(), ctx.limits)
        builder = DocumentBuilder(
            self.name, source.mime, message_metadata(message), limits=ctx.limits
        )
        if defects:
            builder.warn(
                "mime-defects", "the MIME structure has defects, read past: " + ", ".join(defects)
            )
        add_message(builder, message, ctx)
        ctx.progress(1.0, f"{len(message.files)} attachments")
        return builder.finish()


class MsgParser:
    """``application/vnd.ms-outlook``: an Outlook message read from its MAPI properties."""

    name: ClassVar[str] = "msg"
    media_types: ClassVar[frozenset[str]] = frozenset({"application/vnd.ms-outlook"})

    def parse(self, source: Source, ctx: ParseContext) -> Document:
        message, notes = read_msg(source.path, ctx.limits.max_depth)
        builder = DocumentBuilder(
            self.name, source.mime, message_metadata(message), limits=ctx.limits
        )
        for code, text in notes:
            builder.warn(code, text)
        add_message(builder, message, ctx)
        ctx.progress(1.0, f"{len(message.files)} attachments")
        return builder.finish()
