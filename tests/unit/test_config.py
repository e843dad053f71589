"""Settings: defaults, DOCWORKER_* variables, v1 names as aliases, Go durations."""

from __future__ import annotations

import pytest

from docworker.config import Profile, load_settings, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5s", 5),
        ("1m30s", 90),
        ("2h45m", 9900),
        ("1.5h", 5400),
        ("300ms", 0.3),
        ("7", 7),
        ("250us", 0.00025),
        ("0", 0),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5x", "s", "1h 2m", "abc"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PORT", "SERVER_PORT", "ENVIRONMENT", "OCR_LANGUAGE"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(data_dir="/srv/dw")
    assert settings.server.port == 3001
    assert settings.profile is Profile.DEVELOPMENT
    assert settings.database_url == "sqlite:////srv/dw/docworker.db"
    assert settings.storage_url == "file:///srv/dw/blobs"
    assert settings.executor.max_attempts == 3
    assert not settings.json_logs


def test_v1_names_are_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "8080")
    monkeypatch.setenv("SERVER_PORT", "9090")
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("OCR_LANGUAGE", "tur+eng")
    monkeypatch.setenv("WORKER_RETRY_DELAY", "1m30s")
    monkeypatch.setenv("WORKER_RETRY_COUNT", "5")
    monkeypatch.setenv("WORKER_MAX_CONCURRENCY", "3")
    settings = load_settings()
    assert settings.server.port == 8080
    assert settings.profile is Profile.PRODUCTION
    assert settings.json_logs
    assert settings.ocr.language == "tur+eng"
    assert settings.executor.retry_delay == 90
    assert settings.executor.max_attempts == 5
    assert settings.executor.workers == 3


def test_server_port_when_port_is_unset_or_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "")
    monkeypatch.setenv("SERVER_PORT", "9090")
    assert load_settings().server.port == 9090


def test_docworker_names_win_over_v1_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "8080")
    monkeypatch.setenv("DOCWORKER_SERVER__PORT", "7070")
    assert load_settings().server.port == 7070


def test_a_bad_v1_value_falls_back_to_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_RETRY_DELAY", "soon")
    monkeypatch.delenv("DOCWORKER_EXECUTOR__RETRY_DELAY", raising=False)
    with pytest.warns(UserWarning, match="WORKER_RETRY_DELAY"):
        settings = load_settings()
    assert settings.executor.retry_delay == 5


def test_unsafe_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCWORKER_EXECUTOR__WORKERS", "0")
    with pytest.raises(ValueError, match="workers"):
        load_settings()


def test_body_limits_per_route(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "DOCWORKER_SERVER__UPLOAD_LIMITS", '{"/api/v2/": 100, "/api/v2/video": 5000}'
    )
    server = load_settings(server={"max_upload_bytes": 1000}).server
    assert server.upload_limit("/api/v2/video") == 5000
    assert server.upload_limit("/api/v2/extract") == 100
    assert server.upload_limit("/api/v1/ocr/image") == 1000
    assert server.largest_upload == 5000
    monkeypatch.setenv("DOCWORKER_SERVER__UPLOAD_LIMITS", '{"/api/v2/": 0}')
    with pytest.raises(ValueError, match="greater than 0"):
        load_settings()


def test_each_family_has_a_queue_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    from docworker.operations import OPERATIONS
    from docworker.operations.base import Family

    monkeypatch.setenv("DOCWORKER_QUEUE__OCR", "40")
    monkeypatch.setenv("DOCWORKER_QUEUE__MEDIA", "0")
    settings = load_settings(executor={"workers": 3})
    bounds = {family: settings.queue.bound(family.value, 3) for family in Family}
    assert bounds == {
        Family.DOCUMENTS: 48,  # 16 per worker
        Family.OCR: 40,
        Family.CONVERT: 48,
        Family.MEDIA: None,  # 0: no bound
    }
    assert {op.queue for op in OPERATIONS.values()} == set(Family)


def test_queue_shares_and_retry_range_are_ordered() -> None:
    with pytest.raises(ValueError, match="low_share"):
        load_settings(queue={"low_share": 0.9, "normal_share": 0.5})
    with pytest.raises(ValueError, match="retry_after_min"):
        load_settings(queue={"retry_after_min": 60, "retry_after_max": 10})
