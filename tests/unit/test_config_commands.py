"""Profiles, the settings file, ``docworker config show`` (no secret in what it prints)
and ``docworker config check``, and what a reload applies."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from docworker.cli import app
from docworker.config import Profile, load_settings, settings_of
from docworker.reload import apply

SECRETS = {
    "DOCWORKER_AUTH__SECRET": "Auth-Secret-Value-9f8e7d6c5b4a39281706",
    "DOCWORKER_DATABASE__URL": "postgresql://docworker:Db-Password-77@db.internal:5432/docworker",
    "DOCWORKER_CELERY__BROKER_URL": "amqp://guest:Broker-Password-55@mq:5672//",
    "DOCWORKER_CACHE__URL": "redis://:Cache-Password-33@cache:6379/0",
    "DOCWORKER_EVENTS__REDIS_URL": "rediss://user:Events-Password-44@events:6380/1",
    "DOCWORKER_RATE__STORAGE_URL": "redis://:Rate-Password-66@rate:6379/0",
    "DOCWORKER_STORAGE__URL": "s3://bucket/blobs?token=Storage-Token-88",
    "DOCWORKER_STORAGE__S3__SECRET_ACCESS_KEY": "S3-Secret-Key-11",
    "DOCWORKER_STORAGE__S3__SESSION_TOKEN": "S3-Session-Token-22",
    "DOCWORKER_SECRETS__KEYS": base64.b64encode(bytes(range(32))).decode(),
    "DOCWORKER_WEBHOOKS__SECRET": "whsec_"
    + base64.b64encode(b"Webhook-Secret-Bytes-0123456789!").decode(),
    "DOCWORKER_FLAGS__PROVIDER_OPTIONS": json.dumps({"api_token": "Flag-Api-Token-99"}),
}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean environment of DOCWORKER_* variables, the data folder in ``tmp_path``."""
    for name in list(__import__("os").environ):
        if name.startswith("DOCWORKER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DOCWORKER_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize("output", ["yaml", "json"])
def test_show_masks_every_secret(env: Path, monkeypatch: pytest.MonkeyPatch, output: str) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    subscription = {
        "name": "crm",
        "url": "https://crm.example/hook",
        "events": ["succeeded"],
        "secret": "whsec_" + base64.b64encode(b"Subscription-Secret-0123456789ab").decode(),
    }
    monkeypatch.setenv("DOCWORKER_WEBHOOKS__SUBSCRIPTIONS", json.dumps([subscription]))
    code, printed = _run("config", "show", "--format", output)
    assert code == 0, printed
    secret_values = [*SECRETS.values(), subscription["secret"]]
    pieces = [
        "Auth-Secret",
        "Db-Password",
        "Broker-Password",
        "Cache-Password",
        "Events-Password",
        "Rate-Password",
        "Storage-Token",
        "S3-Secret",
        "S3-Session",
        "Flag-Api-Token",
        "V2ViaG9vay1TZWNyZXQ",  # the webhook secret's base64
        "U3Vic2NyaXB0aW9u",  # the subscription's
        "AAECAwQFBgcICQoL",  # the sealing key's
    ]
    for secret in [*secret_values, *pieces]:
        assert secret not in printed, secret
    data = json.loads(printed) if output == "json" else yaml.safe_load(printed)
    shown = data["settings"]
    assert shown["database"]["url"] == "postgresql://docworker:***@db.internal:5432/docworker"
    assert shown["cache"]["url"] == "redis://:***@cache:6379/0"
    assert shown["storage"]["url"] == "s3://bucket/blobs?token=***"
    assert shown["auth"]["secret"] == "***"
    assert shown["secrets"]["keys"] == ["**********"]
    assert shown["flags"]["provider_options"] == {"api_token": "***"}
    assert data["sources"]["database.url"] == "environment"


def test_show_says_where_values_came_from(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = env / "docworker.toml"
    file.write_text('profile = "test"\n[executor]\nworkers = 3\njob_timeout = 60\n')
    monkeypatch.setenv("DOCWORKER_CONFIG_FILE", str(file))
    monkeypatch.setenv("DOCWORKER_EXECUTOR__WORKERS", "5")
    monkeypatch.setenv("OCR_DPI", "200")
    code, printed = _run("config", "show", "--format", "json")
    assert code == 0, printed
    data = json.loads(printed)
    assert data["settings"]["executor"]["workers"] == 5  # the environment over the file
    assert data["settings"]["executor"]["job_timeout"] == 60
    assert data["settings"]["cache"]["enabled"] is False  # the test profile's default
    assert data["sources"] == {
        "cache.enabled": "profile test",
        "data_dir": "environment",
        "executor.job_timeout": f"file {file}",
        "executor.retry_delay": "profile test",
        "executor.retry_max_delay": "profile test",
        "executor.workers": "environment",
        "ocr.dpi": "v1 environment",
        "profile": f"file {file}",
    }


def test_profiles_and_their_defaults(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    test = load_settings(profile="test")
    assert test.profile is Profile.TEST
    assert (test.cache.enabled, test.executor.retry_delay, test.executor.retry_max_delay) == (
        False,
        0.1,
        1.0,
    )
    assert not test.auth_enabled and not test.json_logs and test.listen_host == "127.0.0.1"
    # What a source sets wins over the profile's default.
    monkeypatch.setenv("DOCWORKER_CACHE__ENABLED", "true")
    assert load_settings(profile="test").cache.enabled is True
    development = load_settings()
    assert development.cache.enabled and development.executor.retry_delay == 5.0
    monkeypatch.setenv("ENVIRONMENT", "TEST")  # v1's variable names the profile too
    monkeypatch.delenv("DOCWORKER_CACHE__ENABLED")
    assert load_settings().profile is Profile.TEST


def test_check(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, printed = _run("config", "check")
    assert (code, printed) == (0, "ok: the development profile accepts these settings\n")
    code, printed = _run("config", "check", "--profile", "production")
    assert code == 1
    assert printed.splitlines() == [
        "the production profile refuses these settings:",
        "  - production needs auth.secret (DOCWORKER_AUTH__SECRET)",
        "  - no secrets.keys configured: secret parameters are sealed with a key generated "
        "into the data folder, readable by whoever reads the data",
    ]
    monkeypatch.setenv("DOCWORKER_AUTH__SECRET", "short")
    monkeypatch.setenv("DOCWORKER_LOG__LEVEL", "DEBUG")
    monkeypatch.setenv("DOCWORKER_FLAGS__FILE", str(env / "missing.yaml"))
    code, printed = _run("config", "check", "--profile", "production")
    assert code == 1
    assert "  - auth.secret is weak" in printed
    assert "  - log.level DEBUG may log request contents" in printed
    assert f"  - flags file {env / 'missing.yaml'}: No such file or directory" in printed
    assert "short" not in printed
    # Development refuses a service open to anyone on every address.
    monkeypatch.delenv("DOCWORKER_FLAGS__FILE")
    monkeypatch.setenv("DOCWORKER_SERVER__HOST", "0.0.0.0")
    code, printed = _run("config", "check")
    assert code == 1 and "listens on loopback only" in printed
    # Settings that do not validate: 2, the field named, not the value.
    monkeypatch.setenv("DOCWORKER_LIMITS__MAX_PAGES", "-4")
    code, printed = _run("config", "check")
    assert code == 2 and "limits.max_pages" in printed and "-4" not in printed
    code, printed = _run("config", "check", "--profile", "staging")
    assert code == 2 and "development, test, production" in printed


def test_a_settings_file_that_cannot_be_read(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = env / "docworker.yaml"
    file.write_text("executor: [1, 2\n")
    monkeypatch.setenv("DOCWORKER_CONFIG_FILE", str(file))
    code, printed = _run("config", "show")
    assert code == 2 and f"settings file {file} is not valid yaml" in printed


def test_a_reload_applies_what_is_safe_and_names_the_rest(env: Path) -> None:
    live = load_settings()
    server = live.server
    new = load_settings(
        limits={"max_pages": 7},
        log={"level": "WARNING"},
        server={"port": 4000, "max_wait": 60},
        database={"echo": True},
    )
    outcome = apply(live, new)
    assert outcome.refused == []
    assert sorted(outcome.applied) == ["limits.max_pages", "log.level", "server.max_wait"]
    assert sorted(outcome.restart_needed) == ["database.echo", "server.port"]
    # In place: what holds a part of the settings sees the new values.
    assert live.server is server and server.max_wait == 60 and server.port == 3001
    assert live.limits.max_pages == 7 and not live.database.echo
    # Settings the profile refuses are refused whole.
    production = load_settings(
        profile="production",
        auth={"secret": "r4Tq8Lm2Xv7Kd1Pz9Wc3Hn6Bf0Js5Ga2Ye8Ut4"},
        secrets={"keys": [base64.b64encode(bytes(range(32))).decode()]},
    )
    refused = apply(
        production,
        production.model_copy(
            update={
                "log": live.log.model_copy(update={"level": "DEBUG"}),
                "limits": live.limits.model_copy(update={"max_pages": 9}),
            }
        ),
    )
    assert refused.refused == ["log.level DEBUG may log request contents"]
    assert production.limits.max_pages == 5000 and production.log.level == "INFO"


def test_a_dump_is_rebuilt_without_the_settings_file(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker rebuilds the service's settings from their dump: a settings file broken
    # (or changed) since the service read it is not read again.
    file = env / "docworker.json"
    file.write_text('{"executor": {"workers": 3}, "server": {"upload_limits": {"/a": 5}}}')
    monkeypatch.setenv("DOCWORKER_CONFIG_FILE", str(file))
    dumped = load_settings().model_dump(mode="json")
    file.write_text('{"server": {"upload_limits": {"/b": 7}}, "executor": ')
    rebuilt = settings_of(dumped)
    assert rebuilt.executor.workers == 3
    assert rebuilt.server.upload_limits == {"/a": 5}
    with pytest.raises(ValueError, match="is not valid json"):
        load_settings()
