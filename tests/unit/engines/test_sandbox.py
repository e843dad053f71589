"""The engines' network sandbox on this machine: what a namespace cuts, and the fallbacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from docworker.config import NetworkIsolation, SandboxSettings
from docworker.engines.sandbox import ENGINE_RULES, NAMESPACE, network_sandbox
from docworker.errors import DependencyDown
from tests.listener import Listener

SANDBOX = network_sandbox()
needs_namespaces = pytest.mark.skipif(
    not SANDBOX.isolated, reason=f"no network namespaces here: {SANDBOX.reason}"
)

#: Connects to a port of 127.0.0.1 and says how that went.
_CONNECT = """
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3).close()
    print("connected")
except OSError as exc:
    print("refused", exc.errno)
"""


def _run(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)
    return done.stdout.strip()


@needs_namespaces
def test_a_program_in_the_namespace_reaches_nothing(listener: Listener) -> None:
    outside = _run([sys.executable, "-c", _CONNECT, str(listener.port)])
    inside = _run(SANDBOX.command([sys.executable, "-c", _CONNECT, str(listener.port)]))
    assert outside == "connected"
    assert inside.startswith("refused")
    assert len(listener.connections) == 1  # the one from outside


@needs_namespaces
def test_the_namespace_has_only_a_loopback() -> None:
    ours = os.readlink("/proc/self/ns/net")
    theirs = _run(SANDBOX.command(["readlink", "/proc/self/ns/net"]))
    devices = _run(SANDBOX.command(["cat", "/proc/self/net/dev"])).splitlines()[2:]
    assert theirs != ours
    assert [line.split(":")[0].strip() for line in devices] == ["lo"]
    # A program that configures its namespace is root inside it and may bring lo up.
    uid = _run(SANDBOX.command(["id", "-u"], configures=True))
    assert uid == "0"


@needs_namespaces
def test_status_says_what_holds() -> None:
    assert SANDBOX.status() == {"setting": "auto", "network": NAMESPACE}
    assert network_sandbox(SandboxSettings(network=NetworkIsolation.NAMESPACE)).isolated


def test_off_runs_programs_as_they_are() -> None:
    off = network_sandbox(SandboxSettings(network=NetworkIsolation.OFF))
    assert not off.isolated
    assert off.command(["ffmpeg", "-version"]) == ["ffmpeg", "-version"]
    assert off.status() == {
        "setting": "off",
        "network": ENGINE_RULES,
        "reason": "sandbox.network is 'off'",
    }


def test_without_unshare_auto_falls_back_and_namespace_refuses() -> None:
    missing = "/nonexistent/unshare"
    auto = network_sandbox(SandboxSettings(unshare_path=missing))
    assert not auto.isolated
    assert auto.holds == ENGINE_RULES and "no program" in str(auto.reason)
    assert auto.command(["true"]) == ["true"]
    required = network_sandbox(
        SandboxSettings(network=NetworkIsolation.NAMESPACE, unshare_path=missing)
    )
    with pytest.raises(DependencyDown, match="no network namespace can be made here"):
        required.command(["true"])


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from docworker.config import load_settings

    monkeypatch.setenv("DOCWORKER_SANDBOX__NETWORK", "off")
    assert load_settings().sandbox.network is NetworkIsolation.OFF
    monkeypatch.setenv("DOCWORKER_SANDBOX__NETWORK", "sometimes")
    with pytest.raises(ValueError, match="network"):
        load_settings()


@needs_namespaces
def test_another_user_gets_a_user_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not root: the namespace comes with a user namespace (the user keeps its id, or
    is root inside it for a program that configures the namespace)."""
    from docworker.engines import sandbox as module

    monkeypatch.setattr(module.os, "geteuid", lambda: 1000)
    module._probe.cache_clear()
    try:
        found = network_sandbox()
        if not found.isolated:
            pytest.skip(f"no unprivileged user namespaces here: {found.reason}")
        assert found.flags == ("--user", "--map-current-user", "--net")
        assert "--map-root-user" in found.command(["true"], configures=True)
        ours = os.readlink("/proc/self/ns/net")
        assert _run(found.command(["readlink", "/proc/self/ns/net"])) != ours
    finally:
        module._probe.cache_clear()


def test_the_service_refuses_to_start_when_a_required_namespace_cannot_be_made(
    tmp_path: Path,
) -> None:
    from docworker.api.app import build_services
    from docworker.config import load_settings

    settings = load_settings(
        data_dir=tmp_path,
        sandbox={"network": "namespace", "unshare_path": "/nonexistent/unshare"},
    )
    with pytest.raises(DependencyDown, match=r"sandbox\.network is 'namespace'"):
        build_services(settings, start_executor=False)
