"""What ``docworker config show`` and ``docworker config check`` print.

:func:`masked` is the effective settings as plain data with every secret hidden: the
``SecretStr`` fields (pydantic prints them as ``**********``), the password of any URL
(``postgresql://user:***@host/db``, ``redis://:***@host``), secret-looking query
parameters of a URL, and any value of a mapping whose key names a secret (a custom flag
provider's ``token``, say). :func:`sources` tells where each value given came from.
:func:`problems` is what a profile refuses, with the reasons.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic_settings import EnvSettingsSource

from docworker.config import (
    CONFIG_FILE_VARIABLE,
    PROFILE_DEFAULTS,
    ConfigFileSource,
    Settings,
    V1EnvironmentSource,
)

MASK = "***"
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/@:\s]*):(?P<pw>[^@/\s]*)@")
_SECRET_QUERY = re.compile(
    r"(?P<head>[?&](?:password|passwd|pwd|secret|token|access_token|api_key|apikey|key|"
    r"sig|signature|x-amz-signature|x-amz-security-token)=)(?P<value>[^&#\s]*)",
    re.IGNORECASE,
)
_SECRET_NAME = re.compile(
    r"(^|[_-])(secret|secrets|password|passwd|token|credential|credentials|apikey|api_key|"
    r"private_key|auth)($|[_-])",
    re.IGNORECASE,
)
#: Settings whose names look secret but hold none (a name, a switch, a prefix).
_NOT_SECRET = frozenset({"key_prefix", "query_parameter"})


def mask_text(text: str) -> str:
    """``text`` with the password of any URL in it and secret query parameters hidden."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}:{MASK}@", text)
    return _SECRET_QUERY.sub(lambda m: f"{m['head']}{MASK}", text)


def _mask(value: Any, name: str | None = None) -> Any:
    if isinstance(value, dict):
        return {key: _mask(item, str(key)) for key, item in value.items()}
    if isinstance(value, list):
        return [_mask(item, name) for item in value]
    if isinstance(value, str):
        if name is not None and name not in _NOT_SECRET and _SECRET_NAME.search(name) and value:
            return MASK
        return mask_text(value)
    return value


def masked(settings: Settings) -> dict[str, Any]:
    """The effective settings as JSON-able data, every secret hidden (see the module)."""
    data = settings.model_dump(mode="json")
    # The profile's decisions, spelled out (they are properties, not fields).
    data["effective"] = {
        "auth_enabled": settings.auth_enabled,
        "rate_enabled": settings.rate_enabled,
        "listen_host": settings.listen_host,
        "json_logs": settings.json_logs,
    }
    masked_data: dict[str, Any] = _mask(data)
    return masked_data


def _leaves(model: type[BaseModel], data: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of the values ``data`` gives, down to the fields of ``model`` (a
    mapping-valued setting is one path)."""
    found: list[str] = []
    for key, value in data.items():
        field = model.model_fields.get(key)
        path = f"{prefix}{key}"
        annotation = field.annotation if field is not None else None
        if (
            isinstance(value, dict)
            and isinstance(annotation, type)
            and issubclass(annotation, BaseModel)
        ):
            found.extend(_leaves(annotation, value, f"{path}."))
        else:
            found.append(path)
    return found


def sources(settings: Settings) -> dict[str, str]:
    """Where each setting that is not its field's default came from, by dotted path:
    ``environment`` (a ``DOCWORKER_*`` variable), ``v1 environment`` (a v1 variable),
    ``file <path>`` (``DOCWORKER_CONFIG_FILE``) or ``profile <name>`` (the profile's
    default). The highest of them wins, as when the settings are read."""
    import os

    found: dict[str, str] = {}
    for (section, name), _ in PROFILE_DEFAULTS.get(settings.profile, {}).items():
        found[f"{section}.{name}"] = f"profile {settings.profile.value}"
    file = os.environ.get(CONFIG_FILE_VARIABLE, "").strip()
    layers: list[tuple[str, dict[str, Any]]] = [
        (f"file {file}", ConfigFileSource(Settings)() if file else {}),
        ("v1 environment", V1EnvironmentSource(Settings)()),
        ("environment", EnvSettingsSource(Settings)()),
    ]
    for label, data in layers:
        for path in _leaves(Settings, data):
            found[path] = label
    return dict(sorted(found.items()))


def problems(settings: Settings) -> list[str]:
    """Every reason the settings' profile refuses to serve with them: the profile's
    rules (:meth:`Settings.refusals`), storage this machine cannot open, and flags that
    cannot be loaded."""
    from docworker.flags import flag_problems
    from docworker.storage import storage_refusals

    return [*settings.refusals(), *storage_refusals(settings.storage), *flag_problems(settings)]
