"""``POST /api/v2/pdf/{action}``: the PDF tools — merge, split, rotate, extract pages,
flatten forms, compress, PDF/A, metadata, encrypt, decrypt, attach files.

Each route takes the PDF as the multipart ``file`` part (merge: several ``files``
parts, in order; attach: ``file`` and ``attachments`` parts) and the action's
parameters as form fields, submits a ``pdf`` job and waits up to ``wait`` seconds:
the answer is the PDF made, a zip of them (split), or JSON (metadata read, or a
client that accepts only JSON); 202 with the job when it has not finished.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Query, UploadFile
from fastapi.responses import Response
from starlette.datastructures import UploadFile as StarletteUploadFile

from docworker.api.answers import ZIP, answer_files
from docworker.api.deps import ServicesDep
from docworker.api.errors import problem_responses
from docworker.api.routing import feeds
from docworker.api.schemas import FormBool
from docworker.api.sources import InputReferenceDep, store_document
from docworker.api.submitting import JobClientWithWebhookDep
from docworker.api.uploads import ONE_FILE_PER_FIELD, store_uploads
from docworker.errors import InvalidParameter, LimitExceeded

router = APIRouter(prefix="/api/v2/pdf", tags=["pdf"], dependencies=[ONE_FILE_PER_FIELD])

FileField = Annotated[UploadFile | None, File(description="The PDF.")]
PasswordField = Annotated[
    str | None,
    Form(
        description="Password of the encrypted input PDF.", json_schema_extra={"format": "password"}
    ),
]
WaitQuery = Annotated[
    float | None, Query(ge=0, description="Seconds to wait for the result before a 202.")
]
PriorityField = Annotated[int, Form(ge=-100, le=100, description="Job priority.")]
AcceptHeader = Annotated[str | None, Header()]


def responses(what: str, *, several: bool = False, json_only: bool = False) -> dict[int | str, Any]:
    """The OpenAPI ``responses`` of a PDF tool route whose output is ``what``."""
    content: dict[str, Any] = {"application/json": {}}
    if not json_only:
        content["application/pdf"] = {}
    if several:
        content[ZIP] = {}
    described = (
        f"{what} (JSON: the job's result, listing its artifacts, when the request "
        "accepts only application/json)"
    )
    return {
        200: {"description": described, "content": content},
        202: {"description": "Not finished within `wait`: the job, to poll"},
        **problem_responses(403, 409, 413, 415, 422, 429, 503),
    }


def _given(**fields: Any) -> dict[str, Any]:
    """The form fields a client sent (empty strings count as not sent)."""
    return {name: value for name, value in fields.items() if value not in (None, "")}


@router.post(
    "/merge",
    operation_id="pdf_merge",
    openapi_extra=feeds("pdf"),
    summary="Merge several PDFs into one",
    responses=responses("The merged PDF"),
)
async def merge(
    services: ServicesDep,
    client: JobClientWithWebhookDep,
    files: Annotated[
        list[UploadFile], File(description="The PDFs, in the order their pages are wanted.")
    ],
    password: PasswordField = None,
    wait: WaitQuery = None,
    priority: PriorityField = 0,
    accept: AcceptHeader = None,
) -> Response:
    """Send two or more ``files`` parts; the pages follow in upload order. Form fields
    stay fillable (renamed when a name is taken), bookmarks and links come along; the
    document information is the first file's."""
    _count(services, "files", len(files))
    first, *others = await store_uploads(services, _parts(files), field="files")
    params = {"action": "merge", **_given(password=password)}
    return await answer_files(
        services, client, "pdf", params, first, wait, priority, accept, others=others
    )


