"""``docworker capacity``: throughput per worker and operation, its trend, and the workers
a target load needs (docs/capacity.md).

Without ``--server`` the command reads the job store these settings name (as ``docworker
keys`` does, as the service's own user); with it, it asks a running server's
``GET /api/v2/capacity`` (an admin key in ``DOCWORKER_API_KEY``). Both print the same.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from docworker.cli_common import fail, server_call
from docworker.config import load_settings
from docworker.errors import DocworkerError

#: Eighths of a block, for the sparklines and bars.
_TICKS = "▁▂▃▄▅▆▇█"
_EIGHTHS = " ▏▎▍▌▋▊▉█"
_BAR = 40


def sparkline(values: list[float]) -> str:
    """One character per value, its height relative to the largest."""
    top = max(values, default=0.0)
    if top <= 0:
        return _TICKS[0] * len(values)
    return "".join(_TICKS[min(7, round(v / top * 7))] for v in values)


def bar(value: float, top: float, width: int = _BAR) -> str:
    """A horizontal bar of ``value`` against ``top``, ``width`` characters at the full."""
    if top <= 0 or value <= 0:
        return ""
    eighths = round(value / top * width * 8)
    return "█" * (eighths // 8) + (_EIGHTHS[eighths % 8] if eighths % 8 else "")


def _n(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min"


def _per_day(trend: dict[str, Any]) -> str:
    relative = trend.get("arrivals_relative")
    return "-" if relative is None else f"{relative * 100:+.1f} %"


def render(found: dict[str, Any], console: Console) -> None:
    """Print a capacity report (the JSON of ``GET /api/v2/capacity``)."""
    target = found["target"]
    hours = found["window_seconds"] / 3600
    console.print(
        f"Jobs that ended from {found['since']} to {found['until']} ({hours:.1f} h)"
        + (" - cut to capacity.history_retention" if found["limited_by_retention"] else "")
    )
    if not found["exact"]:
        console.print(
            f"[yellow]Not exact: {found['unread_detail']} retried or split jobs past "
            "capacity.max_detail_rows count their last attempt only.[/yellow]"
        )
    if not found["operations"]:
        console.print("No job ran and ended in the window: nothing to size.")
        return
    estimated = [o["operation"] for o in found["operations"] if o["figures"]["rolled_up"]]
    if estimated:
        console.print(
            f"Percentiles of {', '.join(estimated)} estimated from the capacity history's "
            "histograms (jobs whose rows are deleted): within a factor 2^(1/4) of the exact "
            "ones (docs/capacity.md); sums and means exact."
        )
    table = Table(
        title="Per operation (S: service time; wait: queue wait of submitted jobs; busy: "
        "workers busy on average)",
        title_justify="left",
    )
    for name in [
        "operation",
        "family",
        "jobs",
        "jobs/h",
        "peak/h",
        "S mean",
        "S p50",
        "S p95",
        "wait",
        "wait p95",
        "busy",
        "jobs/wkr-h",
        "trend/day",
        "daily jobs",
    ]:
        left = name in ("operation", "family", "daily jobs")
        table.add_column(
            name, justify="left" if left else "right", no_wrap=left, min_width=len(name)
        )
    for entry in found["operations"]:
        fig = entry["figures"]
        per_worker = fig["throughput_per_worker"]
        table.add_row(
            entry["operation"],
            entry["family"],
            str(fig["jobs"]),
            _n(fig["arrival_rate"] * 3600, 1),
            _n(fig["peak_rate"] * 3600, 0),
            _seconds(fig["service_mean"]),
            _seconds(fig["service_p50"]),
            _seconds(fig["service_p95"]),
            _seconds(fig["wait_mean"]),
            _seconds(fig["wait_p95"]),
            f"{fig['busy_workers']:.3g}",
            _n(per_worker * 3600 if per_worker else None, 0),
            _per_day(fig["trend"]),
            sparkline([float(d["jobs"]) for d in fig["daily"]]),
        )
    console.print(table)
    rate = (
        f"{target['rate']:g} jobs/s shared as measured"
        if target["rate"] is not None
        else f"the {target['basis']} rate × {target['growth']:g}"
    )
    sizing = Table(
        title=f"Workers needed: {rate}, p{target['percentile']:g} of the queue wait "
        f"≤ {_seconds(target['wait'])} (M/M/c)",
        title_justify="left",
    )
    for name in [
        "family",
        "target jobs/h",
        "service mean",
        "busy (λ·S)",
        "workers",
        "utilisation",
        "wait mean",
        f"wait p{target['percentile']:g}",
    ]:
        sizing.add_column(
            name, justify="left" if name == "family" else "right", min_width=len(name)
        )
    for family in found["families"]:
        plan = family["sizing"]
        sizing.add_row(
            family["family"],
            _n(plan["target_rate"] * 3600, 1),
            _seconds(family["figures"]["service_mean"]),
            f"{plan['offered_load']:.3g}",
            "-" if plan["workers"] is None else str(plan["workers"]),
            "-" if plan["utilisation"] is None else f"{plan['utilisation'] * 100:.0f} %",
            _seconds(plan["wait_mean"]),
            _seconds(plan["wait_at_percentile"]),
        )
    console.print(sizing)
    if found["configured_workers"] is not None:
        console.print(f"Configured workers (executor.workers): {found['configured_workers']}")
    pooled = found["families"][-1]
    daily = pooled["figures"]["daily"]
    top = max((d["jobs"] for d in daily), default=0)
    console.print(f"\nJobs per day ({pooled['family']}):")
    for day in daily:
        console.print(
            f"  {day['day']}  {bar(day['jobs'], top):<{_BAR}}  {day['jobs']:>7}  "
            f"{_seconds(day['service_mean']):>8}",
            highlight=False,
        )


def _remote(server: str, params: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = server_call(
        server, "GET", "/api/v2/capacity", timeout=120.0, params=params
    )
    return answer


def _local(params: dict[str, Any]) -> dict[str, Any]:
    from docworker.jobs.capacity import check_query, measure
    from docworker.jobs.store import JobStore

    settings = load_settings()
    query = check_query(
        settings.capacity,
        days=params.get("days"),
        operations=params.get("operation"),
        basis=params.get("basis"),
        growth=params.get("growth"),
        rate=params.get("rate"),
        wait=params.get("wait"),
        wait_percentile=params.get("percentile"),
    )
    store = JobStore(settings.database_url)
    try:
        store.migrate()
        return measure(store, query, settings).to_dict()
    finally:
        store.close()


def capacity(
    days: Annotated[
        float | None,
        typer.Option(help="Days of job history to read (default capacity.window_days)."),
    ] = None,
    operation: Annotated[
        list[str] | None, typer.Option(help="Only this operation (repeatable).")
    ] = None,
    basis: Annotated[
        str | None,
        typer.Option(help="Size for the 'mean' rate or the 'peak' hour's (capacity.basis)."),
    ] = None,
    growth: Annotated[
        float | None, typer.Option(help="Multiply the basis rate by this (e.g. 1.5).")
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(help="Or: target jobs per second over the operations reported."),
    ] = None,
    wait: Annotated[
        float | None,
        typer.Option(help="Target queue wait in seconds (capacity.target_wait)."),
    ] = None,
    percentile: Annotated[
        float | None,
        typer.Option(help="Percentile of the wait held to it (capacity.wait_percentile)."),
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            help="Ask this running server (an admin key in DOCWORKER_API_KEY) instead of "
            "reading the job store of these settings."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Throughput per worker and operation, its daily trend, and the workers each queue
    family needs for a target load and queue wait (Little's law, Erlang C)."""
    given = {
        "days": days,
        "operation": operation or None,
        "basis": basis,
        "growth": growth,
        "rate": rate,
        "wait": wait,
        "percentile": percentile,
    }
    params = {name: value for name, value in given.items() if value is not None}
    if server is not None:
        found = _remote(server, params)
    else:
        try:
            found = _local(params)
        except DocworkerError as exc:
            raise fail(exc.detail) from None
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    days_shown = max((len(o["figures"]["daily"]) for o in found["operations"]), default=0)
    # Wide enough for the table and its sparklines, piped to a file or not.
    render(found, Console(width=max(150 + days_shown, Console().width), highlight=False))
