"""Feature flags, through OpenFeature (docs/flags.md).

The service asks an OpenFeature client; what answers is a provider chosen by the
settings (``flags``):

* by default :class:`FileFlagProvider`: the flags the service knows
  (:data:`KNOWN_FLAGS`, each with its default), those of a flags file
  (``flags.file``, YAML or JSON) and those of the settings (``flags.definitions``,
  e.g. ``DOCWORKER_FLAGS__DEFINITIONS`` as JSON), each later one replacing a flag of
  the same key. A flag has variants, a default variant, variants for named tenants
  and API keys, and a rollout: shares of the other callers, each caller's share
  decided by :func:`bucket`, a stable hash of the flag's key and the caller's tenant
  (or key id), so that a tenant keeps its variant from one request and one process
  to the next, and widening a share only adds callers to it;
* any other OpenFeature provider, named by ``flags.provider`` (``module:attribute``:
  a class or factory called with ``flags.provider_options``).

The evaluation context of a request carries the caller's tenant (its targeting key)
and API key id. Every evaluation is counted in ``docworker_flag_evaluations_total``
and added to the current OpenTelemetry span as a ``feature_flag.evaluation`` event
with the semantic-convention attributes (nothing when tracing is off).

What the flags decide is decided once, when a job is submitted
(:meth:`Flags.decide`): the value is written into the job's parameters, so that the
worker runs what was decided, and the result cache's key (made of the parameters)
names the engine that really made a result.
"""

from __future__ import annotations

import hashlib
import importlib
import threading
import uuid
from collections.abc import Mapping
from typing import Any, TypeVar

import structlog
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagEvaluationDetails, FlagResolutionDetails, Reason
from openfeature.hook import Hook, HookContext, HookHints
from openfeature.provider import AbstractProvider, FeatureProvider, Metadata
from openfeature.telemetry import create_evaluation_event
from opentelemetry import trace
from prometheus_client import Counter
from pydantic import ValidationError

from docworker.auth import Principal
from docworker.config import FlagDefinition, FlagSettings, Settings, read_structured_file
from docworker.errors import FeatureDisabled

log = structlog.get_logger(__name__)

FLAG_EVALUATIONS = Counter(
    "docworker_flag_evaluations_total",
    "Feature flag evaluations, by flag, variant (the value for a provider that names "
    "none: true, false, or '-') and reason (static, targeting_match, split, disabled, "
    "default, error).",
    ["flag", "variant", "reason"],
)

#: Buckets of a rollout: a share of 0.01 percent is one bucket.
BUCKETS = 10_000

#: The HTML → PDF engine of a convert job whose request names none.
HTML_ENGINE_FLAG = "convert.html-engine"
#: Whether an OCR job whose request does not say prepares its images first.
OCR_PREPROCESSING_FLAG = "ocr.preprocessing"
#: Operations a flag opens (on) or closes (off), per caller.
OPERATION_FLAGS: dict[str, str] = {"audio": "operations.audio"}

_ON_OFF: dict[str, Any] = {"on": True, "off": False}

#: The flags the service evaluates, with their defaults: what the file provider answers
#: when no file or setting defines them (docs/flags.md lists them).
KNOWN_FLAGS: dict[str, FlagDefinition] = {
    HTML_ENGINE_FLAG: FlagDefinition(
        variants={"weasyprint": "weasyprint", "chromium": "chromium"}, default="weasyprint"
    ),
    OCR_PREPROCESSING_FLAG: FlagDefinition(variants=dict(_ON_OFF), default="on"),
    "operations.audio": FlagDefinition(variants=dict(_ON_OFF), default="on"),
}


