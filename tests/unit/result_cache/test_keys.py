"""What a result cache key covers: the input, the operation, the parameters with their
defaults, the versions, the tenant; and what it never holds: a secret in clear."""

from __future__ import annotations

from pathlib import Path

from docworker import result_cache
from docworker.config import load_settings
from docworker.operations import dump_params, get_operation, validate_params
from docworker.result_cache import CachedResult, ResultCache, engine_versions
from docworker.sealing import SecretKeys

FILE = {"sha256": "a" * 64, "name": "report.pdf", "mime": None}


def _params(keys: SecretKeys, **given: object) -> dict[str, object]:
    return dump_params(validate_params(get_operation("extract"), dict(given)), keys)


def test_keys_tell_apart_what_changes_a_result(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    keys = SecretKeys.from_settings(settings)
    cache = ResultCache(settings, versions={"docworker": "1"})
    key = cache.key("extract", _params(keys), [FILE], None)
    assert key is not None and key.startswith("extract:")
    # Defaults applied: naming the default changes nothing.
    assert cache.key("extract", _params(keys, output="markdown"), [FILE], None) == key
    assert cache.key("extract", _params(keys, output="text"), [FILE], None) != key
    assert cache.key("extract", _params(keys), [FILE | {"sha256": "b" * 64}], None) != key
    assert cache.key("extract", _params(keys), [FILE | {"name": "other.pdf"}], None) != key
    assert cache.key("extract", _params(keys), [FILE], "acme") != key
    upgraded = ResultCache(settings, versions={"docworker": "2"})
    assert upgraded.key("extract", _params(keys), [FILE], None) != key
    shared = ResultCache(
        load_settings(data_dir=tmp_path, cache={"shared_across_tenants": True}),
        versions={"docworker": "1"},
    )
    assert shared.key("extract", _params(keys), [FILE], "acme") == shared.key(
        "extract", _params(keys), [FILE], "beta"
    )
    assert cache.key("screenshot", {}, [FILE], None) is None


def test_a_password_counts_by_its_mac_never_in_clear(tmp_path: Path, monkeypatch: object) -> None:
    settings = load_settings(data_dir=tmp_path)
    keys = SecretKeys.from_settings(settings)
    cache = ResultCache(settings, versions={"docworker": "1"})
    seen: list[str] = []
    original = result_cache.json.dumps

    def spy(value: object, **kwargs: object) -> str:
        text = original(value, **kwargs)  # type: ignore[arg-type]
        seen.append(text)
        return text

    monkeypatch.setattr(result_cache.json, "dumps", spy)  # type: ignore[attr-defined]
    first = cache.key("extract", _params(keys, password="hunter2-secret"), [FILE], None)
    again = cache.key("extract", _params(keys, password="hunter2-secret"), [FILE], None)
    other = cache.key("extract", _params(keys, password="another-one"), [FILE], None)
    assert first == again != other
    assert seen and not any("hunter2" in text or "$sealed" in text for text in seen)


def test_engine_versions_name_the_service_libraries_and_programs(tmp_path: Path) -> None:
    versions = engine_versions(load_settings(data_dir=tmp_path))
    assert versions["docworker"]
    assert "pypdfium2" in versions
    assert "program:libreoffice.soffice_path" in versions


def test_an_upgrade_misses_what_was_kept_before(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    keys = SecretKeys.from_settings(settings)
    before = ResultCache(settings, memory=False, versions={"docworker": "1", "pypdfium2": "5"})
    after = ResultCache(settings, memory=False, versions={"docworker": "1", "pypdfium2": "6"})
    params = _params(keys)
    kept = before.key("extract", params, [FILE], None)
    assert kept is not None
    before.put(kept, CachedResult(ref={}, files={"result.json": b"{}"}, operation="extract"))
    upgraded = after.key("extract", params, [FILE], None)
    assert upgraded is not None and after.get(upgraded) is None
    assert before.get(kept) is not None
