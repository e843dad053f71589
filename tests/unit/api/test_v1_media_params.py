"""How the v1 media routes read their requests: the operation and parameters of each
kind, the engine choice (``vipsEnable``, then ``VIPS_ENABLED``), the image-convert
format and parameters, and the documents API's media plans."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from starlette.datastructures import FormData
from starlette.requests import Request

from docworker.api.v1.documents import media_plan
from docworker.api.v1.errors import V1Error
from docworker.api.v1.image_convert import conversion_parameters, output_format
from docworker.api.v1.intake import MediaParams
from docworker.api.v1.media import operation_of, vips_choice
from docworker.config import Settings, V1Settings
from docworker.operations import get_operation, validate_params


@dataclass
class _Services:
    settings: Settings


def _request(query: str = "") -> Request:
    return Request({"type": "http", "method": "POST", "query_string": query.encode()})


def test_video_goes_to_v1_media_with_its_clip_only() -> None:
    operation, params = operation_of("video", MediaParams(clip="5:2.5", width=10), True)
    assert (operation, params) == ("v1_media", {"kind": "video", "clip": "5:2.5"})
    validate_params(get_operation("v1_media"), params)
    _, unclipped = operation_of("video", MediaParams(format="png", quality=3), False)
    assert unclipped == {"kind": "video"}


def test_images_and_documents_go_to_v1_media_with_what_was_given() -> None:
    given = MediaParams(width=100, crop="0:0:1:1", page=2, format="png")
    operation, params = operation_of("document", given, False)
    assert operation == "v1_media"
    assert params == {
        "kind": "document",
        "vips": False,
        "width": 100,
        "crop": "0:0:1:1",
        "page": 2,
        "format": "png",
    }
    validate_params(get_operation("v1_media"), params)


@pytest.mark.parametrize(
    ("query", "form", "setting", "vips"),
    [
        ("", {}, True, True),
        ("", {}, False, False),  # VIPS_ENABLED=false: the ffmpeg semantics
        ("vipsEnable=true", {}, False, True),  # given: the request decides
        ("vipsEnable=false", {}, True, False),
        ("vipsEnable=False", {}, True, True),  # only exactly 'false' disables
        ("", {"vipsEnable": "false"}, True, False),  # the form, when the query lacks it
    ],
)
def test_engine_choice(query: str, form: dict[str, str], setting: bool, vips: bool) -> None:
    services = _Services(Settings(v1=V1Settings(vips_enabled=setting)))
    assert vips_choice(_request(query), FormData(form), services) is vips  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ([("output_format", "png")], "png"),
        ([("OUTPUTFORMAT", "webp")], "webp"),
        ([("OutputFormat", "jpg"), ("format", "png")], "jpg"),
        ([("format", "avif")], "avif"),
        ([("output_format", " "), ("format", "gif")], "gif"),
        ([], None),
    ],
)
def test_output_format_spellings(fields: list[tuple[str, str]], expected: str | None) -> None:
    assert output_format(FormData(fields)) == expected


def test_conversion_parameters_fields_win_over_the_json() -> None:
    form = FormData([("parameters", '{"width": 10, "height": 20.0}'), ("width", "30")])
    assert conversion_parameters(form) == {"width": 30, "height": 20}
    for bad in ('{"width": "wide"}', "[1]", "{", '{"quality": 2.5}'):
        with pytest.raises(V1Error) as caught:
            conversion_parameters(FormData([("parameters", bad)]))
        assert caught.value.status == 400 and caught.value.error == "Invalid request body"


def test_documents_media_plans() -> None:
    pdf = "application/pdf"
    operation, params, kind, extra = media_plan("image_convert", {"width": "80", "page": 0}, pdf)
    assert (operation, kind, extra["media_kind"]) == ("v1_media", "media_processing", "document")
    assert params["width"] == 80 and "page" not in params
    operation, params, _, _ = media_plan("thumbnail", {}, "video/mp4")
    assert operation == "video" and params["action"] == "frame" and params["width"] == 200
    operation, params, _, _ = media_plan("thumbnail", {"size": 64}, "image/png")
    assert operation == "v1_media" and params["width"] == params["height"] == 64
    assert media_plan("pdf_generate", {}, "text/html")[:3] == (
        "convert",
        {"to": "pdf", "engine": "weasyprint"},
        "pdf_generation",
    )