def bucket(flag_key: str, subject: str) -> int:
    """The rollout bucket (0-9999) of ``subject`` (a tenant or key id) for ``flag_key``:
    sha256 of both, the same in every process and release."""
    digest = hashlib.sha256(f"{flag_key}\x00{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


T = TypeVar("T")


class FileFlagProvider(AbstractProvider):
    """Answers from flag definitions (see the module): the key's variant, else the
    tenant's, else the rollout share the caller's bucket falls in, else the default."""

    def __init__(self, flags: Mapping[str, FlagDefinition]) -> None:
        super().__init__()
        self.flags = dict(flags)

    def get_metadata(self) -> Metadata:
        return Metadata(name="docworker-file")

    def _resolve(
        self, key: str, default: T, context: EvaluationContext | None, kinds: tuple[type, ...]
    ) -> FlagResolutionDetails[T]:
        flag = self.flags.get(key)
        if flag is None:
            return FlagResolutionDetails(
                value=default,
                reason=Reason.ERROR,
                error_code=ErrorCode.FLAG_NOT_FOUND,
                error_message=f"no flag '{key}'",
            )
        if not flag.enabled:
            return FlagResolutionDetails(value=default, reason=Reason.DISABLED)
        variant, reason = self._variant(key, flag, context or EvaluationContext())
        value = flag.variants[variant]
        # bool is an int: a boolean flag is not a number, nor a number a boolean.
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            return FlagResolutionDetails(
                value=default,
                reason=Reason.ERROR,
                error_code=ErrorCode.TYPE_MISMATCH,
                error_message=f"flag '{key}' variant '{variant}' is not a {kinds[0].__name__}",
            )
        return FlagResolutionDetails(value=value, variant=variant, reason=reason)  # type: ignore[arg-type]

    @staticmethod
    def _variant(key: str, flag: FlagDefinition, context: EvaluationContext) -> tuple[str, Reason]:
        attributes = context.attributes
        key_id = attributes.get("key_id")
        tenant = attributes.get("tenant") or context.targeting_key
        if isinstance(key_id, str) and key_id in flag.keys:
            return flag.keys[key_id], Reason.TARGETING_MATCH
        if isinstance(tenant, str) and tenant in flag.tenants:
            return flag.tenants[tenant], Reason.TARGETING_MATCH
        subject = key_id if flag.rollout_by == "key" else tenant
        if flag.rollout and isinstance(subject, str) and subject:
            point = bucket(key, subject)
            edge = 0.0
            for share in flag.rollout:
                edge += share.percent * BUCKETS / 100
                if point < round(edge):
                    return share.variant, Reason.SPLIT
        return flag.default, Reason.STATIC

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return self._resolve(flag_key, default_value, evaluation_context, (bool,))

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._resolve(flag_key, default_value, evaluation_context, (str,))

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return self._resolve(flag_key, default_value, evaluation_context, (int,))

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._resolve(flag_key, default_value, evaluation_context, (float, int))

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Any,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Any]:
        return self._resolve(flag_key, default_value, evaluation_context, (dict, list))


def load_definitions(settings: FlagSettings) -> dict[str, FlagDefinition]:
    """The known flags, then the file's, then the settings': ValueError naming the flag
    (and file) at fault."""
    flags = dict(KNOWN_FLAGS)
    if settings.file is not None:
        data = read_structured_file(settings.file, "flags file")
        raw = data.get("flags", {})
        if not isinstance(raw, dict):
            raise ValueError(f"flags file {settings.file}: 'flags' must be a mapping")
        for key, given in raw.items():
            try:
                flags[str(key)] = FlagDefinition.model_validate(given)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(part) for part in first["loc"])
                raise ValueError(
                    f"flags file {settings.file}: flag '{key}'"
                    f"{' ' + where if where else ''}: {first['msg']}"
                ) from None
    flags.update(settings.definitions)
    return flags


def make_provider(settings: FlagSettings) -> FeatureProvider:
    """The provider the settings name (see the module); ValueError saying why not."""
    if settings.provider is None:
        return FileFlagProvider(load_definitions(settings))
    module_name, _, attribute = settings.provider.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"flags.provider '{settings.provider}' is not 'module:attribute'")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"flags.provider '{settings.provider}' cannot be loaded: {exc}") from None
    try:
        provider = factory(**settings.provider_options)
    except Exception as exc:  # noqa: BLE001 - a provider's own errors, reported by name
        raise ValueError(
            f"flags.provider '{settings.provider}' failed to start: {type(exc).__name__}: {exc}"
        ) from None
    if not callable(getattr(provider, "resolve_boolean_details", None)):
        raise ValueError(f"flags.provider '{settings.provider}' made no OpenFeature provider")
    return provider  # type: ignore[no-any-return]


