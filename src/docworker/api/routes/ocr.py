"""``GET /api/v2/ocr/languages``: the OCR languages this service can read, and its default."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from docworker.api.deps import SettingsDep
from docworker.engines.ocr import available_languages

router = APIRouter(prefix="/api/v2", tags=["ocr"])


class OcrLanguages(BaseModel):
    languages: list[str] = Field(
        description="Tesseract language codes with data installed, e.g. 'eng', 'chi_sim'; "
        "join several with '+' in the 'languages' and 'ocr_lang' parameters."
    )
    default: str = Field(description="The languages used when a request names none.")


@router.get(
    "/ocr/languages",
    operation_id="ocr_languages",
    summary="List OCR languages",
    response_model=OcrLanguages,
)
def ocr_languages(settings: SettingsDep) -> OcrLanguages:
    """The languages OCR can read here; 503 when no Tesseract language data is installed."""
    return OcrLanguages(languages=available_languages(), default=settings.ocr.language)
