"""The monitoring files under ``deploy/`` as the tests read them: the Prometheus rule
files, the Grafana dashboards, and the metric names their queries use."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
RULES = sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))
RULE_TESTS = sorted((DEPLOY / "prometheus" / "tests").glob("*.yml"))
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
ALERTMANAGER_CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"

#: Series Prometheus makes itself, not the service: scrape health and the alerts' state.
PROMETHEUS_SERIES = frozenset({"up", "ALERTS", "ALERTS_FOR_STATE"})
#: Suffixes of the samples of one metric family (counters, histograms).
_SUFFIXES = ("_bucket", "_sum", "_count", "_total", "_created")
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
#: The placeholders of Grafana's queries, and what stands for them in a plain query.
_GRAFANA_PLACEHOLDERS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
_VARIABLE = re.compile(r"\$\{?([a-zA-Z_][a-zA-Z0-9_]*)\}?")


def tool(name: str) -> str:
    """The path of a program the checks run: skipped without it, except under CI,
    where it fails (``scripts/bootstrap dev`` installs it)."""
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI", "").lower() not in {"", "0", "false", "no"}:
            pytest.fail(f"{name} is needed under CI: scripts/bootstrap dev installs it")
        pytest.skip(f"{name} is not installed (scripts/bootstrap dev installs it)")
    return found


def rule_groups() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            yield path, group


def rules() -> list[dict[str, Any]]:
    return [rule for _, group in rule_groups() for rule in group["rules"]]


def alerts() -> dict[str, list[dict[str, Any]]]:
    """Each alert's name → its rules (one alert name may have several)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for rule in rules():
        if "alert" in rule:
            found.setdefault(rule["alert"], []).append(rule)
    return found


def recorded_names() -> set[str]:
    return {rule["record"] for rule in rules() if "record" in rule}


def dashboard(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_queries(board: dict[str, Any]) -> list[str]:
    """Every query of a dashboard: its panels' targets, variables and annotations."""
    queries = [t["expr"] for p in panels(board) for t in p.get("targets", [])]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            queries.append(variable["definition"])
    queries += [a["expr"] for a in board["annotations"]["list"] if "expr" in a]
    return queries


def plain_query(query: str) -> str:
    """A dashboard query as Prometheus would receive it: Grafana's interval placeholders
    replaced by durations, the dashboard's variables by a regular expression that
    matches anything (they only appear in ``=~`` matchers); a variable query
    ``label_values(metric, label)`` becomes ``metric``."""
    values = re.fullmatch(r"label_values\((.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\)", query.strip())
    if values:
        query = values.group(1)
    for placeholder, duration in _GRAFANA_PLACEHOLDERS.items():
        query = query.replace(placeholder, duration)
    return _VARIABLE.sub(".*", query)


def metric_names(query: str) -> set[str]:
    """The names of the series a PromQL query reads (recording rules' names included):
    identifiers that are neither functions, keywords, label names nor durations."""
    text = _STRINGS.sub('""', query)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, end = match.group(), match.end()
        rest = text[end:].lstrip()
        before = text[: match.start()].rstrip()
        if rest.startswith("(") or re.match(r"(by|without)\b", rest):
            continue  # a function or an aggregation
        if match.start() > 0 and text[match.start() - 1].isdigit():
            continue  # the unit of a duration (5m) or an exponent
        if rest.startswith(("=", "!=", "=~", "!~")) and not rest.startswith("=="):
            continue  # a label name in a matcher
        if before.endswith(("by (", "without (", "on (", "ignoring (", "group_left (")):
            continue
        if re.search(r"(by|without|on|ignoring|group_left|group_right)\s*\([^()]*$", before):
            continue  # a label list
        if before.endswith("[") or re.fullmatch(r"[0-9]", name[:1]):
            continue
        if name in _KEYWORDS or before.endswith(("offset", "@")):
            continue
        names.add(name)
    return names


_KEYWORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "and",
        "or",
        "unless",
        "offset",
        "bool",
        "inf",
        "nan",
        "Inf",
        "NaN",
    }
)


