"""The ``render`` operation: document pages and image frames → PNG, JPEG or WebP images.

PDF pages are rendered by pdfium at ``dpi`` or to fit ``width``/``height``;
office and text documents are first made a PDF by the worker's warm
LibreOffice; images (PNG, JPEG, TIFF, WebP, GIF, BMP, HEIC, AVIF) are read
by libvips a frame at a time, EXIF orientation applied. Each page image is an
artifact (``page-0001.png`` …) listed in the payload with its size.
``thumbnail`` renders the first page (of ``pages``, default 1) into a
``size`` box, as WebP unless a format is asked.

A long PDF is rendered in page ranges on several workers at once and the
parts' images carried into one result (:class:`~docworker.operations.base.Splittable`).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, SecretStr, field_validator, model_validator

from docworker.engines.image_formats import PageFormat
from docworker.errors import (
    InvalidParameter,
    LimitExceeded,
    PasswordRequired,
    UnsupportedFormat,
)
from docworker.formats.detect import detect, format_of
from docworker.formats.image.parser import ImageParser
from docworker.formats.ooxml.encrypted import ENCRYPTED_OOXML_MIME, decrypt_package
from docworker.formats.pdf.parser import open_pdf
from docworker.operations.base import (
    Artifact,
    Engine,
    Family,
    InputFile,
    OperationContext,
    OperationParams,
    PagesParam,
    PartResult,
    Result,
    SplitPart,
    SplitPlan,
    merge_errors,
)
from docworker.operations.ocr_parts import PDF, failed_parts, page_count, selected_pages
from docworker.operations.ocr_v1 import as_pdf, converted_to_pdf
from docworker.render.page_images import (
    ImageSpec,
    WrittenImage,
    check_box,
    image_frame_count,
    parse_colour,
    write_image_frame,
    write_pdf_page,
)


class RenderParams(OperationParams):
    pages: PagesParam = Field(
        None,
        description="Pages (or an image's frames) to render, 1-based: '1-3,5,9-'. "
        "Default: all (up to the service's render page limit); a thumbnail: the first.",
        examples=["1", "1-3,5"],
    )
    format: PageFormat | None = Field(
        None, description="png, jpeg or webp. Default: png; webp for a thumbnail."
    )
    dpi: int | None = Field(
        None,
        ge=18,
        le=1200,
        description="Resolution of document pages (default: the service's, 150): an A4 page "
        "at 150 dpi is 1241×1754. Not with width/height. Images keep their own pixels.",
    )
    width: int | None = Field(
        None, ge=1, description="Fit each image inside this width (pixels), aspect kept."
    )
    height: int | None = Field(
        None, ge=1, description="Fit each image inside this height (pixels), aspect kept."
    )
    quality: int | None = Field(
        None, ge=1, le=100, description="JPEG and WebP quality, 1-100 (default: 85)."
    )
    password: SecretStr | None = Field(
        None, description="Password of an encrypted PDF or Office 2007+ file (DOCX, XLSX, PPTX)."
    )
    background: str = Field(
        "#ffffff",
        description="Colour of the paper of PDF pages and of transparent pixels in JPEG "
        "images: '#rrggbb', '#rgb', white or black.",
    )
    thumbnail: bool = Field(
        False, description="Render one page (the first) into a size×size box, as WebP by default."
    )
    size: int | None = Field(
        None,
        ge=16,
        le=4096,
        description="A thumbnail's box side, in pixels (default: the service's, 256).",
    )

    @field_validator("background")
    @classmethod
    def _check_background(cls, value: str) -> str:
        parse_colour(value)
        return value

    @model_validator(mode="after")
    def _check_size_choice(self) -> RenderParams:
        if self.dpi is not None and (self.width or self.height):
            raise ValueError("give dpi, or width and/or height, not both")
        if self.size is not None and not self.thumbnail:
            raise ValueError("size is the box of a thumbnail: set thumbnail too")
        return self


class RenderOperation:
    name: ClassVar[str] = "render"
    summary: ClassVar[str] = "Pages of PDFs, office documents and images as PNG, JPEG or WebP."
    queue: ClassVar[Family] = Family.CONVERT
    Params: ClassVar[type[OperationParams]] = RenderParams

    def engine(self, params: OperationParams, mime: str) -> Engine | None:
        """LibreOffice for an office or text document, which becomes a PDF first."""
        convert = mime not in ImageParser.media_types and (
            converted_to_pdf(mime) or mime == ENCRYPTED_OOXML_MIME
        )
        return Engine.LIBREOFFICE if convert else None

    def run(self, ctx: OperationContext, source: InputFile, params: OperationParams) -> Result:
        assert isinstance(params, RenderParams)
        mime = source.mime or detect(source.path, source.name).mime
        spec = _spec(ctx, params)
        if mime in ImageParser.media_types:
            total = image_frame_count(source.path, spec.max_pixels)
            numbers = _chosen(ctx, params, total)
            images = _each(ctx, numbers, total, spec, partial(_write_frame, source.path, spec))
        else:
            password = params.password.get_secret_value() if params.password else None
            with _document_pdf(ctx, source, mime, password) as path:
                images, total = _render_pdf(ctx, path, params, spec)
        return _result(mime, spec, total, images)

    def split(
        self, ctx: OperationContext, source: InputFile, params: OperationParams, plan: SplitPlan
    ) -> list[SplitPart] | None:
        """Page ranges of a long PDF, rendered on several workers."""
        assert isinstance(params, RenderParams)
        mime = source.mime or detect(source.path, source.name).mime
        if params.thumbnail or mime != PDF:
            return None
        password = params.password.get_secret_value() if params.password else None
        total = page_count(source.path, mime, password)
        if total is None:
            return None
        pages = selected_pages(total, params.pages)
        if len(pages) > ctx.settings.render.max_pages:
            return None  # refused whole, with the limit named
        min_pages = max(plan.min_pages, ctx.settings.render.split_min_pages)
        ranges = SplitPlan(plan.parts, min_pages).page_ranges(pages)
        return [SplitPart({"pages": pages}) for pages in ranges] if ranges else None

    def merge(
        self,
        ctx: OperationContext,
        source: InputFile,
        params: OperationParams,
        parts: list[PartResult],
    ) -> Result:
        """The parts' pages in order, their images carried over as the job's artifacts."""
        failed_parts(parts)
        done = [part for part in parts if part.payload is not None]
        payloads = [part.payload for part in done if part.payload is not None]
        payload = payloads[0] | {
            "pages": [page for p in payloads for page in p["pages"]],
        }
        payload.pop("artifacts", None)
        mime = payload["mime"]
        artifacts = [
            Artifact(name, path, mime) for part in done for name, path in part.artifacts.items()
        ]
        return Result(payload=payload, errors=merge_errors(parts), artifacts=artifacts)


def _spec(ctx: OperationContext, params: RenderParams) -> ImageSpec:
    settings = ctx.settings.render
    check_box(params.width, params.height, settings.max_side)
    width, height = params.width, params.height
    if params.thumbnail and not (width or height):
        width = height = params.size or settings.thumbnail_size
    default_format = PageFormat.WEBP if params.thumbnail else PageFormat.PNG
    return ImageSpec(
        format=params.format or default_format,
        dpi=params.dpi or settings.dpi,
        width=width,
        height=height,
        quality=params.quality or settings.quality,
        background=parse_colour(params.background),
        max_pixels=ctx.limits.max_pixels,
    )


def _chosen(ctx: OperationContext, params: RenderParams, total: int) -> list[int]:
    """The pages to render out of ``total``: a thumbnail's one, or the selection, within
    the page limit."""
    numbers = selected_pages(total, params.pages)
    if not numbers:
        raise InvalidParameter("pages", f"'{params.pages}' selects none of its {total} pages")
    if params.thumbnail:
        return numbers[:1]
    limit = ctx.settings.render.max_pages
    if len(numbers) > limit:
        raise LimitExceeded(
            "pages",
            len(numbers),
            limit,
            f"{len(numbers)} pages would be rendered, over the limit of {limit} a job: "
            "choose fewer with 'pages'",
        )
    return numbers


#: Writes a page's image: a page (or frame) number and a target path in, the image out.
_Write = Callable[[int, Path], WrittenImage]


def _each(
    ctx: OperationContext, numbers: list[int], total: int, spec: ImageSpec, write: _Write
) -> list[tuple[str, WrittenImage]]:
    """Each page written by ``write(number, target)`` under its artifact name, reporting
    progress and stopping once cancelled."""
    written: list[tuple[str, WrittenImage]] = []
    for done, number in enumerate(numbers):
        if ctx.cancelled():
            break
        name = f"page-{number:04d}.{spec.format.extension}"
        written.append((name, write(number, ctx.artifact_path(name))))
        ctx.progress((done + 1) / max(len(numbers), 1), f"page {number} of {total}")
    return written


def _write_frame(path: Path, spec: ImageSpec, number: int, target: Path) -> WrittenImage:
    return write_image_frame(path, number, spec, target)


def _render_pdf(
    ctx: OperationContext, path: Path, params: RenderParams, spec: ImageSpec
) -> tuple[list[tuple[str, WrittenImage]], int]:
    password = params.password.get_secret_value() if params.password else None
    pdf = open_pdf(path, password)
    try:
        total = len(pdf)
        numbers = _chosen(ctx, params, total)

        def write(number: int, target: Path) -> WrittenImage:
            page = pdf[number - 1]
            try:
                return write_pdf_page(page, number, spec, target)
            finally:
                page.close()

        return _each(ctx, numbers, total, spec, write), total
    finally:
        pdf.close()


@contextlib.contextmanager
def _document_pdf(
    ctx: OperationContext, source: InputFile, mime: str, password: str | None
) -> Iterator[Path]:
    """The input as a PDF: itself, or made by LibreOffice from an office or text document.
    HTML is refused: LibreOffice would fetch the remote images a page links to."""
    if format_of(mime) == "html":
        raise UnsupportedFormat(
            mime,
            "HTML pages are not rendered to images: their remote resources would be "
            "fetched; convert the page to PDF first, then render the PDF",
        )
    name = source.name or source.path.name
    with contextlib.ExitStack() as stack:
        path = source.path
        if mime == ENCRYPTED_OOXML_MIME:
            path, mime = _decrypted(stack, source, password)
        with as_pdf(path, name, mime, ctx.convert) as (pdf, _pdf_name):
            yield pdf


def _decrypted(
    stack: contextlib.ExitStack, source: InputFile, password: str | None
) -> tuple[Path, str]:
    """An encrypted Office 2007+ file decrypted into a temporary folder, and its type."""
    if not password:
        raise PasswordRequired("office")
    scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="docworker-render-")))
    plain = scratch / "decrypted"
    decrypt_package(source.path, password, plain)
    mime = detect(plain, source.name).mime
    # LibreOffice's type detection looks at the extension too.
    named = plain.rename(scratch / f"decrypted.{format_of(mime)}")
    return named, mime


def _result(
    mime: str, spec: ImageSpec, total: int, images: list[tuple[str, WrittenImage]]
) -> Result:
    payload: dict[str, Any] = {
        "format": spec.format.value,
        "mime": spec.format.mime,
        "source_mime": mime,
        "page_count": total,
        "pages": [image.describe(name) for name, image in images],
    }
    artifacts = [Artifact(name, image.path, spec.format.mime) for name, image in images]
    return Result(payload=payload, artifacts=artifacts)