def flag_problems(settings: Settings) -> list[str]:
    """Why the flags of ``settings`` cannot be loaded (empty: they can)."""
    try:
        make_provider(settings.flags)
    except ValueError as exc:
        return [str(exc)]
    return []


class FlagTelemetry(Hook):
    """Counts every evaluation and adds it to the current span (see the module)."""

    def finally_after(
        self, hook_context: HookContext, details: FlagEvaluationDetails[Any], hints: HookHints
    ) -> None:
        variant = details.variant
        if variant is None:
            variant = str(details.value).lower() if isinstance(details.value, bool) else "-"
        reason = str(details.reason or Reason.UNKNOWN).lower()
        FLAG_EVALUATIONS.labels(details.flag_key, variant[:64], reason[:32]).inc()
        span = trace.get_current_span()
        if not span.is_recording():
            return
        event = create_evaluation_event(hook_context, details)
        attributes: dict[str, str] = {
            str(name): str(value) for name, value in event.attributes.items()
        }
        for name, value in event.body.items():
            if isinstance(value, bool | int | float | str):
                attributes[f"feature_flag.result.{name}"] = str(value)
        span.add_event(event.name, attributes=attributes)


def context_of(caller: Principal) -> EvaluationContext:
    """The evaluation context of a caller: its tenant (the targeting key) and key id."""
    attributes: dict[str, Any] = {}
    if caller.tenant is not None:
        attributes["tenant"] = caller.tenant
    if caller.key_id is not None:
        attributes["key_id"] = caller.key_id
    return EvaluationContext(targeting_key=caller.tenant, attributes=attributes)


class Flags:
    """The service's OpenFeature client, on a provider of its own (a domain of its own,
    so that two services in one process do not share one)."""

    def __init__(self, settings: FlagSettings) -> None:
        self.domain = f"docworker-{uuid.uuid4().hex[:12]}"
        self._lock = threading.Lock()
        api.set_provider_and_wait(make_provider(settings), self.domain)
        self.client: OpenFeatureClient = api.get_client(self.domain)
        self.client.add_hooks([FlagTelemetry()])

    @classmethod
    def of(cls, settings: Settings) -> Flags:
        return cls(settings.flags)

    def reload(self, settings: FlagSettings) -> None:
        """Answer from the provider ``settings`` make from now on; ValueError (the old
        provider kept) when they make none."""
        provider = make_provider(settings)
        with self._lock:
            api.set_provider_and_wait(provider, self.domain)

    @property
    def provider_name(self) -> str:
        return api.get_provider_metadata(self.domain).name

    def string(self, key: str, default: str, caller: Principal) -> str:
        return self.client.get_string_value(key, default, context_of(caller))

    def boolean(self, key: str, default: bool, caller: Principal) -> bool:
        return self.client.get_boolean_value(key, default, context_of(caller))

    def allows(self, operation: str, caller: Principal) -> bool:
        """Whether ``caller`` may submit ``operation`` jobs: False when a flag closes it."""
        gate = OPERATION_FLAGS.get(operation)
        return gate is None or self.boolean(gate, True, caller)

    def decide(self, operation: str, params: dict[str, Any], caller: Principal) -> dict[str, Any]:
        """What the flags decide for a job ``caller`` submits: :class:`FeatureDisabled`
        when a flag closes the operation to it; else ``params`` with what the request left
        to the flags filled in (the HTML engine of a convert job, an OCR job's
        preprocessing), written into the job so that it is decided once."""
        if not self.allows(operation, caller):
            raise FeatureDisabled(OPERATION_FLAGS[operation], f"the '{operation}' operation")
        if operation == "convert" and params.get("engine") is None:
            engine = self.string(HTML_ENGINE_FLAG, "weasyprint", caller)
            if engine not in ("weasyprint", "chromium"):
                log.warning("flag gave no HTML engine: weasyprint", flag=HTML_ENGINE_FLAG)
                engine = "weasyprint"
            params = {**params, "engine": engine}
        elif operation == "ocr" and params.get("preprocess") is None:
            params = {**params, "preprocess": self.boolean(OCR_PREPROCESSING_FLAG, True, caller)}
        return params