def family(name: str) -> str:
    """A sample's or metric's name without the suffix of its kind (the family name the
    HELP and TYPE lines give)."""
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def used_metrics() -> dict[str, set[str]]:
    """Each family of the service's metrics the dashboards and rules read → where."""
    recorded = recorded_names()
    used: dict[str, set[str]] = {}
    sources = [(path.name, rule["expr"]) for path in RULES for rule in _rules_of(path)]
    sources += [
        (path.name, plain_query(query))
        for path in DASHBOARDS
        for query in dashboard_queries(dashboard(path))
    ]
    for where, query in sources:
        for name in metric_names(str(query)) - recorded - PROMETHEUS_SERIES:
            used.setdefault(family(name), set()).add(where)
    return used


def _rules_of(path: Path) -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def exported_families(exposition: str) -> set[str]:
    """The metric families a Prometheus text exposition declares (HELP and TYPE lines)."""
    found = set()
    for line in exposition.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "#" and parts[1] in {"HELP", "TYPE"}:
            found.add(family(parts[2]))
    return found


#: Labels Prometheus adds to every scraped series, and the bucket bound of histograms.
_TARGET_LABELS = frozenset({"job", "instance", "le"})
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^{}]*)\}")
_MATCHER_LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\bby\s*\(([^()]*)\)\s*\(")


def exported_labels(exposition: str) -> dict[str, set[str]]:
    """Each metric family with samples in a Prometheus text exposition → its label names."""
    found: dict[str, set[str]] = {}
    for line in exposition.splitlines():
        if not line or line.startswith("#"):
            continue
        sample = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s", line)
        if sample is None:
            continue
        labels = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', sample.group(2) or ""))
        found.setdefault(family(sample.group(1)), set()).update(labels - {"le"})
    return found


def _closing(text: str, start: int) -> int:
    """The index of the parenthesis closing the one at ``start``."""
    depth = 0
    for index in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[index], 0)
        if depth == 0:
            return index
    raise ValueError(f"unbalanced: {text}")


def used_labels(query: str) -> list[tuple[set[str], set[str]]]:
    """The label names a query reads, each with the metrics they are read from: those of
    a selector's matchers (``metric{label="…"}``), and those an aggregation groups by
    (``sum by (label) (…)``, from every metric inside)."""
    text = _STRINGS.sub('""', query)
    found = [
        ({name}, set(_MATCHER_LABEL.findall(matchers)))
        for name, matchers in _SELECTOR.findall(text)
    ]
    for grouping in _GROUPING.finditer(text):
        inner = text[grouping.end() - 1 : _closing(text, grouping.end() - 1) + 1]
        labels = {label.strip() for label in grouping.group(1).split(",") if label.strip()}
        found.append((metric_names(inner), labels))
    return found


def deploy_queries() -> list[str]:
    """Every query of the rules and dashboards, as Prometheus receives it."""
    queries = [str(rule["expr"]) for path in RULES for rule in _rules_of(path)]
    queries += [plain_query(q) for path in DASHBOARDS for q in dashboard_queries(dashboard(path))]
    return queries


def label_mismatches(exposition: str, queries: list[str]) -> list[str]:
    """Labels the queries read from a service metric that the exposition shows with
    samples but without that label (metrics without samples are not judged)."""
    exported = exported_labels(exposition)
    recorded = recorded_names()
    wrong = set()
    for query in queries:
        for names, labels in used_labels(query):
            families = {family(n) for n in names - recorded - PROMETHEUS_SERIES}
            if (
                not families
                or len(names & (recorded | PROMETHEUS_SERIES))
                or any(f not in exported for f in families)
            ):
                continue
            known = set().union(*(exported[f] for f in families)) | _TARGET_LABELS
            wrong.update(f"{sorted(families)}: {label}" for label in labels - known)
    return sorted(wrong)