@router.post(
    "/attach",
    operation_id="pdf_attach",
    openapi_extra=feeds("pdf"),
    summary="Embed files in a PDF",
    responses=responses("The PDF with the files embedded"),
)
async def attach(
    services: ServicesDep,
    client: JobClientWithWebhookDep,
    attachments: Annotated[
        list[UploadFile], File(description="The files to embed, each under its file name.")
    ],
    source: InputReferenceDep,
    file: FileField = None,
    descriptions: Annotated[
        list[str] | None, Form(description="A description per attachment, in the same order.")
    ] = None,
    password: PasswordField = None,
    wait: WaitQuery = None,
    priority: PriorityField = 0,
    accept: AcceptHeader = None,
) -> Response:
    """Each ``attachments`` part is embedded (EmbeddedFiles) under its file name; a name
    already taken gets a number. The JSON result lists the PDF's attachments."""
    _count(services, "attachments", len(attachments))
    job_input = await store_document(services, file, source)
    others = await store_uploads(services, _parts(attachments), field="attachments")
    params: dict[str, Any] = {"action": "attach", **_given(password=password)}
    if descriptions:
        params["descriptions"] = descriptions
    return await answer_files(
        services, client, "pdf", params, job_input, wait, priority, accept, others=others
    )


def _parts(uploads: list[UploadFile]) -> list[StarletteUploadFile]:
    # FastAPI's UploadFile is Starlette's with OpenAPI support; a list is not covariant.
    return list[StarletteUploadFile](uploads)


def _count(services: ServicesDep, field: str, count: int) -> None:
    """Refuse more files than the settings allow, before any is stored."""
    limit = services.settings.pdf.max_inputs
    if count > limit:
        raise LimitExceeded(f"{field} count", count, limit)


@router.post(
    "/split",
    operation_id="pdf_split",
    openapi_extra=feeds("pdf"),
    summary="Split a PDF by page ranges or every N pages",
    responses=responses("A zip of the parts (one PDF when there is one part)", several=True),
)
async def split(
    services: ServicesDep,
    client: JobClientWithWebhookDep,
    source: InputReferenceDep,
    file: FileField = None,
    ranges: Annotated[
        str | None,
        Form(description="One output per comma-separated range: '1-3,4-6,7-'.", examples=["1-3"]),
    ] = None,
    every: Annotated[
        int | None, Form(ge=1, description="One output per run of N pages (1: one per page).")
    ] = None,
    password: PasswordField = None,
    wait: WaitQuery = None,
    priority: PriorityField = 0,
    accept: AcceptHeader = None,
) -> Response:
    """Give ``ranges`` or ``every``. The parts are named ``part-1.pdf``, ``part-2.pdf``…"""
    params = {"action": "split", **_given(ranges=ranges, every=every, password=password)}
    job_input = await store_document(services, file, source)
    return await answer_files(
        services, client, "pdf", params, job_input, wait, priority, accept, zip_name="split.zip"
    )


@router.post(
    "/rotate",
    operation_id="pdf_rotate",
    openapi_extra=feeds("pdf"),
    summary="Rotate pages of a PDF",
    responses=responses("The PDF with the pages turned"),
)
async def rotate(
    services: ServicesDep,
    client: JobClientWithWebhookDep,
    angle: Annotated[int, Form(description="Degrees clockwise: 90, 180, 270 (or negative).")],
    source: InputReferenceDep,
    file: FileField = None,
    pages: Annotated[
        str | None, Form(description="The pages to turn, e.g. '1,3-4' (default: all).")
    ] = None,
    password: PasswordField = None,
    wait: WaitQuery = None,
    priority: PriorityField = 0,
    accept: AcceptHeader = None,
) -> Response:
    """The pages' rotation is increased by ``angle`` (added to any they already have)."""
    params = {"action": "rotate", "angle": angle, **_given(pages=pages, password=password)}
    job_input = await store_document(services, file, source)
    return await answer_files(services, client, "pdf", params, job_input, wait, priority, accept)


@router.post(
    "/extract_pages",
    operation_id="pdf_extract_pages",
    openapi_extra=feeds("pdf"),
    summary="Keep some pages of a PDF, in a given order",
    responses=responses("A PDF of the pages asked for"),
)
async def extract_pages(
    services: ServicesDep,
    client: JobClientWithWebhookDep,
    pages: Annotated[str, Form(description="Pages in the order wanted: '3,1-2,9-'.")],
    source: InputReferenceDep,
    file: FileField = None,
    password: PasswordField = None,
    wait: WaitQuery = None,
    priority: PriorityField = 0,
    accept: AcceptHeader = None,
) -> Response:
    """A new PDF of the pages ``pages`` names, in the order written (repeats allowed)."""
    params = {"action": "extract_pages", "pages": pages, **_given(password=password)}
    job_input = await store_document(services, file, source)
    return await answer_files(services, client, "pdf", params, job_input, wait, priority, accept)


