"""The monitoring shipped in deploy/: Prometheus rules checked and unit-tested with
promtool, the Alertmanager configuration with amtool, and the Grafana dashboards'
structure and queries (each query parsed by promtool as the expression of a rule)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.monitoring import (
    ALERTMANAGER_CONFIG,
    DASHBOARDS,
    DEPLOY,
    PROMETHEUS_CONFIG,
    RULE_TESTS,
    RULES,
    alerts,
    dashboard,
    dashboard_queries,
    exported_families,
    exported_labels,
    family,
    label_mismatches,
    metric_names,
    panels,
    plain_query,
    recorded_names,
    rules,
    tool,
    used_labels,
)

RUNBOOK = DEPLOY.parent / "docs" / "operations-monitoring.md"


def _run(*arguments: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in arguments],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize("path", RULES, ids=lambda p: p.name)
def test_rule_files_pass_promtool_check(path: Path) -> None:
    out = _run(tool("promtool"), "check", "rules", path)
    assert "SUCCESS" in out


@pytest.mark.parametrize("path", RULE_TESTS, ids=lambda p: p.name)
def test_rule_unit_tests_pass(path: Path) -> None:
    _run(tool("promtool"), "test", "rules", path.name, cwd=path.parent)


def test_prometheus_config_passes_promtool_check() -> None:
    out = _run(tool("promtool"), "check", "config", PROMETHEUS_CONFIG)
    assert f"SUCCESS: {len(RULES)} rule files found" in out
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert sorted(config["rule_files"]) == sorted(f"rules/{p.name}" for p in RULES)
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert jobs == {"docworker-api", "docworker-worker"}


def _unit_tests() -> list[dict[str, Any]]:
    return [
        check
        for path in RULE_TESTS
        for test in yaml.safe_load(path.read_text())["tests"]
        for check in test.get("alert_rule_test", [])
    ]


def test_every_alert_is_unit_tested_firing_and_silent() -> None:
    checks = _unit_tests()
    fired = {c["alertname"] for c in checks if c.get("exp_alerts")}
    silent = {c["alertname"] for c in checks if not c.get("exp_alerts")}
    names = set(alerts())
    assert names - fired == set(), "alerts no test sees firing"
    assert names - silent == set(), "alerts no test sees silent"
    assert (fired | silent) - names == set(), "tests of alerts that do not exist"


def test_every_alert_says_what_it_is_and_where_its_runbook_is() -> None:
    runbook = RUNBOOK.read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", runbook, re.MULTILINE)
    }
    for name, defined in alerts().items():
        assert name.startswith("Docworker"), name
        for rule in defined:
            assert rule["labels"]["severity"] in {"critical", "warning"}, name
            notes = rule["annotations"]
            assert notes["summary"] and notes["description"], name
            assert notes["runbook"] == f"docs/operations-monitoring.md#{name.lower()}", name
            assert name.lower() in anchors, f"{name}: no section in {RUNBOOK.name}"


def test_recording_rules_follow_the_naming_convention_and_are_defined_once() -> None:
    records = [rule["record"] for rule in rules() if "record" in rule]
    for name in records:
        assert re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", name), name
    # An SLO's series are told apart by their slo label, every other record is unique.
    labelled = [(r["record"], r.get("labels", {}).get("slo")) for r in rules() if "record" in r]
    assert len(labelled) == len(set(labelled))


def test_slo_burn_rate_alerts_cover_every_slo_and_window() -> None:
    slos = {
        rule["labels"]["slo"]
        for rule in rules()
        if rule.get("record") == "docworker:slo_objective:ratio"
    }
    assert slos == {"availability", "extract_latency", "jobs"}
    for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"):
        defined = {
            rule["labels"]["slo"]
            for rule in rules()
            if rule.get("record") == f"docworker:slo_errors:ratio_rate{window}"
        }
        assert defined == slos, window
    fast, slow = alerts()["DocworkerErrorBudgetBurnFast"], alerts()["DocworkerErrorBudgetBurnSlow"]
    for factor, windows in (("14.4", "1h 5m"), ("6", "6h 30m")):
        assert all(
            f"ratio_rate{w} > on (slo) ({factor} *" in fast[0]["expr"] for w in windows.split()
        )
    for factor, windows in (("3", "1d 2h"), ("1", "3d 6h")):
        assert all(
            f"ratio_rate{w} > on (slo) ({factor} *" in slow[0]["expr"] for w in windows.split()
        )


def test_alertmanager_config_passes_amtool_check() -> None:
    out = _run(tool("amtool"), "check-config", ALERTMANAGER_CONFIG)
    assert "SUCCESS" in out


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        ("severity=critical alertname=DocworkerTargetDown", "docworker-pager,docworker-chat"),
        (
            "severity=critical alertname=DocworkerErrorBudgetBurnFast slo=availability",
            "docworker-pager,docworker-chat",
        ),
        (
            "severity=warning alertname=DocworkerErrorBudgetBurnSlow slo=jobs",
            "docworker-tickets,docworker-chat",
        ),
        ("severity=warning alertname=DocworkerQueueGrowing family=ocr", "docworker-chat"),
    ],
)
def test_alertmanager_routes_critical_to_the_pager_and_warnings_to_chat(
    labels: str, receivers: str
) -> None:
    out = _run(
        tool("amtool"),
        "config",
        "routes",
        "test",
        "--config.file",
        ALERTMANAGER_CONFIG,
        *labels.split(),
    )
    assert out.strip() == receivers


def _alternatives(pattern: str) -> list[str]:
    """The top-level alternatives of a regular expression (``a|b(c|d)`` → ``a``, ``b(c|d)``)."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(pattern):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "|" and depth == 0:
            parts.append(pattern[start:index])
            start = index + 1
    return [*parts, pattern[start:]]


