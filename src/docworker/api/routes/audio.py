"""``POST /api/v2/audio``: probe, extract, analyze or draw the audio of a media file.

Like every synchronous endpoint it submits a job (the ``audio`` operation) and
waits up to ``wait`` seconds: a probe and an analysis answer JSON; an extract, a
waveform or a transcription (its subtitles) answers the file itself, or the job's
JSON result (with its artifact listed) when the request accepts only JSON; ``202``
with the job when it is not done.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Query, UploadFile
from fastapi.responses import Response

from docworker.api.answers import answer_files
from docworker.api.deps import ServicesDep
from docworker.api.errors import problem_responses
from docworker.api.routes.extract import run_and_answer
from docworker.api.routes.video import Time
from docworker.api.routing import feeds
from docworker.api.sources import InputReferenceDep, store_document
from docworker.api.submitting import JobClientWithWebhookDep
from docworker.api.uploads import ONE_FILE_PER_FIELD
from docworker.operations.audio_params import AudioAction

router = APIRouter(prefix="/api/v2", tags=["audio"], dependencies=[ONE_FILE_PER_FIELD])

ANALYZE_EXAMPLE = {
    "job_id": "5d0c1f7a-2b9e-4c61-8f0a-7a3e9c2b1d44",
    "action": "analyze",
    "start": 0.0,
    "duration": 10.005,
    "loudness": {
        "integrated_lufs": -27.9,
        "threshold_lufs": -39.0,
        "range_lu": 5.5,
        "true_peak_dbfs": -8.6,
    },
    "silence": {
        "threshold_db": -50.0,
        "min_duration": 0.5,
        "count": 1,
        "seconds": 0.918,
        "segments": [{"start": 0.0, "end": 0.918, "duration": 0.918}],
        "truncated": False,
    },
    "sound_share": 0.9082,
}


@router.post(
    "/audio",
    operation_id="audio",
    openapi_extra=feeds("audio"),
    summary="Probe, extract, analyze, draw or transcribe the audio of a media file",
    responses={
        200: {
            "description": "probe and analyze: JSON; extract: the audio file; waveform: "
            "a PNG; transcribe: the subtitles (JSON with the words, cues and the artifact "
            "listed instead when the request accepts only application/json)",
            "content": {
                "application/json": {"example": ANALYZE_EXAMPLE},
                "audio/wav": {},
                "audio/flac": {},
                "audio/mpeg": {},
                "audio/ogg": {},
                "audio/mp4": {},
                "image/png": {},
                "text/vtt": {},
                "application/x-subrip": {},
            },
        },
        202: {"description": "Not finished within `wait`: the job, to poll"},
        **problem_responses(403, 409, 413, 415, 422, 429, 503),
    },
)
async def audio(
    services: ServicesDep,
    client: JobClientWithWebhookDep,
    source: InputReferenceDep,
    file: Annotated[
        UploadFile | None,
        File(description="An audio file (MP3, WAV, FLAC, Ogg, M4A, …) or a video with sound."),
    ] = None,
    action: Annotated[
        AudioAction,
        Form(
            description="probe (JSON), extract (an audio file), analyze (JSON), waveform "
            "(PNG), transcribe (subtitles)"
        ),
    ] = AudioAction.EXTRACT,
    format: Annotated[
        str | None,
        Form(
            description="extract: wav (default), flac, mp3, opus or aac (m4a); transcribe: "
            "vtt (default) or srt"
        ),
    ] = None,
    start: Time = None,
    duration: Time = None,
    end: Time = None,
    sample_rate: Annotated[
        int | None, Form(ge=8000, le=192_000, description="extract: samples per second")
    ] = None,
    channels: Annotated[int | None, Form(ge=1, le=2, description="extract: 1 or 2")] = None,
    bitrate: Annotated[
        str | None, Form(description="extract, mp3/opus/aac: bit rate, e.g. '128k'")
    ] = None,
    silence_threshold: Annotated[
        float | None, Form(ge=-90, le=0, description="analyze: silence under this dBFS (-50)")
    ] = None,
    silence_min: Time = None,
    width: Annotated[int | None, Form(ge=64, le=8192, description="waveform: width")] = None,
    height: Annotated[int | None, Form(ge=32, le=4096, description="waveform: height")] = None,
    wait: Annotated[float | None, Query(ge=0, description="Seconds to wait for the result")] = None,
    priority: Annotated[int, Form(ge=-100, le=100)] = 0,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """Upload the file as the multipart ``file`` part, the parameters as form fields
    (see the ``audio`` operation). The stretch worked on: ``start`` with ``duration`` or
    ``end``; the silences of ``analyze``: quieter than ``silence_threshold`` dBFS for
    ``silence_min`` seconds or more."""
    given: dict[str, Any] = {
        "format": format,
        "start": start,
        "duration": duration,
        "end": end,
        "sample_rate": sample_rate,
        "channels": channels,
        "bitrate": bitrate,
        "silence_threshold": silence_threshold,
        "silence_min": silence_min,
        "width": width,
        "height": height,
    }
    params: dict[str, Any] = {"action": action}
    params.update({k: v for k, v in given.items() if v is not None and v != ""})
    job_input = await store_document(services, file, source)
    if action in {AudioAction.PROBE, AudioAction.ANALYZE}:
        return await run_and_answer(
            services, client, "audio", params, job_input, wait, priority, accept
        )
    return await answer_files(services, client, "audio", params, job_input, wait, priority, accept)
