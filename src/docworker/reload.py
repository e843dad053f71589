"""Settings read again while the service runs: ``kill -HUP`` the ``docworker serve``
process (docs/configuration.md).

A reload reads the settings again from their sources (the environment as the process
was started with it, and the settings file ``DOCWORKER_CONFIG_FILE``, which is what
can change) and applies the part that is safe to change under running work:

* ``log.level``;
* ``flags``: the flag provider is made again at every reload, so that a changed flags
  file (``flags.file``) is read;
* ``limits``, ``pdf`` and ``render`` (read by the jobs: each local worker is replaced,
  once idle, by one started with the new values; a running job ends with the old);
* ``quota`` (the default daily quotas of API keys), and of ``server``:
  ``max_upload_bytes``, ``upload_limits``, ``default_wait`` and ``max_wait``.

Those are changed in place in the service's settings object, which every part of the
service holds and reads when it needs them. Any other setting that differs is named in
the log as needing a restart, and left as it was. New settings that do not validate,
that the profile refuses (:meth:`Settings.refusals`), or whose flags cannot be loaded
are refused as a whole: the log says why, and the service keeps its settings. The log
names the settings that changed, never their values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import BaseModel, ValidationError

from docworker.config import Settings, load_settings

if TYPE_CHECKING:
    from docworker.api.deps import Services

log = structlog.get_logger(__name__)

#: What a reload applies: section → its fields (None: all of them).
RELOADABLE: dict[str, frozenset[str] | None] = {
    "log": frozenset({"level"}),
    "flags": None,
    "limits": None,
    "pdf": None,
    "render": None,
    "quota": None,
    "server": frozenset({"max_upload_bytes", "upload_limits", "default_wait", "max_wait"}),
}
#: Sections read by the jobs in the worker processes.
_WORKER_SECTIONS = frozenset({"limits", "pdf", "render"})


@dataclass
class Outcome:
    """What a reload did: the settings it applied and those that need a restart (dotted
    names), or why it refused the new settings (``refused``: nothing applied)."""

    applied: list[str] = field(default_factory=list)
    restart_needed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    #: Whether the flag provider was made again.
    flags_reloaded: bool = False


def reloadable(path: str) -> bool:
    section, _, name = path.partition(".")
    if section not in RELOADABLE:
        return False
    fields = RELOADABLE[section]
    return fields is None or name in fields


def differences(old: Settings, new: Settings) -> list[str]:
    """Dotted names (``section.field``, or a top-level field) of what differs."""
    found: list[str] = []
    for name in type(old).model_fields:
        before, after = getattr(old, name), getattr(new, name)
        if isinstance(before, BaseModel) and isinstance(after, BaseModel):
            found.extend(
                f"{name}.{inner}"
                for inner in type(before).model_fields
                if getattr(before, inner) != getattr(after, inner)
            )
        elif before != after:
            found.append(name)
    return found


def _errors(exc: ValidationError) -> list[str]:
    # The messages say what was expected; the settings hide the values given.
    return [
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
    ]


def apply(live: Settings, new: Settings, services: Services | None = None) -> Outcome:
    """Apply the reloadable part of ``new`` to ``live`` (in place) and to the services
    that keep something of it; nothing at all when ``new`` is refused. The log level is
    the caller's to set (:func:`reload` does, once it has logged the reload)."""
    changed = differences(live, new)
    applied = [path for path in changed if reloadable(path)]
    outcome = Outcome(restart_needed=[path for path in changed if not reloadable(path)])
    candidate = live.model_copy(deep=True)
    for path in applied:
        section, _, name = path.partition(".")
        setattr(getattr(candidate, section), name, getattr(getattr(new, section), name))
    if refusals := candidate.refusals():
        outcome.refused = refusals
        return outcome
    sections = {path.partition(".")[0] for path in applied}
    # The flags are made again whether their settings changed or not: the flags file
    # (or what a custom provider reads at its start) may have.
    if services is not None and services.flags is not None:
        try:
            services.flags.reload(new.flags)
        except ValueError as exc:
            outcome.refused = [str(exc)]
            return outcome
        outcome.flags_reloaded = True
    for path in applied:
        section, _, name = path.partition(".")
        setattr(getattr(live, section), name, getattr(getattr(new, section), name))
    if sections & _WORKER_SECTIONS and services is not None and services.executor is not None:
        services.executor.reconfigure(live)
    outcome.applied = applied
    return outcome


def reload(live: Settings, services: Services | None, **overrides: Any) -> Outcome:
    """Read the settings again (``overrides`` as the command line gave them) and apply
    them (:func:`apply`); logs what happened."""
    try:
        new = load_settings(**overrides)
    except ValidationError as exc:
        outcome = Outcome(refused=_errors(exc))
    except ValueError as exc:  # the settings file cannot be read
        outcome = Outcome(refused=[str(exc)])
    else:
        outcome = apply(live, new, services)
    if outcome.refused:
        log.error(
            "settings reload refused: the service keeps its settings", reasons=outcome.refused
        )
    else:
        log.info(
            "settings reloaded",
            changed=outcome.applied,
            restart_needed=outcome.restart_needed,
            flags_reloaded=outcome.flags_reloaded,
        )
        if "log.level" in outcome.applied:
            from docworker.telemetry import set_log_level

            set_log_level(live.log.level)
    return outcome
