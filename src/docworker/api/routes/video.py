"""``POST /api/v2/video``: probe a video or audio file, transcode it, grab a frame, or
find its scenes.

Like every synchronous endpoint it submits a job (the ``video`` operation) and
waits up to ``wait`` seconds: a probe and the scenes answer JSON (the scenes'
keyframes listed as the job's artifacts); a transcode or a frame
answers the file itself, or the job's JSON result (with its artifact listed)
when the request accepts only JSON; ``202`` with the job when it is not done.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Query, UploadFile
from fastapi.responses import Response
from starlette.datastructures import UploadFile as StarletteUploadFile

from docworker.api.answers import answer_files
from docworker.api.deps import ServicesDep
from docworker.api.errors import problem_responses
from docworker.api.routes.extract import run_and_answer
from docworker.api.routing import feeds
from docworker.api.schemas import FormBool
from docworker.api.sources import InputReferenceDep, store_document
from docworker.api.submitting import JobClientWithWebhookDep
from docworker.api.uploads import ONE_FILE_PER_FIELD, store_uploads
from docworker.errors import LimitExceeded
from docworker.operations.video import MAX_CONCAT_INPUTS
from docworker.operations.video_params import VideoAction, VideoCodec

router = APIRouter(prefix="/api/v2", tags=["video"], dependencies=[ONE_FILE_PER_FIELD])

PROBE_EXAMPLE = {
    "job_id": "0b6c3f2e-8d6e-4b7e-9a35-2f4f7e2d9a10",
    "action": "probe",
    "mime": "video/mp4",
    "container": "mov,mp4,m4a,3gp,3g2,mj2",
    "duration": 13.696,
    "size": 1053651,
    "bit_rate": 615450,
    "streams": [
        {"index": 0, "type": "video", "codec": "h264", "width": 320, "height": 240, "fps": 15.0},
        {"index": 1, "type": "audio", "codec": "aac", "channels": 2, "sample_rate": 48000},
    ],
    "tags": {"encoder": "Lavf53.24.2"},
}

_JSON_TYPES = frozenset({"application/json", "application/problem+json"})

Time = Annotated[
    str | None,
    Form(description="Seconds ('2.5'), with a unit ('1500ms') or a clock ('00:01:02.5')"),
]


@router.post(
    "/video",
    operation_id="video",
    openapi_extra=feeds("video"),
    summary="Probe, transcode a video; frames, thumbnails, preview, scenes",
    responses={
        200: {
            "description": "probe, scenes, thumbnails, analytics: JSON (images as the job's "
            "artifacts); "
            "transcode: the video file (HLS: a zip of the playlist and its segments); frame, "
            "preview: the image; subtitles: the file "
            "(JSON with the artifact listed instead when the request accepts only "
            "application/json)",
            "content": {
                "application/json": {"example": PROBE_EXAMPLE},
                "video/webm": {},
                "video/mp4": {},
                "application/zip": {},
                "image/png": {},
                "image/jpeg": {},
                "image/webp": {},
                "image/gif": {},
                "text/vtt": {},
                "application/x-subrip": {},
            },
        },
        202: {"description": "Not finished within `wait`: the job, to poll"},
        **problem_responses(403, 409, 413, 415, 422, 429, 503),
    },
)
async def video(
    services: ServicesDep,
    client: JobClientWithWebhookDep,
    source: InputReferenceDep,
    file: Annotated[
        UploadFile | None, File(description="A video or audio file (MP4, WebM, MKV, …).")
    ] = None,
    action: Annotated[
        VideoAction,
        Form(
            description="probe (JSON), transcode (a video), frame (an image), scenes (JSON), "
            "thumbnails (JSON), preview (an animated WebP or GIF), subtitles (WebVTT/SubRip), "
            "analytics (JSON, with a timeline chart)"
        ),
    ] = VideoAction.TRANSCODE,
    format: Annotated[
        str | None,
        Form(
            description="transcode: webm (default), mp4 or hls; frame: png (default), jpeg, "
            "webp; "
            "scenes, thumbnails: jpeg (default), png, webp; preview: webp (default), gif; "
            "subtitles: vtt (default), srt"
        ),
    ] = None,
    video_codec: Annotated[
        VideoCodec | None, Form(description="webm: vp9 (default) or vp8; mp4: h264")
    ] = None,
    width: Annotated[int | None, Form(ge=2, le=16384, description="Fit to this width")] = None,
    height: Annotated[int | None, Form(ge=2, le=16384, description="Fit to this height")] = None,
    clip: Annotated[
        str | None, Form(description="v1's 'start:duration' trim, e.g. '5:2.5'")
    ] = None,
    start: Time = None,
    duration: Time = None,
    end: Time = None,
    crf: Annotated[int | None, Form(ge=0, le=63, description="Constant quality")] = None,
    max_bitrate: Annotated[str | None, Form(description="Video bit-rate cap, e.g. '2M'")] = None,
    audio_bitrate: Annotated[str | None, Form(description="Audio bit rate, e.g. '128k'")] = None,
    mute: Annotated[FormBool, Form(description="transcode: leave the audio out")] = False,
    max_fps: Annotated[
        float | None, Form(ge=1, le=240, description="transcode: cap on the frame rate")
    ] = None,
    time: Time = None,
    percent: Annotated[
        float | None, Form(ge=0, le=100, description="frame: time as % of the duration")
    ] = None,
    quality: Annotated[
        int | None, Form(ge=1, le=100, description="frame, scenes: JPEG or WebP quality")
    ] = None,
    threshold: Annotated[
        float | None,
        Form(ge=1, le=255, description="scenes: adaptive threshold of a cut (3; lower: more)"),
    ] = None,
    min_scene: Annotated[
        str | None, Form(description="scenes: the shortest scene, e.g. '0.5' (seconds)")
    ] = None,
    keyframes: Annotated[
        FormBool, Form(description="scenes: one image per scene as an artifact")
    ] = True,
    count: Annotated[int | None, Form(ge=1, le=100, description="thumbnails: how many (9)")] = None,
    sheet: Annotated[
        FormBool, Form(description="thumbnails: also a contact sheet with the times")
    ] = True,
    columns: Annotated[
        int | None, Form(ge=1, le=20, description="thumbnails: the sheet's columns")
    ] = None,
    subtitle_stream: Annotated[
        int | None,
        Form(ge=0, le=99, description="subtitles, burn_subtitles: which subtitle stream (0)"),
    ] = None,
    burn_subtitles: Annotated[
        FormBool, Form(description="transcode: draw the subtitle stream onto the picture")
    ] = False,
    smart: Annotated[
        FormBool, Form(description="thumbnails: pass over black, flat and blurred frames")
    ] = True,
    wait: Annotated[float | None, Query(ge=0, description="Seconds to wait for the result")] = None,
    priority: Annotated[int, Form(ge=-100, le=100)] = 0,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """Upload the file as the multipart ``file`` part, the parameters as form fields
    (see the ``video`` operation). Times: ``clip`` (start:duration), or ``start`` with
    ``duration`` or ``end``; a frame at ``time`` or ``percent``; scenes with their
    keyframes (``GET /api/v2/jobs/{id}/artifacts/scene-001.jpeg``)."""
    given: dict[str, Any] = {
        "format": format,
        "video_codec": video_codec,
        "width": width,
        "height": height,
        "clip": clip,
        "start": start,
        "duration": duration,
        "end": end,
        "crf": crf,
        "max_bitrate": max_bitrate,
        "audio_bitrate": audio_bitrate,
        "max_fps": max_fps,
        "time": time,
        "percent": percent,
        "quality": quality,
        "threshold": threshold,
        "min_scene": min_scene,
        "count": count,
        "columns": columns,
        "subtitle_stream": subtitle_stream,
    }
    params: dict[str, Any] = {"action": action, "mute": mute}
    if burn_subtitles:
        params["burn_subtitles"] = True
    if action in {VideoAction.SCENES, VideoAction.ANALYTICS}:
        params["keyframes"] = keyframes
    if action is VideoAction.THUMBNAILS:
        params.update(sheet=sheet, smart=smart)
    params.update({k: v for k, v in given.items() if v is not None and v != ""})
    job_input = await store_document(services, file, source)
    if action in {
        VideoAction.PROBE,
        VideoAction.SCENES,
        VideoAction.THUMBNAILS,
        VideoAction.ANALYTICS,
    }:
        return await run_and_answer(
            services, client, "video", params, job_input, wait, priority, accept
        )
    return await answer_files(
        services, client, "video", params, job_input, wait, priority, accept, zip_name="hls.zip"
    )


@router.post(
    "/video/concat",
    operation_id="video_concat",
    openapi_extra=feeds("video"),
    summary="Join several videos into one",
    responses={
        200: {
            "description": "The joined video (JSON with the artifact listed instead when "
            "the request accepts only application/json)",
            "content": {"video/webm": {}, "video/mp4": {}, "application/json": {}},
        },
        202: {"description": "Not finished within `wait`: the job, to poll"},
        **problem_responses(403, 409, 413, 415, 422, 429, 503),
    },
)
async def concat(
    services: ServicesDep,
    client: JobClientWithWebhookDep,
    files: Annotated[
        list[UploadFile], File(description="The videos, in the order they are to play.")
    ],
    format: Annotated[str | None, Form(description="webm (default) or mp4")] = None,
    video_codec: Annotated[
        VideoCodec | None, Form(description="webm: vp9 (default) or vp8; mp4: h264")
    ] = None,
    width: Annotated[int | None, Form(ge=2, le=16384, description="Fit to this width")] = None,
    height: Annotated[int | None, Form(ge=2, le=16384, description="Fit to this height")] = None,
    crf: Annotated[int | None, Form(ge=0, le=63, description="Constant quality")] = None,
    max_bitrate: Annotated[str | None, Form(description="Video bit-rate cap, e.g. '2M'")] = None,
    audio_bitrate: Annotated[str | None, Form(description="Audio bit rate, e.g. '128k'")] = None,
    mute: Annotated[FormBool, Form(description="Leave the sound out")] = False,
    wait: Annotated[float | None, Query(ge=0, description="Seconds to wait for the result")] = None,
    priority: Annotated[int, Form(ge=-100, le=100)] = 0,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """Send two to 20 ``files`` parts; they play in upload order. Each is fitted into
    the first one's picture (or ``width``/``height``), letter-boxed where its shape
    differs, at the first one's frame rate; silence stands in for a file without sound."""
    given: dict[str, Any] = {
        "format": format,
        "video_codec": video_codec,
        "width": width,
        "height": height,
        "crf": crf,
        "max_bitrate": max_bitrate,
        "audio_bitrate": audio_bitrate,
    }
    params: dict[str, Any] = {"action": VideoAction.CONCAT, "mute": mute}
    params.update({k: v for k, v in given.items() if v is not None and v != ""})
    if len(files) > MAX_CONCAT_INPUTS:
        raise LimitExceeded("files count", len(files), MAX_CONCAT_INPUTS)
    first, *others = await store_uploads(services, list[StarletteUploadFile](files), field="files")
    return await answer_files(
        services, client, "video", params, first, wait, priority, accept, others=others
    )
