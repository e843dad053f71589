"""Embedded documents: nested e-mails, the depth, count and byte limits, failing
children, untrusted names, and the function the other parsers call."""

from __future__ import annotations

import gzip
import tempfile
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from corpus_scoring import parse

from docworker.document import BlockKind, Document, DocumentBuilder
from docworker.formats.base import ParseContext, ParseLimits
from docworker.formats.embedded import append_embedded, safe_name
from docworker.formats.mail.parser import EmlParser
from docworker.render.document import render_text

EML = "message/rfc822"


def mail(subject: str, body: str, files: dict[str, bytes] | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "a@example.com"
    message["Subject"] = subject
    message.set_content(body)
    for name, data in (files or {}).items():
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return message


def parse_mail(
    tmp_path: Path, message: EmailMessage, limits: ParseLimits | None = None
) -> Document:
    path = tmp_path / "outer.eml"
    path.write_bytes(message.as_bytes())
    return parse(EmlParser(), path, EML, ParseContext(limits=limits or ParseLimits()))


def nested(depth: int) -> EmailMessage:
    """A mail holding a mail holding ... ``depth`` levels of attached mails, then a note."""
    message = mail(f"level {depth}", f"Body of level {depth}.", {"note.txt": b"Deepest note.\n"})
    for level in range(depth - 1, -1, -1):
        outer = mail(f"level {level}", f"Body of level {level}.")
        outer.add_attachment(message, filename=f"level-{level + 1}.eml")
        message = outer
    return message


@pytest.fixture
def private_tmp(tmp_path: Path) -> Iterator[Path]:
    """Temporary files of the code under test go here, to be looked at afterwards."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    saved, tempfile.tempdir = tempfile.tempdir, str(folder)
    try:
        yield folder
    finally:
        tempfile.tempdir = saved


def test_a_mail_attached_to_a_mail_is_read_through_the_dispatch(tmp_path: Path) -> None:
    doc = parse_mail(tmp_path, nested(1))
    headings = [(b.text, b.level) for b in doc.blocks if b.kind is BlockKind.HEADING]
    assert headings == [
        ("level 0", 1),
        ("Attachment: level-1.eml", 2),
        ("level 1", 3),
        ("Attachment: note.txt", 4),
    ]
    text = render_text(doc)
    assert text.index("Body of level 0.") < text.index("Body of level 1.")
    assert text.index("Body of level 1.") < text.index("Deepest note.")
    # The whole tree is listed; the grandchild's path nests under its parent's.
    assert [(a.path, a.mime) for a in doc.attachments] == [
        ("attachments/1/level-1.eml", EML),
        ("attachments/1/level-1.eml/attachments/1/note.txt", "text/plain"),
    ]
    assert not doc.warnings


def test_past_the_depth_limit_children_are_listed_not_read(tmp_path: Path) -> None:
    doc = parse_mail(tmp_path, nested(3), ParseLimits(max_depth=2))
    text = render_text(doc)
    assert "Body of level 2." in text
    assert "Body of level 3." not in text
    paths = [a.path for a in doc.attachments]
    assert (
        paths[-1] == "attachments/1/level-1.eml/attachments/1/level-2.eml/attachments/1/level-3.eml"
    )
    (warning,) = doc.warnings
    assert warning.code == "embedded-depth-limit"
    assert warning.message.startswith("level-1.eml: level-2.eml: ")


def test_the_count_limit_covers_every_depth(tmp_path: Path) -> None:
    inner = mail(
        "inner", "Inner body.", {f"in-{i}.txt": f"inner file {i}\n".encode() for i in range(3)}
    )
    outer = mail(
        "outer", "Outer body.", {f"out-{i}.txt": f"outer file {i}\n".encode() for i in range(3)}
    )
    outer.add_attachment(inner, filename="inner.eml")
    doc = parse_mail(tmp_path, outer, ParseLimits(max_embedded=5))
    assert [a.name for a in doc.attachments] == [
        "out-0.txt",
        "out-1.txt",
        "out-2.txt",
        "inner.eml",
        "in-0.txt",
    ]
    assert "inner file 0" in render_text(doc)
    assert "inner file 1" not in render_text(doc)
    assert [w.code for w in doc.warnings] == ["embedded-count-limit"]


def test_the_byte_limit_skips_what_does_not_fit(tmp_path: Path) -> None:
    files = {"a.txt": b"a" * 60 + b"\n", "b.txt": b"b" * 60 + b"\n", "c.txt": b"c" * 20 + b"\n"}
    doc = parse_mail(tmp_path, mail("sizes", "Body.", files), ParseLimits(max_embedded_bytes=100))
    # b.txt would pass the budget; c.txt still fits after it.
    assert [a.name for a in doc.attachments] == ["a.txt", "c.txt"]
    assert [w.code for w in doc.warnings] == ["embedded-size-limit"]


def test_a_failing_child_is_a_warning_and_the_parent_goes_on(tmp_path: Path) -> None:
    files = {
        "blob.gz": gzip.compress(b"no reader for this"),
        "broken.json": b'{"a": 1,',
        "fine.txt": b"Still read.\n",
    }
    doc = parse_mail(tmp_path, mail("mixed", "Parent body.", files))
    assert [a.mime for a in doc.attachments] == [
        "application/gzip",
        "application/json",
        "text/plain",
    ]
    failed = [w.message for w in doc.warnings if w.code == "attachment-failed"]
    assert len(failed) == 2
    assert failed[0].startswith("blob.gz (application/gzip) not read: ")
    assert failed[1].startswith("broken.json (application/json) not read: ")
    text = render_text(doc)
    assert "Parent body." in text
    assert "Still read." in text
    assert "Attachment: blob.gz" not in text


def test_untrusted_names_never_become_paths(tmp_path: Path, private_tmp: Path) -> None:
    files = {"../../escape.txt": b"Inside.\n", "..\\..\\win.txt": b"Also inside.\n"}
    doc = parse_mail(tmp_path, mail("names", "Body.", files))
    assert [a.path for a in doc.attachments] == [
        "attachments/1/escape.txt",
        "attachments/2/win.txt",
    ]
    assert "Inside." in render_text(doc)
    assert not list(tmp_path.rglob("escape.txt"))
    assert not list(private_tmp.iterdir())  # the private folders are gone


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\report.pdf", "report.pdf"),
        ("..", "attachment"),
        ("", "attachment"),
        (None, "attachment"),
        ("a\x00b\nc.txt", "a_b_c.txt"),
        ("what?.txt", "what_.txt"),
    ],
)
def test_safe_names(name: str | None, safe: str) -> None:
    assert safe_name(name) == safe


def test_other_parsers_call_it_with_their_own_path_and_page() -> None:
    builder = DocumentBuilder("pdf", "application/pdf")
    markdown = b"# Appendix\n\nThe embedded text.\n"
    attachment = append_embedded(
        builder, markdown, "notes.md", ParseContext(), path="EmbeddedFiles/notes.md", page=3
    )
    assert attachment is not None
    assert (attachment.path, attachment.mime) == ("EmbeddedFiles/notes.md", "text/markdown")
    doc = builder.finish()
    assert [(b.kind, b.text, b.level, b.page) for b in doc.blocks] == [
        (BlockKind.HEADING, "Attachment: notes.md", 2, 3),
        (BlockKind.HEADING, "Appendix", 3, 3),
        (BlockKind.PARAGRAPH, "The embedded text.", None, 3),
    ]


def test_nothing_is_read_once_cancelled() -> None:
    builder = DocumentBuilder("eml", EML)
    ctx = ParseContext(cancelled=lambda: True)
    assert append_embedded(builder, b"text\n", "a.txt", ctx) is None
    assert not builder.document.attachments


def test_an_empty_file_is_listed_and_not_read() -> None:
    builder = DocumentBuilder("eml", EML)
    attachment = append_embedded(builder, b"", "empty.txt", ParseContext())
    assert attachment is not None
    assert attachment.size == 0
    assert not builder.document.blocks
    assert not builder.document.warnings
