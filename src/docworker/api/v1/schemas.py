"""The v1 response shapes, for the OpenAPI document.

The routes build these bodies as plain dictionaries (v1 leaves keys out where
v2's models would write ``null``); the models here describe them, field by
field, so that the v1 routes show their real responses in ``/openapi.json``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

_TIME = "RFC 3339 time, UTC"


class V1ExtractionResult(BaseModel):
    text: str = Field(description="One line for PDF and office sources; as read for text.")
    source_type: str = Field(
        examples=["pdf"], description="pdf, office_direct, plain_text, pdf_pages or pdf_page"
    )
    page_count: int
    word_count: int
    char_count: int = Field(description="UTF-8 bytes of text.")
    metadata: dict[str, Any] = Field(
        description="source_file, extractor; pdf_info for PDFs; the range's pages"
    )
    extracted_at: str = Field(description=_TIME)
    duration: int = Field(description="Nanoseconds.")


class V1PdfPages(BaseModel):
    pages: list[V1ExtractionResult]
    total_pages: int
    extracted_at: str = Field(description=_TIME)


class V1OcrResult(BaseModel):
    text: str
    confidence: float = Field(ge=0, le=1, description="v1's heuristic on the text.")
    language: str = Field(examples=["tur+eng"])
    page_count: int = Field(1)
    metadata: dict[str, Any] = Field(
        description="input_file, psm, dpi; documents also source_type, page_number, source_file"
    )


class V1Accepted(BaseModel):
    job_id: str = Field(description="A UUID v4.")
    status: str = Field("accepted")
    message: str
    check_status_url: str = Field(examples=["/api/v1/job/0b6c3f2e-8d6e-4b7e-9a35-2f4f7e2d9a10"])


class V1ExtractionAccepted(V1Accepted):
    job_type: str = Field(examples=["full"], description="full, pages or range")
    start_page: int | None = Field(None, description="Range jobs only.")
    end_page: int | None = Field(None, description="Range jobs only.")


class V1Job(BaseModel):
    id: str
    type: str = Field(examples=["text_extraction"])
    status: str = Field(description="pending, processing, completed or failed")
    payload: dict[str, Any]
    result: dict[str, Any] | None = Field(None, description="Once completed.")
    error: str | None = Field(None, description="The latest failure, when there is one.")
    created_at: str = Field(description=_TIME)
    updated_at: str = Field(description=_TIME)
    completed_at: str | None = Field(None, description="Once completed.")
    retry_count: int = Field(description="Failed attempts so far.")
    max_retries: int = Field(description="Attempts the job may take.")


class V1ProcessingJob(BaseModel):
    id: str
    document_id: str
    type: str = Field(examples=["text_extract"])
    status: str
    parameters: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    retry_count: int
    created_at: str = Field(description=_TIME)
    started_at: str | None = None
    completed_at: str | None = None


class V1QueueStats(BaseModel):
    queue_stats: dict[str, int] = Field(examples=[{"pending": 3}])
    timestamp: str = Field(description=_TIME)


class V1StatsQueue(BaseModel):
    pending_jobs: int
    processing_jobs: int
    completed_jobs: int
    failed_jobs: int
    total_jobs: int
    timestamp: str = Field(description=_TIME)


class V1Document(BaseModel):
    id: str
    name: str
    type: str = Field(description="pdf, image, video, office, text or archive")
    path: str
    size: int
    mime_type: str
    status: str
    metadata: dict[str, Any] | None = None
    created_at: str = Field(description=_TIME)
    updated_at: str = Field(description=_TIME)
    processed_at: str | None = None


class V1ProcessingResult(BaseModel):
    job_id: str
    document_id: str
    type: str
    status: str = Field("pending")
    duration: int = Field(0)
    completed_at: str = Field("0001-01-01T00:00:00Z")


class V1Dependency(BaseModel):
    status: str = Field(description="healthy, unhealthy or unavailable")
    available: bool
    version: str | None = None
    message: str | None = None


class V1DomainHealth(BaseModel):
    status: str = Field(description="healthy or degraded")
    version: str = Field("1.0.0")
    timestamp: str = Field(description=_TIME)
    services: dict[str, dict[str, str]]
    dependencies: dict[str, V1Dependency]


class V1CacheStats(BaseModel):
    success: bool = True
    cache: dict[str, Any] = Field(
        description="enabled, and when enabled: size, directory, ttl (Go duration), max_size"
    )


class V1BatchSummary(BaseModel):
    total: int
    succeeded: int
    failed: int


class V1ConversionResult(BaseModel):
    success: bool
    input_path: str
    output_path: str
    conversion_type: str = Field(description="pdf_to_markdown or office_to_markdown")
    pages_processed: int | None = None
    duration: float = Field(description="Seconds.")
    file_size: int
    word_count: int
    char_count: int = Field(description="Characters (code points).")
    metadata: dict[str, Any] | None
    error: str | None = None


class V1BatchResult(BaseModel):
    success: bool
    summary: V1BatchSummary
    results: list[V1ConversionResult]
