"""Embedded documents: listing a file found inside another and reading it through the dispatch.

E-mail attachments, objects embedded in office files and files attached to PDFs
all go through :func:`append_embedded`, as Tika's ``RecursiveParserWrapper``
does it: the child's type is detected from its bytes (a declared type is never
trusted alone), it is listed as an :class:`~docworker.document.Attachment`, then
parsed by the same registry as any upload, and its blocks follow the parent's
under a heading ``Attachment: <name>``. A child that cannot be read becomes a
warning and the parent goes on.

Limits bound the whole tree, not each level: a child's own attachments are
merged into its parent's list (their paths nested under the child's), so the
parent's list counts every embedded file at every depth, and each child is
parsed with what is left of the count and byte budgets. Past ``max_embedded``
or ``max_embedded_bytes`` a child is neither listed nor read; past
``max_depth`` it is listed but not read. Each limit is reported once.

A reader that must unpack a child before handing it over (a zip member) asks
:func:`within_budget` first, so that what the limits leave out is never read.
An OLE object embedded in an office file goes through :func:`append_ole_object`,
which hands over the file the object wraps rather than its wrapper.

Names come from the untrusted document, so they are never used as paths: the
child is written to a private temporary folder under a fixed name that keeps
only a plain extension (the detector's tie-breaker for text types).
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from dataclasses import replace
from pathlib import Path

from docworker.document import Attachment, Block, BlockKind, Document, DocumentBuilder
from docworker.errors import CorruptDocument, InputError, ServiceError
from docworker.formats.base import ParseContext
from docworker.formats.cfb import unwrap_ole_object
from docworker.formats.detect import detect
from docworker.formats.registry import parse_path

#: The heading level of ``Attachment: <name>``; the child's own headings go under it.
ATTACHMENT_HEADING_LEVEL = 2
_MAX_HEADING_LEVEL = 6
_MAX_NAME_CHARS = 200
#: Characters no file name may hold on common systems, and control characters.
_UNSAFE_CHARS = re.compile(r'[\x00-\x1f\x7f<>:"|?*]')
_PLAIN_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,16}$")


def safe_name(name: str | None, fallback: str = "attachment") -> str:
    """A display name for an embedded file: its last path component, cleaned.

    Directory parts, control characters and leading or trailing dots and
    spaces are dropped, so ``../../etc/passwd`` becomes ``passwd``.
    """
    last = re.split(r"[/\\]", name or "")[-1]
    cleaned = _UNSAFE_CHARS.sub("_", last).strip(" .")
    return cleaned[:_MAX_NAME_CHARS] or fallback


def append_embedded(
    builder: DocumentBuilder,
    data: bytes,
    name: str | None,
    ctx: ParseContext,
    *,
    path: str | None = None,
    page: int | None = None,
) -> Attachment | None:
    """List ``data`` as an attachment of the document being built and append its content.

    ``name`` is the name the parent gives the file (untrusted, may be missing);
    ``path`` says where it sits in the parent, ``attachments/<n>/<name>`` by
    default, ``n`` being its position in the document's attachment list;
    ``page`` is the parent's page holding it, given to the blocks appended.
    Returns the attachment listed, or None when a limit (or cancellation)
    left it out.
    """
    if ctx.cancelled() or not within_budget(builder, len(data), ctx):
        return None
    display = safe_name(name)
    index = len(builder.document.attachments) + 1
    # A file of its own, not a folder holding it: making and removing a folder costs
    # several times what reading a small embedded file does.
    with tempfile.NamedTemporaryFile(
        prefix="docworker-embedded-", suffix=_plain_suffix(display)
    ) as handle:
        handle.write(data)
        handle.flush()
        file = Path(handle.name)
        attachment = Attachment(
            name=display,
            mime=detect(file, display).mime,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            path=path or f"attachments/{index}/{display}",
        )
        builder.attach(attachment)
        if not data:
            return attachment
        if ctx.depth + 1 > ctx.limits.max_depth:
            _warn_once(
                builder,
                "embedded-depth-limit",
                f"embedded files deeper than {ctx.limits.max_depth} levels are listed, not read",
            )
            return attachment
        child = _parse_child(builder, file, attachment, ctx, page)
    if child is not None:
        _merge(builder, child, attachment, page)
    return attachment


def append_ole_object(
    builder: DocumentBuilder,
    data: bytes,
    name: str | None,
    ctx: ParseContext,
    *,
    path: str,
    page: int | None = None,
) -> Attachment | None:
    """List and read what an embedded OLE object wraps, as :func:`append_embedded` does.

    The wrapped file takes the object's place, under the name the object gives
    it (else ``name``); an object that wraps no other file is read as it is, and
    so is a damaged one, with a warning.
    """
    try:
        content = unwrap_ole_object(data)
    except CorruptDocument as exc:
        builder.warn("object-unreadable", f"{safe_name(name)}: {exc.detail}", page)
        content = None
    if content is not None:
        data, name = content.data, content.name or name
    return append_embedded(builder, data, name, ctx, path=path, page=page)


def within_budget(builder: DocumentBuilder, size: int, ctx: ParseContext) -> bool:
    """Whether one more embedded file of ``size`` bytes fits the count and byte limits.

    When it does not, the document is warned (once per limit).
    """
    listed = builder.document.attachments
    limits = ctx.limits
    if len(listed) >= limits.max_embedded:
        _warn_once(
            builder,
            "embedded-count-limit",
            "embedded files past the document's limit on their number are skipped",
        )
        return False
    if sum(a.size for a in listed) + size > limits.max_embedded_bytes:
        _warn_once(
            builder,
            "embedded-size-limit",
            "embedded files past the document's limit on their total size are skipped",
        )
        return False
    return True


def _plain_suffix(name: str) -> str:
    suffix = Path(name).suffix
    return suffix.lower() if _PLAIN_SUFFIX.match(suffix) else ""


def _parse_child(
    builder: DocumentBuilder,
    file: Path,
    attachment: Attachment,
    ctx: ParseContext,
    page: int | None,
) -> Document | None:
    """The child's document, or None (with a warning) when it cannot be read."""
    listed = builder.document.attachments
    limits = replace(
        ctx.limits,
        max_embedded=max(ctx.limits.max_embedded - len(listed), 0),
        max_embedded_bytes=max(ctx.limits.max_embedded_bytes - sum(a.size for a in listed), 0),
    )
    # The parent's page selection and progress reports mean nothing to the child.
    child_ctx = replace(
        ctx,
        depth=ctx.depth + 1,
        limits=limits,
        pages=None,
        progress=lambda _fraction, _message: None,
    )
    try:
        return parse_path(file, child_ctx, name=attachment.name, mime=attachment.mime)
    except ServiceError:
        # An engine that failed is the job's problem (retried), not this child's.
        raise
    except InputError as exc:
        reason = exc.detail
    except Exception as exc:  # noqa: BLE001 - a reader failing on odd input must not lose the parent
        reason = f"{type(exc).__name__}: {exc}"
    builder.warn(
        "attachment-failed", f"{attachment.name} ({attachment.mime}) not read: {reason}", page
    )
    return None


