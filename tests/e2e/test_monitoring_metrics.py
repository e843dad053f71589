"""Every metric the Grafana dashboards and the Prometheus rules of deploy/ read is one a
real server exports: its ``/metrics`` (Prometheus text) declares it, and the labels the
queries read are ones its samples carry."""

from __future__ import annotations

import httpx

from tests.monitoring import deploy_queries, exported_families, label_mismatches, used_metrics


def _exposition(client: httpx.Client) -> str:
    answer = client.get("/metrics", headers={"Accept": "text/plain"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return answer.text


def test_dashboards_and_rules_read_metrics_the_server_exports(client: httpx.Client) -> None:
    exported = exported_families(_exposition(client))
    used = used_metrics()
    assert len(used) > 30
    missing = [f"{name} ({', '.join(sorted(used[name]))})" for name in sorted(set(used) - exported)]
    assert not missing, "read by deploy/, not exported by /metrics:\n" + "\n".join(missing)


def test_dashboards_and_rules_read_labels_the_metrics_carry(client: httpx.Client) -> None:
    # Some work first, so that the request, job and usage metrics have samples to judge.
    done = client.post(
        "/api/v2/extract",
        files={"file": ("note.txt", b"A short note.\n", "text/plain")},
        data={"output": "text"},
    )
    assert done.status_code == 200, done.text
    assert client.get("/api/v2/no-such-route").status_code == 404
    wrong = label_mismatches(_exposition(client), deploy_queries())
    assert not wrong, "labels read by deploy/ that /metrics' samples lack:\n" + "\n".join(wrong)
