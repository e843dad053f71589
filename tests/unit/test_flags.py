"""Feature flags: the file/env provider's rules and stable rollout, a provider named by
import path, what flags decide for a job, and their metric and span events."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from openfeature.provider.in_memory_provider import InMemoryFlag, InMemoryProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from docworker.auth import Principal
from docworker.config import FlagDefinition, FlagSettings, load_settings
from docworker.errors import FeatureDisabled
from docworker.flags import (
    BUCKETS,
    HTML_ENGINE_FLAG,
    Flags,
    bucket,
    flag_problems,
)

ENGINES = {"weasyprint": "weasyprint", "chromium": "chromium"}


def _caller(tenant: str | None, key_id: str | None = None) -> Principal:
    return Principal(tenant=tenant, key_id=key_id, scopes=frozenset({"submit"}))


NAMES = {
    "convert_html_engine": HTML_ENGINE_FLAG,
    "ocr_preprocessing": "ocr.preprocessing",
    "operations_audio": "operations.audio",
}


def _flags(**definitions: dict[str, Any]) -> Flags:
    """Flags of the file provider defined by ``definitions`` (a flag's key spelt with
    underscores)."""
    return Flags(
        FlagSettings(
            definitions={
                NAMES[key]: FlagDefinition.model_validate(spec) for key, spec in definitions.items()
            }
        )
    )


def test_the_bucket_is_stable_and_in_range() -> None:
    assert bucket("convert.html-engine", "acme") == bucket("convert.html-engine", "acme")
    # sha256 of the flag's key and the tenant: the same in every process and release.
    digest = hashlib.sha256(b"convert.html-engine\x00acme").digest()
    assert bucket("convert.html-engine", "acme") == int.from_bytes(digest[:8], "big") % 10_000
    assert bucket("convert.html-engine", "acme") == 1899
    assert bucket("ocr.preprocessing", "acme") != bucket("convert.html-engine", "acme")
    assert all(0 <= bucket("f", f"t{i}") < BUCKETS for i in range(1000))


def test_a_rollout_splits_tenants_by_its_percentage() -> None:
    flags = _flags(
        convert_html_engine={
            "variants": ENGINES,
            "default": "weasyprint",
            "rollout": [{"variant": "chromium", "percent": 25}],
        }
    )
    got = [flags.string(HTML_ENGINE_FLAG, "x", _caller(f"tenant-{i}")) for i in range(4000)]
    share = got.count("chromium") / len(got)
    assert 0.23 < share < 0.27, share
    # The same tenant, asked again (another process would answer the same): the same.
    again = [flags.string(HTML_ENGINE_FLAG, "x", _caller(f"tenant-{i}")) for i in range(4000)]
    assert again == got


def test_widening_a_rollout_only_adds_tenants() -> None:
    def chromium(percent: float) -> set[str]:
        flags = _flags(
            convert_html_engine={
                "variants": ENGINES,
                "default": "weasyprint",
                "rollout": [{"variant": "chromium", "percent": percent}],
            }
        )
        tenants = [f"t{i}" for i in range(2000)]
        return {t for t in tenants if flags.string(HTML_ENGINE_FLAG, "x", _caller(t)) == "chromium"}

    assert chromium(10) < chromium(50) < chromium(100)
    assert len(chromium(100)) == 2000
    assert chromium(0) == set()


def test_tenant_and_key_overrides_come_before_the_rollout() -> None:
    flags = _flags(
        convert_html_engine={
            "variants": ENGINES,
            "default": "weasyprint",
            "tenants": {"acme": "chromium"},
            "keys": {"k-1": "weasyprint"},
            "rollout": [{"variant": "chromium", "percent": 100}],
            "rollout_by": "key",
        }
    )
    details = flags.client.get_string_details(HTML_ENGINE_FLAG, "x")
    assert (details.value, details.reason) == ("weasyprint", "STATIC")  # no caller: default
    assert flags.string(HTML_ENGINE_FLAG, "x", _caller("acme")) == "chromium"
    assert flags.string(HTML_ENGINE_FLAG, "x", _caller("acme", "k-1")) == "weasyprint"
    # rollout_by key: a caller with a key is in the 100 percent, one without is not.
    assert flags.string(HTML_ENGINE_FLAG, "x", _caller("other", "k-2")) == "chromium"
    assert flags.string(HTML_ENGINE_FLAG, "x", _caller("other")) == "weasyprint"


def test_a_disabled_flag_gives_the_code_its_default() -> None:
    flags = _flags(
        convert_html_engine={"variants": ENGINES, "default": "chromium", "enabled": False}
    )
    assert flags.string(HTML_ENGINE_FLAG, "weasyprint", _caller("acme")) == "weasyprint"


def test_unknown_variants_and_shares_over_100_are_refused() -> None:
    with pytest.raises(ValueError, match="variants not defined: blue"):
        FlagDefinition.model_validate({"default": "blue"})
    with pytest.raises(ValueError, match="more than 100"):
        FlagDefinition.model_validate(
            {"default": "off", "rollout": [{"variant": "on", "percent": 60}] * 2}
        )


def test_the_flags_file_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "flags.yaml"
    # A bare on/off in YAML is a boolean: as a variant's name it means "on"/"off".
    file.write_text(
        "flags:\n"
        "  operations.audio:\n"
        "    default: on\n"
        "    tenants: {beta: off}\n"
        "  convert.html-engine:\n"
        "    variants: {weasyprint: weasyprint, chromium: chromium}\n"
        "    default: chromium\n"
    )
    monkeypatch.setenv("DOCWORKER_FLAGS__FILE", str(file))
    # A flag of the settings replaces the file's flag of the same key.
    monkeypatch.setenv(
        "DOCWORKER_FLAGS__DEFINITIONS",
        json.dumps({"convert.html-engine": {"variants": ENGINES, "default": "weasyprint"}}),
    )
    flags = Flags.of(load_settings())
    assert flags.provider_name == "docworker-file"
    assert flags.boolean("operations.audio", True, _caller("beta")) is False
    assert flags.boolean("operations.audio", False, _caller("alpha")) is True
    assert flags.string(HTML_ENGINE_FLAG, "x", _caller("alpha")) == "weasyprint"
    # A flag the service knows and nothing defines answers its built-in default.
    assert flags.boolean("ocr.preprocessing", False, _caller("alpha")) is True


def test_a_bad_flags_file_is_named(tmp_path: Path) -> None:
    file = tmp_path / "flags.json"
    file.write_text(json.dumps({"flags": {"ocr.preprocessing": {"default": "maybe"}}}))
    settings = load_settings(flags={"file": file})
    [problem] = flag_problems(settings)
    assert str(file) in problem and "ocr.preprocessing" in problem and "maybe" in problem
    missing = flag_problems(load_settings(flags={"file": tmp_path / "no"}))
    assert missing == [f"flags file {tmp_path / 'no'}: No such file or directory"]


def memory_provider(engine: str = "weasyprint") -> InMemoryProvider:
    """A provider for ``flags.provider`` (named by import path in the test below)."""
    return InMemoryProvider(
        {HTML_ENGINE_FLAG: InMemoryFlag(default_variant="v", variants={"v": engine})}
    )


def test_any_provider_by_import_path() -> None:
    settings = FlagSettings(
        provider="tests.unit.test_flags:memory_provider", provider_options={"engine": "chromium"}
    )
    flags = Flags(settings)
    assert flags.provider_name == "In-Memory Provider"
    assert flags.decide("convert", {"to": "pdf"}, _caller("acme")) == {
        "to": "pdf",
        "engine": "chromium",
    }
    # Flags the provider does not know: the operations' defaults.
    assert flags.decide("audio", {}, _caller("acme")) == {}
    bad = load_settings(flags={"provider": "tests.unit.test_flags:nothing_here"})
    assert "cannot be loaded" in flag_problems(bad)[0]
    assert "is not 'module:attribute'" in flag_problems(load_settings(flags={"provider": "x"}))[0]


def test_what_flags_decide_for_a_job() -> None:
    flags = _flags(
        convert_html_engine={
            "variants": ENGINES,
            "default": "weasyprint",
            "tenants": {"a": "chromium"},
        },
        ocr_preprocessing={"default": "on", "tenants": {"a": "off"}},
        operations_audio={"default": "on", "tenants": {"b": "off"}},
    )
    assert flags.decide("convert", {}, _caller("a")) == {"engine": "chromium"}
    # What the request says is kept.
    assert flags.decide("convert", {"engine": "weasyprint"}, _caller("a"))["engine"] == "weasyprint"
    assert flags.decide("ocr", {}, _caller("a")) == {"preprocess": False}
    assert flags.decide("ocr", {}, _caller("b")) == {"preprocess": True}
    with pytest.raises(FeatureDisabled) as refused:
        flags.decide("audio", {"action": "analyze"}, _caller("b"))
    assert refused.value.fields == {"flag": "operations.audio"}
    assert refused.value.code == "feature-disabled"
    assert flags.decide("audio", {"action": "analyze"}, _caller("a")) == {"action": "analyze"}


def test_evaluations_are_counted_and_added_to_the_span() -> None:
    flags = _flags(
        convert_html_engine={
            "variants": ENGINES,
            "default": "weasyprint",
            "tenants": {"m": "chromium"},
        }
    )
    labels = {"flag": HTML_ENGINE_FLAG, "variant": "chromium", "reason": "targeting_match"}
    before = REGISTRY.get_sample_value("docworker_flag_evaluations_total", labels) or 0.0
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("test").start_as_current_span("submit"):
        assert flags.string(HTML_ENGINE_FLAG, "x", _caller("m", "key-9")) == "chromium"
    assert REGISTRY.get_sample_value("docworker_flag_evaluations_total", labels) == before + 1
    [span] = exporter.get_finished_spans()
    [event] = span.events
    assert event.name == "feature_flag.evaluation"
    assert dict(event.attributes or {}) == {
        "feature_flag.key": HTML_ENGINE_FLAG,
        "feature_flag.variant": "chromium",
        "feature_flag.evaluation.reason": "targeting_match",
        "feature_flag.context.id": "m",
        "feature_flag.provider_name": "docworker-file",
    }
    # Without a span (tracing off), the evaluation is only counted.
    assert flags.string(HTML_ENGINE_FLAG, "x", _caller("m")) == "chromium"
    assert REGISTRY.get_sample_value("docworker_flag_evaluations_total", labels) == before + 2
