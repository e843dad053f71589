"""The ``pdf`` operation: PDF → PDF tools, one ``action`` per job.

``split``, ``rotate``, ``extract_pages``, ``flatten``, ``compress``, ``pdfa``,
``metadata``, ``encrypt`` and ``decrypt`` work on the job's PDF; ``merge`` joins it
with the job's further PDFs (in upload order) and ``attach`` embeds the job's further
files in it. The PDF writing is :mod:`docworker.render.pdf_tools` (with
:mod:`~docworker.render.pdf_compress`, :mod:`~docworker.render.pdf_metadata` and
:mod:`~docworker.render.pdfa`) on pikepdf; the files made are the job's artifacts (a
split makes one per part), and the payload says what was done. Actions that change
the file in place keep its encryption; files built from pages are written without.
Parameters are checked per action: one that the action does not take, or one it needs
and did not get, is refused by name.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from contextlib import ExitStack
from enum import StrEnum
from typing import Any, ClassVar, Literal

import pikepdf
from pydantic import Field, SecretStr, model_validator

from docworker.errors import (
    InvalidParameter,
    LimitExceeded,
    PasswordRequired,
    PayloadTooLarge,
    UnsupportedFormat,
)
from docworker.formats.detect import detect
from docworker.operations.base import (
    Artifact,
    Family,
    InputFile,
    OperationContext,
    OperationParams,
    PagesParam,
    Result,
)
from docworker.render import pdf_compress, pdf_metadata, pdf_tools, pdfa

PDF = "application/pdf"


class PdfAction(StrEnum):
    MERGE = "merge"
    SPLIT = "split"
    ROTATE = "rotate"
    EXTRACT_PAGES = "extract_pages"
    FLATTEN = "flatten"
    COMPRESS = "compress"
    PDFA = "pdfa"
    METADATA = "metadata"
    ENCRYPT = "encrypt"
    DECRYPT = "decrypt"
    ATTACH = "attach"


Permission = Literal[
    "print",
    "print_high_quality",
    "modify",
    "copy",
    "annotate",
    "fill_forms",
    "extract_for_accessibility",
    "assemble",
]

#: The parameters each action takes besides ``action`` and ``password``.
ACTION_PARAMS: dict[PdfAction, frozenset[str]] = {
    PdfAction.MERGE: frozenset(),
    PdfAction.SPLIT: frozenset({"ranges", "every"}),
    PdfAction.ROTATE: frozenset({"angle", "pages"}),
    PdfAction.EXTRACT_PAGES: frozenset({"pages"}),
    PdfAction.FLATTEN: frozenset(),
    PdfAction.COMPRESS: frozenset({"max_image_dpi", "image_quality"}),
    PdfAction.PDFA: frozenset({"level", "strict", "flatten"}),
    PdfAction.METADATA: frozenset({"set_metadata"}),
    PdfAction.ENCRYPT: frozenset({"user_password", "owner_password", "permissions"}),
    PdfAction.DECRYPT: frozenset(),
    PdfAction.ATTACH: frozenset({"descriptions"}),
}
#: Parameters an action cannot do without.
_REQUIRED: dict[PdfAction, tuple[str, ...]] = {
    PdfAction.ROTATE: ("angle",),
    PdfAction.EXTRACT_PAGES: ("pages",),
}


class PdfParams(OperationParams):
    action: PdfAction = Field(description="What to do: " + ", ".join(a.value for a in PdfAction))
    password: SecretStr | None = Field(
        None,
        description="Password of the encrypted input PDF(s); decrypt needs the password "
        "that opens the file (its owner password when it opens without one).",
    )
    pages: PagesParam = Field(
        None,
        description="rotate: the pages to turn (default: all); extract_pages: the pages to "
        "keep, in the order written ('3,1-2').",
    )
    ranges: str | None = Field(
        None,
        description="split: one output per comma-separated range, e.g. '1-3,4-6,7-'.",
        examples=["1-3,4-6"],
    )
    every: int | None = Field(
        None, ge=1, description="split: one output per run of this many pages (1: per page)."
    )
    angle: Literal[90, 180, 270, -90, -180, -270] | None = Field(
        None, description="rotate: degrees clockwise (negative: anticlockwise)."
    )
    max_image_dpi: int | None = Field(
        None,
        ge=36,
        le=2400,
        description="compress: resample images drawn above this resolution down to it "
        "(lossy, JPEG); default: lossless repacking only.",
    )
    image_quality: int | None = Field(
        None, ge=10, le=95, description="compress: JPEG quality of resampled images (75)."
    )
    level: Literal["1b", "2b", "3b"] | None = Field(
        None, description="pdfa: the PDF/A part and conformance level (default 2b)."
    )
    strict: bool | None = Field(
        None,
        description="pdfa: refuse a file the PDF/A validator does not pass (default true); "
        "false: answer it anyway, with the validator's findings in the result.",
    )
    flatten: bool | None = Field(
        None,
        description="pdfa: flatten form fields and annotations into the pages first "
        "(the validator does not check interactive forms, so a form is refused otherwise).",
    )
    set_metadata: dict[str, str | None] | None = Field(
        None,
        description="metadata: fields to write (title, author, subject, keywords, creator, "
        "producer, creation_date, modification_date as ISO 8601, or custom keys); null "
        "removes a field. Without it, metadata only reads.",
    )
    user_password: SecretStr | None = Field(
        None, description="encrypt: the password that opens the document."
    )
    owner_password: SecretStr | None = Field(
        None,
        description="encrypt: the password that lifts the permissions (default: a random "
        "one nobody keeps).",
    )
    permissions: list[Permission] | None = Field(
        None,
        description="encrypt: what a reader opening with the user password may do "
        "(default: everything; [] : nothing).",
    )
    descriptions: list[str] | None = Field(
        None, description="attach: a description per attached file, in upload order."
    )

    @model_validator(mode="after")
    def _check_action(self) -> PdfParams:
        """Refuse parameters the action does not take and require the ones it needs."""
        allowed = ACTION_PARAMS[self.action] | {"action", "password"}
        for name in sorted(self.model_fields_set - allowed):
            if getattr(self, name) is not None:
                raise InvalidParameter(name, f"the {self.action.value} action does not take it")
        for name in _REQUIRED.get(self.action, ()):
            if getattr(self, name) is None:
                raise InvalidParameter(name, f"the {self.action.value} action needs it")
        if self.action is PdfAction.SPLIT and (self.ranges is None) == (self.every is None):
            raise InvalidParameter("ranges", "split takes either 'ranges' or 'every'")
        if self.action is PdfAction.ENCRYPT and not (self.user_password or self.owner_password):
            raise InvalidParameter("user_password", "encrypt needs a user or an owner password")
        if self.set_metadata is not None:
            pdf_metadata.check_metadata(self.set_metadata)
        return self

    def secret(self, name: str) -> str | None:
        value = getattr(self, name)
        return value.get_secret_value() if isinstance(value, SecretStr) else None


#: The artifact each single-output action makes.
OUTPUT_NAMES: dict[PdfAction, str] = {
    PdfAction.MERGE: "merged.pdf",
    PdfAction.ROTATE: "rotated.pdf",
    PdfAction.EXTRACT_PAGES: "extracted.pdf",
    PdfAction.FLATTEN: "flattened.pdf",
    PdfAction.COMPRESS: "compressed.pdf",
    PdfAction.PDFA: "pdfa.pdf",
    PdfAction.METADATA: "metadata.pdf",
    PdfAction.ENCRYPT: "encrypted.pdf",
    PdfAction.DECRYPT: "decrypted.pdf",
    PdfAction.ATTACH: "attached.pdf",
}


class PdfOperation:
    name: ClassVar[str] = "pdf"
    summary: ClassVar[str] = (
        "PDF tools: merge, split, rotate, extract pages, flatten forms, compress, PDF/A, "
        "metadata, encrypt, decrypt, attach files."
    )
    queue: ClassVar[Family] = Family.CONVERT
    Params: ClassVar[type[OperationParams]] = PdfParams

    def run(self, ctx: OperationContext, source: InputFile, params: OperationParams) -> Result:
        assert isinstance(params, PdfParams)
        _check_inputs(ctx, source, params.action)
        _check_pdf(ctx, source, "file")
        if params.action is PdfAction.MERGE:
            return _merge(ctx, source, params)
        pdf = pdf_tools.open_pdf(source.path, params.secret("password"))
        with pdf:
            page_count = len(pdf.pages)
            _check_pages(ctx, page_count)
            payload, artifacts = _ACTIONS[params.action](ctx, source, pdf, params)
        return Result(
            payload={"action": params.action.value, "page_count": page_count, **payload},
            artifacts=artifacts,
        )


_Done = tuple[dict[str, Any], list[Artifact]]


def _check_inputs(ctx: OperationContext, source: InputFile, action: PdfAction) -> None:
    """Refuse further input files where the action takes none, too few or too many."""
    others = len(source.others)
    if action is PdfAction.MERGE and not others:
        raise InvalidParameter("files", "merge needs at least two PDFs")
    if action is PdfAction.ATTACH and not others:
        raise InvalidParameter("attachments", "attach needs at least one file to attach")
    if action not in (PdfAction.MERGE, PdfAction.ATTACH) and others:
        raise InvalidParameter("files", f"the {action.value} action takes one file")
    limit = ctx.settings.pdf.max_inputs
    count = others + 1 if action is PdfAction.MERGE else others
    if count > limit:
        raise LimitExceeded("input files", count, limit)
    for index, other in enumerate(source.others, start=1):
        _check_size(ctx, other, f"input {index + 1}")


def _check_size(ctx: OperationContext, source: InputFile, name: str) -> None:
    limit = ctx.settings.pdf.max_input_bytes
    size = source.path.stat().st_size
    if size > limit:
        raise PayloadTooLarge(f"{name} bytes", size, limit)


def _check_pdf(ctx: OperationContext, source: InputFile, name: str) -> None:
    """Refuse a file over the size limit or that is not a PDF (by its content)."""
    _check_size(ctx, source, name)
    mime = detect(source.path, source.name).mime
    if mime != PDF:
        raise UnsupportedFormat(mime, f"{name}: the pdf operation takes PDF files, not {mime}")


def _check_pages(ctx: OperationContext, count: int) -> None:
    limit = ctx.settings.pdf.max_pages
    if count > limit:
        raise LimitExceeded("pages", count, limit)


def _write(
    ctx: OperationContext, pdf: pikepdf.Pdf, name: str, **options: Any
) -> tuple[Artifact, dict[str, Any]]:
    """Save ``pdf`` as the artifact ``name``; with its description for the payload."""
    target = ctx.artifact_path(name)
    pdf_tools.save_pdf(pdf, target, **options)
    return Artifact(name, target, PDF), {
        "name": name,
        "pages": len(pdf.pages),
        "size": target.stat().st_size,
        "encrypted": bool(options.get("encryption")),
    }


#: Actions that change the file in place: their output keeps the input's encryption.
_KEEP_ENCRYPTION = frozenset(
    {PdfAction.ROTATE, PdfAction.FLATTEN, PdfAction.COMPRESS, PdfAction.METADATA, PdfAction.ATTACH}
)


def _single(ctx: OperationContext, pdf: pikepdf.Pdf, action: PdfAction, **options: Any) -> _Done:
    if action in _KEEP_ENCRYPTION:
        options["encryption"] = pdf.is_encrypted
    artifact, output = _write(ctx, pdf, OUTPUT_NAMES[action], **options)
    return {"outputs": [output]}, [artifact]


#: Splits into more parts than this leave bookmarks out of the parts (see copy_pages).
_BOOKMARKED_PARTS = 20


def _split(ctx: OperationContext, source: InputFile, pdf: pikepdf.Pdf, params: PdfParams) -> _Done:
    groups = pdf_tools.split_groups(len(pdf.pages), params.ranges, params.every)
    limit = ctx.settings.pdf.max_outputs
    if len(groups) > limit:
        raise LimitExceeded("split outputs", len(groups), limit)
    _check_pages(ctx, sum(len(group) for group in groups))
    width = len(str(len(groups)))
    artifacts, outputs = [], []
    for index, group in enumerate(groups, start=1):
        with pdf_tools.copy_pages(pdf, group, bookmarks=len(groups) <= _BOOKMARKED_PARTS) as part:
            artifact, output = _write(ctx, part, f"part-{index:0{width}d}.pdf")
        artifacts.append(artifact)
        outputs.append(output | {"source_pages": group})
        ctx.progress(index / len(groups), f"part {index} of {len(groups)}")
    return {"outputs": outputs}, artifacts


def _rotate(ctx: OperationContext, source: InputFile, pdf: pikepdf.Pdf, params: PdfParams) -> _Done:
    total = len(pdf.pages)
    numbers = pdf_tools.ordered_pages(params.pages, total) if params.pages else range(1, total + 1)
    chosen = sorted(set(numbers))
    assert params.angle is not None
    pdf_tools.rotate(pdf, chosen, params.angle)
    payload, artifacts = _single(ctx, pdf, params.action)
    rotations = [{"page": n, "rotation": pdf_tools.page_rotation(pdf, n)} for n in chosen]
    return payload | {"rotated_pages": chosen, "rotations": rotations}, artifacts


def _extract(
    ctx: OperationContext, source: InputFile, pdf: pikepdf.Pdf, params: PdfParams
) -> _Done:
    assert params.pages is not None
    numbers = pdf_tools.ordered_pages(params.pages, len(pdf.pages))
    _check_pages(ctx, len(numbers))
    with pdf_tools.copy_pages(pdf, numbers) as extracted:
        payload, artifacts = _single(ctx, extracted, params.action)
    return payload | {"source_pages": numbers}, artifacts


def _flatten(
    ctx: OperationContext, source: InputFile, pdf: pikepdf.Pdf, params: PdfParams
) -> _Done:
    fields = pdf_tools.flatten(pdf)
    payload, artifacts = _single(ctx, pdf, params.action)
    return payload | {"form_fields": fields}, artifacts


def _compress(
    ctx: OperationContext, source: InputFile, pdf: pikepdf.Pdf, params: PdfParams
) -> _Done:
    images = None
    if params.max_image_dpi is not None:
        resampling = pdf_compress.Resampling(
            params.max_image_dpi, params.image_quality or 75, ctx.limits.max_pixels
        )
        images = pdf_compress.downsample_images(pdf, resampling).as_dict()
    options = pdf_compress.lossless_options(encrypted=pdf.is_encrypted)
    payload, artifacts = _single(ctx, pdf, params.action, **options)
    before, after = source.path.stat().st_size, payload["outputs"][0]["size"]
    unchanged = after >= before
    if unchanged:
        # Already as small as qpdf makes it: the input itself is the smallest answer.
        shutil.copyfile(source.path, artifacts[0].path)
        after = payload["outputs"][0]["size"] = before
    return payload | {
        "bytes_before": before,
        "bytes_after": after,
        "saved_ratio": round(1 - after / before, 4) if before else 0.0,
        "unchanged": unchanged,
        "images": images,
    }, artifacts


def _pdfa(ctx: OperationContext, source: InputFile, pdf: pikepdf.Pdf, params: PdfParams) -> _Done:
    level = params.level or "2b"
    name = OUTPUT_NAMES[params.action]
    target = ctx.artifact_path(name)
    if params.flatten:
        pdf_tools.flatten(pdf)
    outcome = pdfa.write_pdfa(pdf, target, level, strict=params.strict is not False)
    output = {"name": name, "pages": len(pdf.pages), "size": target.stat().st_size}
    return {"outputs": [output], "pdfa": outcome.as_dict()}, [Artifact(name, target, PDF)]


def _metadata(
    ctx: OperationContext, source: InputFile, pdf: pikepdf.Pdf, params: PdfParams
) -> _Done:
    if params.set_metadata is None:
        return pdf_metadata.read_metadata(pdf), []
    pdf_metadata.write_metadata(pdf, params.set_metadata)
    payload, artifacts = _single(ctx, pdf, params.action)
    return payload | pdf_metadata.read_metadata(pdf), artifacts


def _encrypt(
    ctx: OperationContext, source: InputFile, pdf: pikepdf.Pdf, params: PdfParams
) -> _Done:
    settings, random_owner = pdf_tools.encryption(
        params.secret("user_password"), params.secret("owner_password"), params.permissions
    )
    payload, artifacts = _single(ctx, pdf, params.action, encryption=settings)
    allowed = set(pdf_tools.PERMISSIONS) if params.permissions is None else set(params.permissions)
    return payload | {
        "encryption": {
            "algorithm": "AES-256",
            "revision": 6,
            "user_password": bool(params.user_password),
            "owner_password": "random" if random_owner else "given",
            "permissions": {name: name in allowed for name in pdf_tools.PERMISSIONS},
        }
    }, artifacts


def _decrypt(
    ctx: OperationContext, source: InputFile, pdf: pikepdf.Pdf, params: PdfParams
) -> _Done:
    was = pdf_tools.encryption_info(pdf)
    if was is not None and params.password is None:
        # Opened without a password (it has an owner password only): lifting its
        # restrictions takes the owner password.
        raise PasswordRequired("pdf", "removing this PDF's encryption takes its owner password")
    payload, artifacts = _single(ctx, pdf, params.action)
    return payload | {"was_encrypted": was is not None, "encryption": was}, artifacts


def _merge(ctx: OperationContext, source: InputFile, params: PdfParams) -> Result:
    """The job's PDF and its further PDFs, in order, as one."""
    inputs = [source, *source.others]
    for index, other in enumerate(source.others, start=2):
        _check_pdf(ctx, other, f"input {index}")
    with ExitStack() as stack:
        pdfs = [
            stack.enter_context(pdf_tools.open_pdf(item.path, params.secret("password")))
            for item in inputs
        ]
        counts = [len(pdf.pages) for pdf in pdfs]
        _check_pages(ctx, sum(counts))
        merged, carried = pdf_tools.merge(pdfs)
        with merged:
            payload, artifacts = _single(ctx, merged, params.action)
    payload |= {
        **carried,
        "action": params.action.value,
        "page_count": sum(counts),
        "inputs": [{"name": item.name, "pages": n} for item, n in zip(inputs, counts, strict=True)],
    }
    return Result(payload=payload, artifacts=artifacts)


