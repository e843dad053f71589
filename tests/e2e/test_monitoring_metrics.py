"""Every metric the Grafana dashboards and the Prometheus rules of deploy/ read is one a
real server exports: its ``/metrics`` (Prometheus text) declares it."""

from __future__ import annotations

import httpx

from tests.monitoring import exported_families, used_metrics


def test_dashboards_and_rules_read_metrics_the_server_exports(client: httpx.Client) -> None:
    answer = client.get("/metrics", headers={"Accept": "text/plain"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    exported = exported_families(answer.text)
    used = used_metrics()
    assert len(used) > 30
    missing = [f"{name} ({', '.join(sorted(used[name]))})" for name in sorted(set(used) - exported)]
    assert not missing, "read by deploy/, not exported by /metrics:\n" + "\n".join(missing)