def test_alertmanager_inhibitions_name_alerts_that_exist() -> None:
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    names = set(alerts())
    for rule in config["inhibit_rules"]:
        for side in ("source_matchers", "target_matchers"):
            for matcher in rule[side]:
                parsed = re.fullmatch(r'(\w+)(=~|=)"(.*)"', matcher)
                assert parsed is not None, matcher
                label, op, value = parsed.groups()
                assert label == "alertname"
                # Each alternative of a regular expression names an alert (a typo in
                # one would silently inhibit nothing).
                alternatives = _alternatives(value) if op == "=~" else [re.escape(value)]
                for alternative in alternatives:
                    assert any(re.fullmatch(alternative, n) for n in names), (matcher, alternative)
    # Every severity the rules use is routed.
    severities = {r["labels"]["severity"] for rs in alerts().values() for r in rs}
    routed = {m for route in config["route"]["routes"] for m in route["matchers"]}
    assert {f'severity="{s}"' for s in severities} <= routed


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_structure(path: Path) -> None:
    board = dashboard(path)
    assert board["uid"].startswith("docworker-") and board["schemaVersion"] >= 36
    assert "docworker" in board["tags"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids))
    for panel in panels(board):
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["title"] and panel["description"], panel
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
    # Panels do not overlap.
    cells: set[tuple[int, int]] = set()
    for panel in panels(board):
        pos = panel["gridPos"]
        mine = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not mine & cells, panel["title"]
        cells |= mine
    # Every variable a query uses is defined (Grafana's own $__ ones aside).
    for query in dashboard_queries(board):
        for name in re.findall(r"\$\{?([a-zA-Z_]\w*)", query):
            assert name.startswith("__") or name in variables, (name, query)


def test_dashboards_have_distinct_uids_and_titles() -> None:
    boards = [dashboard(p) for p in DASHBOARDS]
    assert len({b["uid"] for b in boards}) == len(boards) == 5
    assert len({b["title"] for b in boards}) == len(boards)


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query (as Grafana sends it, its variables filled in) as the
    expression of a recording rule; recording rules' names must be ones deploy/prometheus
    defines."""
    queries = sorted({plain_query(q) for p in DASHBOARDS for q in dashboard_queries(dashboard(p))})
    group = {
        "name": "dashboards",
        "rules": [
            {"record": f"dashboard:query_{i}:check", "expr": q} for i, q in enumerate(queries)
        ],
    }
    checked = tmp_path / "dashboards.yml"
    checked.write_text(yaml.safe_dump({"groups": [group]}))
    out = _run(tool("promtool"), "check", "rules", checked)
    assert f"SUCCESS: {len(queries)} rules found" in out
    recorded = recorded_names()
    for query in queries:
        for name in re.findall(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", re.sub(r'"[^"]*"', "", query)):
            assert name in recorded, (name, query)


def test_metric_names_of_a_query() -> None:
    query = (
        'sum by (tenant) (increase(docworker_usage_cpu_seconds_total{tenant=~"a|b"}[1h]))'
        " / on (slo) (1 - docworker:slo_objective:ratio) > bool 2"
        " or max(docworker_dead_letters offset 1h) and x[5m:1m] unless 1e3 * y @ 100"
    )
    assert metric_names(query) == {
        "docworker_usage_cpu_seconds_total",
        "docworker:slo_objective:ratio",
        "docworker_dead_letters",
        "x",
        "y",
    }
    assert plain_query("label_values(docworker_queued_jobs, family)") == "docworker_queued_jobs"
    assert plain_query('rate(a{b=~"$family"}[$__rate_interval])') == 'rate(a{b=~".*"}[5m])'
    assert {family(n) for n in ("a_total", "a_bucket", "a_count", "a_sum", "a")} == {"a"}


def test_labels_of_a_query_and_of_an_exposition() -> None:
    query = (
        'sum by (engine, outcome) (rate(docworker_engine_calls_total{engine=~".*"}[5m]))'
        ' / on (slo) x{slo="a"}'
    )
    assert used_labels(query) == [
        ({"docworker_engine_calls_total"}, {"engine"}),
        ({"x"}, {"slo"}),
        ({"docworker_engine_calls_total"}, {"engine", "outcome"}),
    ]
    exposition = "\n".join(
        [
            "# HELP docworker_engine_calls_total Engine calls.",
            "# TYPE docworker_engine_calls_total counter",
            'docworker_engine_calls_total{engine="ffmpeg",outcome="ok"} 3.0',
            "# HELP docworker_job_duration_seconds Run time.",
            "# TYPE docworker_job_duration_seconds histogram",
            'docworker_job_duration_seconds_bucket{le="1.0",operation="ocr"} 1.0',
            "# HELP docworker_idle_total Never counted.",
            "# TYPE docworker_idle_total counter",
            "",
        ]
    )
    assert exported_families(exposition) == {
        "docworker_engine_calls",
        "docworker_job_duration_seconds",
        "docworker_idle",
    }
    assert exported_labels(exposition) == {
        "docworker_engine_calls": {"engine", "outcome"},
        "docworker_job_duration_seconds": {"operation"},
    }
    queries = [
        'sum by (engine, reason) (rate(docworker_engine_calls_total{instance="a"}[5m]))',
        "histogram_quantile(0.9, sum by (le, operation)"
        " (rate(docworker_job_duration_seconds_bucket[5m])))",
        'docworker_idle_total{whatever="x"}',
    ]
    assert label_mismatches(exposition, queries) == ["['docworker_engine_calls']: reason"]
