"""E-mail: the corpus .eml and .msg, messages built with the standard library, Outlook
files built stream by stream, what the attachments of both become, and RTF bodies.

No corpus message has a compressed RTF body, so those are built here: the
specification's own compressed bytes (MS-OXRTFCP 3.1.1), and RTF written in
the test (HTML carried in RTF as MS-OXRTFEX writes it, native RTF, text
carried in RTF) compressed with literal runs by :mod:`compressed_rtf`."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from compound_file import (
    PT_BOOLEAN,
    PT_LONG,
    PT_SYSTIME,
    compound_file,
    msg_properties,
    property_record,
    utf16,
)
from compressed_rtf import SIMPLE, compress_literally, stored
from corpus_scoring import CORPUS, needs_corpus, parse

from docworker.document import BlockKind, Document
from docworker.errors import CorruptDocument, HostileInput, LimitExceeded
from docworker.formats.base import ParseContext, ParseLimits, Source
from docworker.formats.detect import detect
from docworker.formats.mail.outlook import codec_of
from docworker.formats.mail.parser import EmlParser, MsgParser
from docworker.render.document import render_text

EML, MSG = "message/rfc822", "application/vnd.ms-outlook"


def parse_eml(tmp_path: Path, mail: EmailMessage, ctx: ParseContext | None = None) -> Document:
    path = tmp_path / "mail.eml"
    path.write_bytes(mail.as_bytes())
    assert detect(path).mime == EML
    return parse(EmlParser(), path, EML, ctx)


def parse_msg(tmp_path: Path, streams: dict[str, bytes]) -> Document:
    path = tmp_path / "mail.msg"
    path.write_bytes(compound_file(streams))
    assert detect(path).mime == MSG
    return parse(MsgParser(), path, MSG)


def texts(doc: Document, kind: BlockKind | None = None) -> list[str]:
    return [b.text for b in doc.blocks if kind is None or b.kind is kind]


# -- the corpus ------------------------------------------------------------------------


@needs_corpus
def test_corpus_eml_envelope_html_body_and_inline_image() -> None:
    path = CORPUS / "office/email-html-inline-image.eml"
    doc = parse(EmlParser(), path, EML)
    meta = doc.metadata
    assert meta.title == "This is the subject"
    assert meta.authors == ["Sender <sender@test.com>"]
    assert meta.created == datetime(2018, 3, 21, 22, 14, 32, tzinfo=UTC)
    assert meta.extra["to"] == ["Receiver@test.com"]
    assert meta.extra["message_id"] == "<0123456789@test.com>"
    assert doc.blocks[0].kind is BlockKind.HEADING
    assert doc.blocks[0].text == "This is the subject"
    assert doc.blocks[1].text.splitlines() == [
        "From: Sender <sender@test.com>",
        "To: Receiver@test.com",
        "Date: Wed, 21 Mar 2018 14:14:32 -0800",
    ]
    text = render_text(doc)
    # The HTML alternative is read, and only it: the plain one is the same mail.
    assert "This document tests the ability of Apache Tika to extract content" in text
    assert "Using inline content" not in text
    assert doc.blocks[2].links[0].url == "http://www.w3.org/TR/xhtml1/"
    # The inline image is an attachment, detected from its bytes, not text.
    (image,) = doc.attachments
    assert (image.name, image.mime, image.size) == ("testimage.jpeg", "image/jpeg", 4699)
    assert image.path == "attachments/1/testimage.jpeg"
    assert "/9j/4AAQ" not in text


@needs_corpus
def test_corpus_msg_envelope_and_body() -> None:
    doc = parse(MsgParser(), CORPUS / "office/email-simple.msg", MSG)
    meta = doc.metadata
    assert meta.title == "Simple Email"
    assert meta.authors == ["Alice Example <alice@example.com>"]
    assert meta.extra["to"] == ["Bob Example <bob@example.com>"]
    assert meta.created == datetime(2026, 5, 20, 10, 30, tzinfo=UTC)
    assert texts(doc) == [
        "Simple Email",
        "From: Alice Example <alice@example.com>\nTo: Bob Example <bob@example.com>\n"
        "Date: Wed, 20 May 2026 10:30:00 +0000",
        "Hello Bob,",
        "This is a simple email body.",
    ]
    assert not doc.attachments
    assert not doc.warnings


# -- RFC 822 messages ------------------------------------------------------------------


def test_encoded_headers_and_bodies_are_decoded(tmp_path: Path) -> None:
    mail = EmailMessage()
    mail["Subject"] = "Grüße aus Köln – 東京"  # sent RFC 2047-encoded
    mail["From"] = "Jürgen Weiß <jw@example.com>"
    mail["To"] = "Ann <ann@example.com>, bob@example.com"
    mail["Cc"] = "Cy <cy@example.com>"
    mail["Message-ID"] = "<1@example.com>"
    mail["In-Reply-To"] = "<0@example.com>"
    mail.set_content("Liebe Ann,\n\nschöne Grüße.\n", cte="quoted-printable")
    mail.add_alternative(
        "<p>Liebe Ann,</p><p>schöne <b>Grüße</b>.</p>", subtype="html", cte="base64"
    )
    raw = mail.as_bytes()
    assert b"Gr=C3=BC=C3=9Fe" in raw or b"=?utf-8?" in raw
    doc = parse_eml(tmp_path, mail)
    assert doc.metadata.title == "Grüße aus Köln – 東京"
    assert doc.metadata.authors == ["Jürgen Weiß <jw@example.com>"]
    assert doc.metadata.extra["to"] == ["Ann <ann@example.com>", "bob@example.com"]
    assert doc.metadata.extra["cc"] == ["Cy <cy@example.com>"]
    assert doc.metadata.extra["in_reply_to"] == "<0@example.com>"
    assert "Cc: Cy <cy@example.com>" in doc.blocks[1].text
    # One alternative only: the HTML one.
    assert texts(doc)[2:] == ["Liebe Ann,", "schöne Grüße."]


def test_legacy_charset_plain_body_and_quoted_reply(tmp_path: Path) -> None:
    mail = EmailMessage()
    mail["From"] = "a@example.com"
    mail["Subject"] = "Re: plan"
    body = "Ça marche, à demain.\n\n> Le plan tient-il ?\n> Réponds vite.\n"
    mail.set_content(body.encode("iso-8859-1"), maintype="text", subtype="plain")
    mail.replace_header("Content-Type", 'text/plain; charset="iso-8859-1"')
    doc = parse_eml(tmp_path, mail)
    assert texts(doc, BlockKind.PARAGRAPH)[1] == "Ça marche, à demain."
    assert texts(doc, BlockKind.QUOTE) == ["Le plan tient-il ?\nRéponds vite."]


@pytest.mark.parametrize(
    ("delsp", "body", "expected"),
    [
        (
            "no",
            "A long line broken by the \nsender's client.\n\n>Quoted and \n>flowed.\n\n-- \nSig",
            ["A long line broken by the sender's client.", "--\nSig"],
        ),
        (
            "yes",
            # The sender adds a space at each break, inside a word or after the one there.
            "Split inside a wo \nrd and on.  \nEnd.\n\n>Quoted and  \n>flowed.\n\n-- \nSig",
            ["Split inside a word and on. End.", "--\nSig"],
        ),
    ],
)
def test_format_flowed_bodies_are_joined(
    tmp_path: Path, delsp: str, body: str, expected: list[str]
) -> None:
    mail = EmailMessage()
    mail["From"] = "a@example.com"
    mail["Subject"] = "Flowed"
    mail.set_content(body.encode(), maintype="text", subtype="plain", cte="8bit")
    mail.replace_header("Content-Type", f"text/plain; charset=utf-8; format=flowed; delsp={delsp}")
    doc = parse_eml(tmp_path, mail)
    assert texts(doc, BlockKind.PARAGRAPH)[1:] == expected
    assert texts(doc, BlockKind.QUOTE) == ["Quoted and flowed."]


def test_attachments_are_detected_listed_and_read(tmp_path: Path) -> None:
    mail = EmailMessage()
    mail["From"] = "a@example.com"
    mail["Subject"] = "files"
    mail.set_content("See the attached files.")
    notes = b"Minutes of the meeting\n\nWe agreed on the budget.\n"
    # Declared as an image and named with a path: neither is trusted.
    mail.add_attachment(notes, maintype="image", subtype="png", filename="../../notes.txt")
    mail.add_attachment(b'{"city": "Oslo"}', maintype="application", subtype="json")
    doc = parse_eml(tmp_path, mail)
    first, second = doc.attachments
    assert (first.name, first.mime, first.size) == ("notes.txt", "text/plain", len(notes))
    assert first.sha256 == hashlib.sha256(notes).hexdigest()
    assert first.path == "attachments/1/notes.txt"
    assert (second.name, second.mime) == ("part-2.json", "application/json")
    headings = [(b.text, b.level) for b in doc.blocks if b.kind is BlockKind.HEADING]
    assert headings == [("files", 1), ("Attachment: notes.txt", 2), ("Attachment: part-2.json", 2)]
    text = render_text(doc)
    assert text.index("See the attached") < text.index("We agreed on the budget.")
    assert "Oslo" in text


def test_calendar_alternative_is_a_file_and_html_only_once(tmp_path: Path) -> None:
    mail = EmailMessage()
    mail["From"] = "a@example.com"
    mail.set_content("Meeting at noon.")
    mail.add_alternative("<p>Meeting at noon.</p>", subtype="html")
    mail.add_alternative("BEGIN:VCALENDAR\nEND:VCALENDAR\n", subtype="calendar")
    doc = parse_eml(tmp_path, mail)
    assert texts(doc).count("Meeting at noon.") == 1
    assert [a.name for a in doc.attachments] == ["part-1.ics"]


def test_a_message_without_body_or_header_warns(tmp_path: Path) -> None:
    path = tmp_path / "empty.eml"
    path.write_bytes(b"From: a@example.com\nTo: b@example.com\n\n")
    doc = parse(EmlParser(), path, EML)
    assert [w.code for w in doc.warnings] == ["empty"]
    assert texts(doc) == ["From: a@example.com\nTo: b@example.com"]


def test_parts_nested_thousands_deep_are_refused_as_hostile(tmp_path: Path) -> None:
    path = tmp_path / "deep.eml"
    path.write_bytes(b"Content-Type: message/rfc822\n\n" * 5000 + b"Subject: x\n\nhi\n")
    with pytest.raises(HostileInput):
        parse(EmlParser(), path, EML)


def _multipart(parts: int) -> bytes:
    body = "".join(f"--b\nContent-Type: text/plain\n\npart {i}\n" for i in range(parts))
    return f"Content-Type: multipart/mixed; boundary=b\n\n{body}--b--\n".encode()


def test_mime_parts_past_the_limit_are_refused_as_they_are_parsed(tmp_path: Path) -> None:
    path = tmp_path / "parts.eml"
    ctx = ParseContext(limits=ParseLimits(max_mime_parts=4))
    path.write_bytes(_multipart(3))  # the message and its three parts
    assert texts(parse(EmlParser(), path, EML, ctx))
    path.write_bytes(_multipart(4))
    with pytest.raises(LimitExceeded, match="more than 4 MIME parts") as refused:
        parse(EmlParser(), path, EML, ctx)
    assert refused.value.fields["limit"] == "MIME parts"


def test_encoded_words_past_the_limit_in_a_header_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "words.eml"
    ctx = ParseContext(limits=ParseLimits(max_header_encoded_words=3))
    for words in (3, 4):
        subject = " ".join(["=?utf-8?q?caf=C3=A9?="] * words)
        path.write_bytes(f"From: a@example.com\nSubject: {subject}\n\nhi\n".encode())
        if words == 3:
            assert parse(EmlParser(), path, EML, ctx).metadata.title == "café" * 3
            continue
        with pytest.raises(LimitExceeded, match="Subject header holds 4 encoded words"):
            parse(EmlParser(), path, EML, ctx)
    # 20,000 of them were decoded for 11 s; refused, they cost one count.
    path.write_bytes(b"Subject: " + b"=?utf-8?q?x?= " * 20_000 + b"\n\nhi\n")
    with pytest.raises(LimitExceeded):
        parse(EmlParser(), path, EML)


# -- Outlook messages ------------------------------------------------------------------


def _attachment(index: int, streams: dict[str, bytes]) -> dict[str, bytes]:
    storage = f"__attach_version1.0_#{index:08X}"
    entries = {f"{storage}/{name}": data for name, data in streams.items()}
    return {f"{storage}/__properties_version1.0": msg_properties(header=8), **entries}


def _recipient(index: int, name: str, address: str, kind: int) -> dict[str, bytes]:
    storage = f"__recip_version1.0_#{index:08X}"
    return {
        f"{storage}/__properties_version1.0": msg_properties(
            property_record(0x0C15, PT_LONG, kind), header=8
        ),
        f"{storage}/__substg1.0_3001001F": utf16(name),
        f"{storage}/__substg1.0_39FE001F": utf16(address),
    }


def test_msg_code_page_recipients_html_body_and_attachments(tmp_path: Path) -> None:
    submitted = datetime(2024, 2, 29, 8, 15, tzinfo=UTC)
    ticks = int((submitted - datetime(1601, 1, 1, tzinfo=UTC)).total_seconds()) * 10_000_000
    inner = "__attach_version1.0_#00000001/__substg1.0_3701000D"
    streams = {
        "__properties_version1.0": msg_properties(
            property_record(0x3FFD, PT_LONG, 1251), property_record(0x0039, PT_SYSTIME, ticks)
        ),
        "__substg1.0_0037001E": "Отчёт за февраль".encode("cp1251"),
        "__substg1.0_0C1A001E": "Иван Петров".encode("cp1251"),
        "__substg1.0_5D01001F": utf16("ivan@example.com"),
        "__substg1.0_1000001E": "plain twin of the HTML body".encode("cp1251"),
        "__substg1.0_10130102": "<html><body><p>Отчёт готов.</p></body></html>".encode("cp1251"),
        **_recipient(0, "Anna", "anna@example.com", 1),
        **_recipient(1, "Boris", "boris@example.com", 2),
        **_attachment(
            0,
            {
                "__substg1.0_3707001F": utf16("..\\report.txt"),
                "__substg1.0_37010102": b"Revenue grew by a tenth.\n",
            },
        ),
        **_attachment(1, {"__substg1.0_3001001F": utf16("Earlier mail")}),
        f"{inner}/__properties_version1.0": msg_properties(header=24),
        f"{inner}/__substg1.0_0037001F": utf16("Earlier mail"),
        f"{inner}/__substg1.0_1000001F": utf16("The draft is attached to this one."),
    }
    doc = parse_msg(tmp_path, streams)
    meta = doc.metadata
    assert meta.title == "Отчёт за февраль"
    assert meta.authors == ["Иван Петров <ivan@example.com>"]
    assert (meta.extra["to"], meta.extra["cc"]) == (
        ["Anna <anna@example.com>"],
        ["Boris <boris@example.com>"],
    )
    assert meta.created == submitted
    text = render_text(doc)
    assert "Отчёт готов." in text
    assert "plain twin" not in text
    assert [(a.name, a.mime) for a in doc.attachments] == [
        ("report.txt", "text/plain"),
        ("Earlier mail", "message/rfc822"),
    ]
    assert "Revenue grew by a tenth." in text
    # The attached message is read as a message of its own, its headings under the attachment's.
    nested = [(b.text, b.level) for b in doc.blocks if b.kind is BlockKind.HEADING]
    assert ("Earlier mail", 3) in nested
    assert "The draft is attached to this one." in text


def test_msg_without_recipient_storages_uses_the_display_lists(tmp_path: Path) -> None:
    doc = parse_msg(
        tmp_path,
        {
            "__properties_version1.0": msg_properties(),
            "__substg1.0_0037001F": utf16("Note"),
            "__substg1.0_0E04001F": utf16("Ann; Bob"),
            "__substg1.0_0E03001F": utf16("Cy"),
            "__substg1.0_1000001F": utf16("Short note.\0"),
        },
    )
    assert (doc.metadata.extra["to"], doc.metadata.extra["cc"]) == (["Ann", "Bob"], ["Cy"])
    assert texts(doc)[-1] == "Short note."
    assert doc.metadata.created is None


def test_corrupt_msg_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.msg"
    path.write_bytes(compound_file({"x": b"1"})[:700])
    with pytest.raises(CorruptDocument):
        MsgParser().parse(Source(path=path, mime=MSG), ParseContext())


@pytest.mark.parametrize(
    ("code_page", "codec"),
    [(1252, "cp1252"), (65001, "utf-8"), (28592, "iso8859-2"), (936, "gbk"), (99999, None)],
)
def test_code_pages(code_page: int, codec: str | None) -> None:
    assert codec_of(code_page) == codec


# -- RTF bodies ------------------------------------------------------------------------

#: An HTML mail as Outlook keeps it when the HTML exists only inside the RTF body.
HTML_IN_RTF = (
    rb"{\rtf1\ansi\ansicpg1252\fromhtml1 \deff0{\fonttbl{\f0\fswiss Arial;}}"
    rb"{\*\htmltag64}{\*\htmltag <html><body>}"
    rb"{\*\htmltag <h2>}\htmlrtf {\b \htmlrtf0 Quarterly figures\htmlrtf }\htmlrtf0 "
    rb"{\*\htmltag </h2>}\htmlrtf \par \htmlrtf0 "
    rb"{\*\htmltag <table><tr><td>}Region\htmlrtf \tab \htmlrtf0 {\*\htmltag </td><td>}Sales"
    rb"{\*\htmltag </td></tr><tr><td>}Nord\'e9\htmlrtf \tab \htmlrtf0 {\*\htmltag </td><td>}12"
    rb"{\*\htmltag </td></tr></table>}\htmlrtf \par \htmlrtf0 "
    rb"{\*\htmltag <p>}See {\*\htmltag <a href=\"https://example.com/report\">}the report"
    rb"{\*\htmltag </a>}.{\*\htmltag </p>}{\*\htmltag </body></html>}}"
)
NATIVE_RTF = (
    rb"{\rtf1\ansi\deff0{\fonttbl{\f0 Arial;}}"
    rb"\trowd\cellx2000\cellx4000\intbl Item\cell Price\cell\row"
    rb"\trowd\cellx2000\cellx4000\intbl Tea\cell 3\cell\row"
    rb"\pard Thanks for the order.\par}"
)
PLAIN_IN_RTF = (
    rb"{\rtf1\ansi\fromtext \deff0{\fonttbl{\f0 Courier;}}Hi,\par\par > earlier words\par}"
)
RTF = "__substg1.0_10090102"
PLAIN = "__substg1.0_1000001F"


def _msg_with(
    *records: bytes, rtf: bytes | None = None, plain: str | None = None
) -> dict[str, bytes]:
    """The streams of a message with fixed properties ``records`` and the bodies given."""
    streams = {
        "__properties_version1.0": msg_properties(*records),
        "__substg1.0_0037001F": utf16("Figures"),
    }
    if rtf is not None:
        streams[RTF] = rtf
    if plain is not None:
        streams[PLAIN] = utf16(plain)
    return streams


def test_msg_html_kept_only_in_compressed_rtf_is_read_as_html(tmp_path: Path) -> None:
    streams = _msg_with(rtf=compress_literally(HTML_IN_RTF), plain="Quarterly figures")
    doc = parse_msg(tmp_path, streams)
    headings = [(b.text, b.level) for b in doc.blocks if b.kind is BlockKind.HEADING]
    assert headings == [("Figures", 1), ("Quarterly figures", 2)]
    (table,) = [b.table for b in doc.blocks if b.table is not None]
    assert table.grid() == [["Region", "Sales"], ["Nordé", "12"]]
    (paragraph,) = [b for b in doc.blocks if b.text == "See the report."]
    assert [link.url for link in paragraph.links] == ["https://example.com/report"]
    assert not doc.warnings


@pytest.mark.parametrize(
    ("rtf", "in_sync", "reads_rtf"),
    [
        # RTF holding HTML is richer than the plain body beside it.
        (HTML_IN_RTF, None, True),
        # Native RTF in step with the plain body has the table the plain body lost.
        (NATIVE_RTF, None, True),
        # Out of step: the plain body was edited after the RTF was made.
        (NATIVE_RTF, 0, False),
        # RTF carrying plain text copies the plain body: the plain body is read.
        (PLAIN_IN_RTF, None, False),
    ],
    ids=["html-in-rtf", "native-in-sync", "native-out-of-sync", "text-in-rtf"],
)
def test_msg_rtf_or_plain_body(
    tmp_path: Path, rtf: bytes, in_sync: int | None, reads_rtf: bool
) -> None:
    records = [] if in_sync is None else [property_record(0x0E1F, PT_BOOLEAN, in_sync)]
    plain = "The plain body.\n\n> A quoted line."
    doc = parse_msg(tmp_path, _msg_with(*records, rtf=compress_literally(rtf), plain=plain))
    tables = [b for b in doc.blocks if b.kind is BlockKind.TABLE]
    assert len(tables) == int(reads_rtf)
    assert ("The plain body." in texts(doc)) is not reads_rtf
    assert texts(doc, BlockKind.QUOTE) == ([] if reads_rtf else ["A quoted line."])


def test_msg_rtf_only_bodies_are_read_by_the_rtf_reader(tmp_path: Path) -> None:
    # The specification's own compressed bytes, and RTF stored uncompressed (MELA).
    doc = parse_msg(tmp_path, _msg_with(rtf=SIMPLE))
    assert texts(doc)[-1] == "hello world"
    doc = parse_msg(tmp_path, _msg_with(rtf=stored(PLAIN_IN_RTF)))
    assert texts(doc, BlockKind.PARAGRAPH) == ["Hi,", "> earlier words"]


def test_msg_damaged_rtf_body_is_noted_and_the_plain_body_read(tmp_path: Path) -> None:
    packed = bytearray(compress_literally(NATIVE_RTF))
    packed[40] ^= 0xFF  # the CRC no longer matches
    doc = parse_msg(tmp_path, _msg_with(rtf=bytes(packed), plain="The plain words."))
    assert texts(doc)[-1] == "The plain words."
    (warning,) = doc.warnings
    assert warning.code == "body-unreadable"
    assert "CRC" in warning.message


def test_an_attached_msg_with_an_rtf_body_keeps_it_as_its_body(tmp_path: Path) -> None:
    inner = "__attach_version1.0_#00000000/__substg1.0_3701000D"
    streams = {
        **_msg_with(plain="See the attached mail."),
        **_attachment(0, {"__substg1.0_3001001F": utf16("Order")}),
        f"{inner}/__properties_version1.0": msg_properties(header=24),
        f"{inner}/__substg1.0_0037001F": utf16("Order"),
        f"{inner}/{RTF}": compress_literally(NATIVE_RTF),
    }
    doc = parse_msg(tmp_path, streams)
    assert [(a.name, a.mime) for a in doc.attachments] == [("Order", "message/rfc822")]
    assert "Thanks for the order." in render_text(doc)
    assert len([b for b in doc.blocks if b.kind is BlockKind.TABLE]) == 1


def test_an_eml_inline_rtf_part_is_a_body(tmp_path: Path) -> None:
    mail = EmailMessage()
    mail["From"] = "a@example.com"
    mail.set_content(HTML_IN_RTF, maintype="text", subtype="rtf", disposition="inline")
    doc = parse_eml(tmp_path, mail)
    assert "Quarterly figures" in texts(doc, BlockKind.HEADING)
    assert not doc.attachments