def _merge(
    builder: DocumentBuilder, child: Document, attachment: Attachment, page: int | None
) -> None:
    """Append the child's blocks under a heading; take over its attachments and warnings."""
    if child.blocks:
        builder.add(
            BlockKind.HEADING,
            f"Attachment: {attachment.name}",
            level=ATTACHMENT_HEADING_LEVEL,
            page=page,
        )
    for block in child.blocks:
        _copy_block(builder, block, page)
    for grandchild in child.attachments:
        nested = grandchild.path or grandchild.name
        builder.attach(grandchild.model_copy(update={"path": f"{attachment.path}/{nested}"}))
    for warning in child.warnings:
        builder.warn(warning.code, f"{attachment.name}: {warning.message}", page)


def _copy_block(builder: DocumentBuilder, block: Block, page: int | None) -> None:
    """Add a child's block to the parent: headings nest under the attachment's heading.

    The child's page numbers and boxes refer to the child's pages, which the
    parent does not have, so the block takes the parent's ``page`` and no box.
    """
    kind, level = block.kind, block.level
    if kind in {BlockKind.TITLE, BlockKind.HEADING}:
        depth = 1 if kind is BlockKind.TITLE else level or 1
        kind, level = BlockKind.HEADING, min(depth + ATTACHMENT_HEADING_LEVEL, _MAX_HEADING_LEVEL)
    builder.add(
        kind,
        block.text,
        level=level,
        ordered=block.ordered,
        page=page,
        table=block.table,
        links=block.links,
        language=block.language,
        source=block.source,
        confidence=block.confidence,
    )


def _warn_once(builder: DocumentBuilder, code: str, message: str) -> None:
    if not any(w.code == code for w in builder.document.warnings):
        builder.warn(code, message)
