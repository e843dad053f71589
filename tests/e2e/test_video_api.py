"""``POST /api/v2/video`` on a live ``docworker serve``: probe, transcode and frame answers
opened and checked, JSON results, 202, errors, and the OpenAPI description."""

from __future__ import annotations

import io
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from docworker.config import FfmpegSettings
from docworker.engines.ffmpeg import Ffmpeg
from tests.videos import BARS, bar_colours, close_to, needs_ffmpeg, test_video

__all__ = ["test_video"]
pytestmark = needs_ffmpeg


def _file(path: Path) -> dict[str, tuple[str, bytes]]:
    return {"file": (path.name, path.read_bytes())}


def test_probe_answers_json(client: httpx.Client, test_video: Path) -> None:
    answer = client.post("/api/v2/video", files=_file(test_video), data={"action": "probe"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["mime"] == "video/mp4" and body["duration"] == pytest.approx(4.0, abs=0.1)
    assert [s["codec"] for s in body["streams"]] == ["h264", "aac"]


def test_v1_style_transcode_answers_the_webm_file(
    client: httpx.Client, test_video: Path, tmp_path: Path
) -> None:
    answer = client.post(
        "/api/v2/video", files=_file(test_video), data={"clip": "1:2", "width": "160"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "video/webm"
    assert 'filename="video.webm"' in answer.headers["content-disposition"]
    assert answer.content[:4] == b"\x1a\x45\xdf\xa3"
    saved = tmp_path / "out.webm"
    saved.write_bytes(answer.content)
    made = Ffmpeg(FfmpegSettings()).probe(saved)
    assert made.video is not None and made.video.codec == "vp9"
    assert (made.video.get("width"), made.video.get("height")) == (160, 120)
    assert made.duration == pytest.approx(2.0, abs=0.1)


def test_a_frame_as_jpeg(client: httpx.Client, test_video: Path, tmp_path: Path) -> None:
    answer = client.post(
        "/api/v2/video",
        files=_file(test_video),
        data={"action": "frame", "format": "jpeg", "time": "0", "width": "240"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(answer.content)) as image:
        assert image.size == (240, 180)
    saved = tmp_path / "frame.jpeg"
    saved.write_bytes(answer.content)
    assert all(close_to(f, e) for f, e in zip(bar_colours(saved), BARS, strict=True))


def test_json_only_clients_get_the_result_and_fetch_the_artifact(
    client: httpx.Client, test_video: Path
) -> None:
    answer = client.post(
        "/api/v2/video",
        files=_file(test_video),
        data={"format": "mp4", "duration": "1", "mute": "true"},
        headers={"Accept": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["output"]["video_codec"] == "h264" and body["output"]["audio_codec"] is None
    assert body["artifacts"] == [
        {"name": "video.mp4", "mime": "video/mp4", "size": body["output"]["size"]}
    ]
    download = client.get(f"/api/v2/jobs/{body['job_id']}/artifacts/video.mp4")
    assert download.status_code == 200 and download.content[4:8] == b"ftyp"


def test_not_done_within_wait_is_202_then_the_job_has_the_file(
    client: httpx.Client, test_video: Path
) -> None:
    answer = client.post("/api/v2/video?wait=0", files=_file(test_video))
    assert answer.status_code == 202
    job = answer.json()
    deadline = time.monotonic() + 60
    while job["status"] not in {"succeeded", "failed", "dead"} and time.monotonic() < deadline:
        time.sleep(0.2)
        job = client.get(f"/api/v2/jobs/{job['id']}").json()
    assert job["status"] == "succeeded"
    download = client.get(f"/api/v2/jobs/{job['id']}/artifacts/video.webm")
    assert download.headers["content-type"] == "video/webm"


def test_errors_are_problems(client: httpx.Client, test_video: Path, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("no video here\n")
    refused = client.post("/api/v2/video", files=_file(text))
    assert refused.status_code == 415
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "unsupported-format"
    bad = client.post("/api/v2/video", files=_file(test_video), data={"clip": "00:00:05:10"})
    assert bad.status_code == 422 and bad.json()["parameter"] == "clip"
    past = client.post(
        "/api/v2/video", files=_file(test_video), data={"action": "frame", "time": "60"}
    )
    assert past.status_code == 422 and "past the end" in past.json()["detail"]


def test_openapi_documents_the_route(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    route = spec["paths"]["/api/v2/video"]["post"]
    assert route["operationId"] == "video"
    assert {"200", "202", "413", "415", "422", "429", "503"} <= set(route["responses"])
    content = route["responses"]["200"]["content"]
    assert {"application/json", "video/webm", "video/mp4", "image/png"} <= set(content)
    ref = route["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    form = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]
    assert {"file", "action", "format", "clip", "width", "height", "time", "mute"} <= set(form)
    assert all(form[name].get("description") for name in ("clip", "start", "crf", "percent"))


def test_scenes_answer_json_and_keyframes_are_artifacts(
    client: httpx.Client, test_video: Path
) -> None:
    answer = client.post(
        "/api/v2/video", files=_file(test_video), data={"action": "scenes", "width": "160"}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    # One shot of testsrc2: one scene over the whole video, its keyframe in the middle.
    (scene,) = body["scenes"]
    assert (scene["start"], scene["end"]) == (0.0, 4.0)
    assert scene["keyframe"] == {"name": "scene-001.jpeg", "time": 2.0}
    keyframe = client.get(f"/api/v2/jobs/{body['job_id']}/artifacts/scene-001.jpeg")
    assert keyframe.status_code == 200 and keyframe.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(keyframe.content)) as image:
        assert image.size == (160, 120)


def test_thumbnails_answer_json_and_a_preview_answers_the_animation(
    client: httpx.Client, test_video: Path
) -> None:
    answer = client.post(
        "/api/v2/video",
        files=_file(test_video),
        data={"action": "thumbnails", "count": "4", "columns": "2", "width": "80"},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [t["name"] for t in body["thumbnails"]] == [f"thumb-00{i}.jpeg" for i in range(1, 5)]
    assert body["sheet"] == "sheet.jpeg" and len(body["artifacts"]) == 5
    sheet = client.get(f"/api/v2/jobs/{body['job_id']}/artifacts/sheet.jpeg")
    with Image.open(io.BytesIO(sheet.content)) as image:
        assert image.size == (2 * 80 + 3 * 6, 2 * (60 + 20) + 3 * 6)
    animated = client.post(
        "/api/v2/video",
        files=_file(test_video),
        data={"action": "preview", "format": "gif", "duration": "1", "width": "80"},
    )
    assert animated.status_code == 200, animated.text
    assert animated.headers["content-type"] == "image/gif"
    with Image.open(io.BytesIO(animated.content)) as image:
        assert image.n_frames == pytest.approx(10, abs=1)


def test_concat_answers_the_joined_video(
    client: httpx.Client, test_video: Path, tmp_path: Path
) -> None:
    content = test_video.read_bytes()
    files = [("files", ("a.mp4", content)), ("files", ("b.mp4", content))]
    answer = client.post("/api/v2/video/concat", files=files, data={"format": "mp4"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "video/mp4"
    saved = tmp_path / "joined.mp4"
    saved.write_bytes(answer.content)
    made = Ffmpeg(FfmpegSettings()).probe(saved)
    assert made.duration == pytest.approx(8.0, abs=0.1)
    one = client.post("/api/v2/video/concat", files=files[:1])
    assert one.status_code == 422 and one.json()["parameter"] == "files"
