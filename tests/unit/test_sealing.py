"""Sealing secret values: the key ring, rotation, the generated key, the settings."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from docworker.config import Settings, load_settings
from docworker.errors import AfterFailure, SecretUnreadable
from docworker.sealing import KEY_FILE, SecretKeys, comparable, is_sealed, new_key


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_sealed_value_opens_and_shows_nothing_of_itself() -> None:
    keys = SecretKeys([new_key()])
    first, second = keys.seal("hunter2-at-rest"), keys.seal("hunter2-at-rest")
    assert is_sealed(first)
    assert "hunter2" not in str(first)
    assert keys.open(first) == keys.open(second) == "hunter2-at-rest"
    # Each sealing is a new token, yet both compare equal, and unlike another value.
    assert first != second
    assert comparable({"password": first}) == comparable({"password": second})
    assert comparable({"password": first}) != comparable({"password": keys.seal("other")})
    assert not is_sealed("hunter2") and not is_sealed({"$sealed": "x"})


def test_every_key_opens_and_the_first_seals() -> None:
    old, new = new_key(), new_key()
    sealed_by_old = SecretKeys([old]).seal("value")
    ring = SecretKeys([new, old])
    assert ring.open(sealed_by_old) == "value"
    assert not ring.current(sealed_by_old)
    assert ring.current(ring.seal("value"))
    with pytest.raises(SecretUnreadable) as unreadable:
        SecretKeys([new]).open(sealed_by_old)
    assert unreadable.value.after_failure is AfterFailure.FAILED
    assert "value" not in unreadable.value.detail


def test_a_key_is_generated_once_into_the_data_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = load_settings(data_dir=data)
    sealed = SecretKeys.from_settings(settings).seal("value")
    key_file = data / KEY_FILE
    assert _mode(key_file) == 0o600
    assert _mode(data) == 0o700
    assert SecretKeys.from_settings(settings).open(sealed) == "value"
    assert [p.name for p in data.iterdir()] == [KEY_FILE]
    key_file.chmod(0o644)
    SecretKeys.from_settings(settings)
    assert _mode(key_file) == 0o600


def test_a_key_file_that_holds_no_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).write_text("not a key\n")
    with pytest.raises(ValueError, match="does not hold a key"):
        SecretKeys.from_settings(load_settings(data_dir=tmp_path))


def test_configured_keys_are_used_and_no_file_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = new_key(), new_key()
    monkeypatch.setenv("DOCWORKER_SECRETS__KEYS", f"{first}, {second}")
    settings = load_settings(data_dir=tmp_path)
    assert [k.get_secret_value() for k in settings.secrets.keys] == [first, second]
    assert SecretKeys.from_settings(settings).export() == [first, second]
    assert not (tmp_path / KEY_FILE).exists()
    monkeypatch.setenv("DOCWORKER_SECRETS__KEYS", f'["{second}"]')
    assert load_settings().secrets.keys[0].get_secret_value() == second
    assert first not in repr(settings) and first not in str(settings.model_dump())


def test_a_value_that_is_not_a_key_is_refused_without_being_shown() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(secrets={"keys": [new_key(), "correct-horse-battery-staple"]})
    assert "key 2 is not the url-safe base64 of 32 bytes" in str(refused.value)
    assert "correct-horse" not in str(refused.value)


def test_the_production_check_knows_whether_keys_are_configured_and_strong() -> None:
    assert "no secrets.keys configured" in (Settings().secret_key_problem() or "")
    weak = base64.urlsafe_b64encode(bytes(range(8)) * 4).decode()
    problem = Settings(secrets={"keys": [new_key(), weak]}).secret_key_problem()
    assert problem == "secrets.keys: key 2 is weak (its bytes were not drawn at random)"
    assert Settings(secrets={"keys": [new_key(), new_key()]}).secret_key_problem() is None