@router.post(
    "/flatten",
    operation_id="pdf_flatten",
    openapi_extra=feeds("pdf"),
    summary="Flatten a PDF's form fields and annotations into its pages",
    responses=responses("The flattened PDF"),
)
async def flatten(
    services: ServicesDep,
    client: JobClientWithWebhookDep,
    source: InputReferenceDep,
    file: FileField = None,
    password: PasswordField = None,
    wait: WaitQuery = None,
    priority: PriorityField = 0,
    accept: AcceptHeader = None,
) -> Response:
    """Form fields (with their values) and annotations become page content; the form
    is removed, so nothing is left to fill. The fields' text stays extractable."""
    params = {"action": "flatten", **_given(password=password)}
    job_input = await store_document(services, file, source)
    return await answer_files(services, client, "pdf", params, job_input, wait, priority, accept)


@router.post(
    "/compress",
    operation_id="pdf_compress",
    openapi_extra=feeds("pdf"),
    summary="Make a PDF smaller",
    responses=responses("The smaller PDF"),
)
async def compress(
    services: ServicesDep,
    client: JobClientWithWebhookDep,
    source: InputReferenceDep,
    file: FileField = None,
    max_image_dpi: Annotated[
        int | None,
        Form(ge=36, le=2400, description="Resample images above this resolution (lossy)."),
    ] = None,
    image_quality: Annotated[
        int | None, Form(ge=10, le=95, description="JPEG quality of resampled images (75).")
    ] = None,
    password: PasswordField = None,
    wait: WaitQuery = None,
    priority: PriorityField = 0,
    accept: AcceptHeader = None,
) -> Response:
    """Lossless repacking (object streams, recompressed streams); with ``max_image_dpi``,
    images drawn above that resolution are resampled to it as JPEG too. The JSON result
    gives the bytes before and after."""
    given = _given(max_image_dpi=max_image_dpi, image_quality=image_quality, password=password)
    params = {"action": "compress", **given}
    job_input = await store_document(services, file, source)
    return await answer_files(services, client, "pdf", params, job_input, wait, priority, accept)


@router.post(
    "/pdfa",
    operation_id="pdf_pdfa",
    openapi_extra=feeds("pdf"),
    summary="Convert a PDF to PDF/A-1b, 2b or 3b, validated",
    responses=responses("The PDF/A file, which passed the validator"),
)
async def pdfa(
    services: ServicesDep,
    client: JobClientWithWebhookDep,
    source: InputReferenceDep,
    file: FileField = None,
    level: Annotated[str, Form(description="1b, 2b or 3b.", examples=["2b"])] = "2b",
    strict: Annotated[
        FormBool,
        Form(
            description="Refuse (422) a file the PDF/A validator does not pass; false: answer "
            "it anyway, the findings in the JSON result."
        ),
    ] = True,
    flatten: Annotated[
        FormBool,
        Form(description="Flatten form fields and annotations into the pages first."),
    ] = False,
    password: PasswordField = None,
    wait: WaitQuery = None,
    priority: PriorityField = 0,
    accept: AcceptHeader = None,
) -> Response:
    """Adds what the level requires of the file's structure (sRGB output intent, XMP
    identification, no JavaScript or open action; no embedded files for 1b and 2b),
    writes it and validates the bytes written (pikepdf's PDF/A validator, veraPDF's rule
    ids). Content is not redrawn: a file whose content breaks the level, or uses what
    the validator cannot check (such as a fillable form: pass ``flatten=true``), is
    refused with the findings unless ``strict=false``."""
    params: dict[str, Any] = {"action": "pdfa", "level": level, "strict": strict}
    params |= _given(flatten=flatten or None, password=password)
    job_input = await store_document(services, file, source)
    return await answer_files(services, client, "pdf", params, job_input, wait, priority, accept)


