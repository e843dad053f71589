"""What a worker is sent when it starts: settings whose JSON form masks secrets, and
the secrets it needs beside them."""

from __future__ import annotations

from pathlib import Path

from docworker.config import Settings
from docworker.jobs.template import worker_config
from docworker.jobs.worker import worker_settings
from docworker.sealing import SecretKeys
from docworker.storage import storage_options


def test_a_worker_has_the_stores_credentials(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        storage={
            "url": "s3://bucket/blobs",
            "s3": {
                "access_key_id": "key",
                "secret_access_key": "the-secret",
                "session_token": "the-token",
            },
        },
    )
    config = worker_config(settings, SecretKeys.from_settings(settings))
    assert "the-secret" not in str(config["settings"])
    received = worker_settings(config)
    options = storage_options(received.storage, received.storage_url)
    assert (options["key"], options["secret"], options["token"]) == (
        "key",
        "the-secret",
        "the-token",
    )
    assert received.storage.s3 == settings.storage.s3