def _attach(ctx: OperationContext, source: InputFile, pdf: pikepdf.Pdf, params: PdfParams) -> _Done:
    descriptions = params.descriptions or []
    if len(descriptions) > len(source.others):
        raise InvalidParameter(
            "descriptions",
            f"{len(descriptions)} descriptions for {len(source.others)} attachment(s)",
        )
    files = [
        pdf_tools.Attachment(
            other.path,
            other.name or f"attachment-{index}",
            descriptions[index - 1] if index <= len(descriptions) else None,
        )
        for index, other in enumerate(source.others, start=1)
    ]
    attached = pdf_tools.attach(pdf, files)
    payload, artifacts = _single(ctx, pdf, params.action)
    return payload | {
        "attached": attached,
        "attachments": pdf_tools.list_attachments(pdf),
    }, artifacts


_ACTIONS: dict[
    PdfAction, Callable[[OperationContext, InputFile, pikepdf.Pdf, PdfParams], _Done]
] = {
    PdfAction.SPLIT: _split,
    PdfAction.ROTATE: _rotate,
    PdfAction.EXTRACT_PAGES: _extract,
    PdfAction.FLATTEN: _flatten,
    PdfAction.COMPRESS: _compress,
    PdfAction.PDFA: _pdfa,
    PdfAction.METADATA: _metadata,
    PdfAction.ENCRYPT: _encrypt,
    PdfAction.DECRYPT: _decrypt,
    PdfAction.ATTACH: _attach,
}
