"""The external engines' network sandbox: a network namespace of their own.

LibreOffice, Chromium and FFmpeg read untrusted documents, and each has rules of
its own against reaching out: LibreOffice's hardened profile (no remote content
providers, no links followed), Chromium's request interception (every request
answered by the service, nothing fetched by the browser), FFmpeg's protocol and
format whitelists. Where the machine allows it, the operating system holds as
well: the engine's program is started through util-linux's ``unshare``, in a
network namespace whose only interface is a loopback of its own, so no
connection leaves it whatever a document tricks the engine into. The service
talks to every engine over pipes (LibreOffice's bridge on stdin and stdout,
Chromium's debugging pipe, FFmpeg's standard output), which namespaces do not
cut; the one TCP port in use, LibreOffice's UNO port, lies inside the namespace
with LibreOffice and its bridge.

How the namespace is made depends on who runs the service:

* root: ``unshare --net``;
* anyone else, where unprivileged user namespaces are allowed:
  ``unshare --user --map-current-user --net`` (the program keeps its user id), or
  ``--map-root-user`` for a program that must configure its namespace (the
  LibreOffice bridge brings the loopback up for UNO).

:func:`network_sandbox` finds out once per process whether that works here (it
starts ``true`` that way) and, with the ``sandbox.network`` setting, decides what
holds: ``namespace`` or ``engine rules``. A file-system view is not narrowed this
way; each engine's own rules keep it to the job's files (see docs/sandbox.md).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from docworker.config import NetworkIsolation, SandboxSettings
from docworker.errors import DependencyDown

log = structlog.get_logger(__name__)

#: What holds when an engine runs: its own namespace, or its own rules alone.
NAMESPACE = "namespace"
ENGINE_RULES = "engine rules"
#: Longest the probe (``unshare ... true``) may take.
_PROBE_TIMEOUT = 10.0


@dataclass(frozen=True)
class _Probe:
    """What the probe found: the program and flags that make a namespace, or why not."""

    program: str | None
    flags: tuple[str, ...] = ()
    reason: str | None = None


@dataclass(frozen=True)
class NetworkSandbox:
    """How this process starts an engine's program: in a namespace of its own, or not."""

    setting: NetworkIsolation
    #: The ``unshare`` program and its flags, when engines get a namespace.
    program: str | None = None
    flags: tuple[str, ...] = ()
    #: Why engines run without a namespace (None when they have one).
    reason: str | None = None

    @property
    def isolated(self) -> bool:
        return self.program is not None

    @property
    def holds(self) -> str:
        """``namespace`` or ``engine rules``: what keeps the engines off the network."""
        return NAMESPACE if self.isolated else ENGINE_RULES

    def command(self, argv: Sequence[str], *, configures: bool = False) -> list[str]:
        """``argv`` as started in a namespace of its own, or as it is where none is had.

        ``configures``: the program configures its namespace (brings its loopback
        up), so it must be root inside it. Raises :class:`DependencyDown` when the
        setting requires a namespace and none can be made here.
        """
        self.require()
        if self.program is None:
            return list(argv)
        flags = self.flags
        if configures and "--map-current-user" in flags:
            flags = tuple("--map-root-user" if f == "--map-current-user" else f for f in flags)
        return [self.program, *flags, "--", *argv]

    def require(self) -> None:
        """Raise :class:`DependencyDown` when ``namespace`` is required and not had."""
        if self.setting is NetworkIsolation.NAMESPACE and not self.isolated:
            raise DependencyDown(
                f"sandbox.network is 'namespace', but no network namespace can be made "
                f"here: {self.reason}",
                engine="sandbox",
            )

    def status(self) -> dict[str, Any]:
        """For health: the setting, what holds, and why not a namespace if not."""
        state: dict[str, Any] = {"setting": self.setting.value, "network": self.holds}
        if self.reason is not None:
            state["reason"] = self.reason
        return state


def network_sandbox(settings: SandboxSettings | None = None) -> NetworkSandbox:
    """The sandbox ``settings`` ask for, as far as this machine allows it."""
    chosen = settings or SandboxSettings()
    if chosen.network is NetworkIsolation.OFF:
        return NetworkSandbox(chosen.network, reason="sandbox.network is 'off'")
    probe = _probe(chosen.unshare_path)
    return NetworkSandbox(chosen.network, probe.program, probe.flags, probe.reason)


@functools.cache
def _probe(unshare_path: str) -> _Probe:
    """Whether ``unshare`` makes a network namespace here, and with which flags."""
    program = shutil.which(unshare_path)
    if program is None:
        return _Probe(None, reason=f"no program '{unshare_path}' (Debian: util-linux)")
    true = shutil.which("true") or "/bin/true"
    candidates: list[tuple[str, ...]] = []
    if os.geteuid() == 0:
        candidates.append(("--net",))
    candidates.append(("--user", "--map-current-user", "--net"))
    reason = "unknown"
    for flags in candidates:
        try:
            done = subprocess.run(
                [program, *flags, "--", true],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=_PROBE_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            reason = f"{program} could not run: {exc}"
            continue
        if done.returncode == 0:
            log.debug("network namespaces available", flags=" ".join(flags))
            return _Probe(program, flags)
        reason = done.stderr.decode("utf-8", "replace").strip()[-300:] or (
            f"{program} exited with status {done.returncode}"
        )
    return _Probe(None, reason=f"unshare failed: {reason}")