@router.post(
    "/metadata",
    operation_id="pdf_metadata",
    openapi_extra=feeds("pdf"),
    summary="Read or write a PDF's metadata",
    responses=responses("The metadata as JSON; with set_metadata, the PDF written"),
)
async def metadata(
    services: ServicesDep,
    client: JobClientWithWebhookDep,
    source: InputReferenceDep,
    file: FileField = None,
    set_metadata: Annotated[
        str | None,
        Form(
            description="A JSON object of fields to write: title, author, subject, keywords, "
            "creator, producer, creation_date, modification_date (ISO 8601) or custom keys; "
            "null removes one. Without it, the metadata is read.",
            examples=['{"title": "Annual report", "Department": "Finance"}'],
        ),
    ] = None,
    password: PasswordField = None,
    wait: WaitQuery = None,
    priority: PriorityField = 0,
    accept: AcceptHeader = None,
) -> Response:
    """Reads the Info dictionary and the XMP packet as JSON; with ``set_metadata``,
    writes both (kept in step) and answers the PDF."""
    params: dict[str, Any] = {"action": "metadata", **_given(password=password)}
    if set_metadata:
        params["set_metadata"] = _json_object("set_metadata", set_metadata)
    job_input = await store_document(services, file, source)
    return await answer_files(services, client, "pdf", params, job_input, wait, priority, accept)


def _json_object(name: str, raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidParameter(name, f"not JSON: {exc.msg}") from None
    if not isinstance(value, dict):
        raise InvalidParameter(name, "must be a JSON object")
    return value


@router.post(
    "/encrypt",
    operation_id="pdf_encrypt",
    openapi_extra=feeds("pdf"),
    summary="Encrypt a PDF with passwords and permissions (AES-256)",
    responses=responses("The encrypted PDF"),
)
async def encrypt(
    services: ServicesDep,
    client: JobClientWithWebhookDep,
    source: InputReferenceDep,
    file: FileField = None,
    user_password: Annotated[
        str | None,
        Form(
            description="Password that opens the document.",
            json_schema_extra={"format": "password"},
        ),
    ] = None,
    owner_password: Annotated[
        str | None,
        Form(
            description="Password that lifts the permissions (default: random, not kept).",
            json_schema_extra={"format": "password"},
        ),
    ] = None,
    permissions: Annotated[
        list[str] | None,
        Form(
            description="What a reader may do: print, print_high_quality, modify, copy, "
            "annotate, fill_forms, extract_for_accessibility, assemble; repeated or "
            "comma-separated; 'none' for nothing. Default: everything."
        ),
    ] = None,
    password: PasswordField = None,
    wait: WaitQuery = None,
    priority: PriorityField = 0,
    accept: AcceptHeader = None,
) -> Response:
    """AES-256 (PDF 2.0 security handler, revision 6); give a user or an owner password."""
    given = _given(user_password=user_password, owner_password=owner_password, password=password)
    params: dict[str, Any] = {"action": "encrypt", **given}
    if permissions is not None:
        names = [name.strip() for value in permissions for name in value.split(",")]
        params["permissions"] = [name for name in names if name and name != "none"]
    job_input = await store_document(services, file, source)
    return await answer_files(services, client, "pdf", params, job_input, wait, priority, accept)


@router.post(
    "/decrypt",
    operation_id="pdf_decrypt",
    openapi_extra=feeds("pdf"),
    summary="Remove a PDF's encryption with its password",
    responses=responses("The PDF, unencrypted"),
)
async def decrypt(
    services: ServicesDep,
    client: JobClientWithWebhookDep,
    source: InputReferenceDep,
    file: FileField = None,
    password: Annotated[
        str | None,
        Form(
            description="The user or owner password of the PDF.",
            json_schema_extra={"format": "password"},
        ),
    ] = None,
    wait: WaitQuery = None,
    priority: PriorityField = 0,
    accept: AcceptHeader = None,
) -> Response:
    """A missing password answers 422 ``password-required``, a wrong one ``wrong-password``."""
    params = {"action": "decrypt", **_given(password=password)}
    job_input = await store_document(services, file, source)
    return await answer_files(services, client, "pdf", params, job_input, wait, priority, accept)
