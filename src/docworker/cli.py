"""The command line: ``serve`` the API, ``extract`` files locally, manage remote ``jobs``.

``docworker`` with no command starts the server, as the v1 binary did.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from docworker import __version__
from docworker.cli_capacity import capacity
from docworker.cli_common import fail, server_call
from docworker.cli_keys import keys_app
from docworker.cli_v1 import extract_v1, install_v1_commands
from docworker.config import ExecutorKind, Settings, SettingsRefused, load_settings
from docworker.engines.libreoffice import LibreOfficeEngine
from docworker.errors import DocworkerError
from docworker.files import restrict_umask
from docworker.formats.base import HtmlContent
from docworker.jobs.store import JobStore
from docworker.jobs.webhooks import reseal_webhook
from docworker.memory import limit_arenas
from docworker.operations import reseal_params
from docworker.operations.base import InputFile, operation_context
from docworker.operations.extract import ExtractOperation, ExtractParams
from docworker.render.document import OutputFormat
from docworker.sealing import SecretKeys, new_key

app = typer.Typer(
    name="docworker",
    help="Documents Worker: text, structure and Markdown from documents.",
    no_args_is_help=False,
    add_completion=False,
    # v1's CLI (cobra) took -h for help on every command; no command has a -h option.
    context_settings={"help_option_names": ["-h", "--help"]},
)
jobs_app = typer.Typer(help="Jobs on a running server.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
app.add_typer(keys_app, name="keys")
secrets_app = typer.Typer(
    help="Keys that seal secret job parameters (passwords) at rest.", no_args_is_help=True
)
app.add_typer(secrets_app, name="secrets")
err = Console(stderr=True)
Converter = Callable[[Path, str], Path]

SUFFIX = {
    OutputFormat.TEXT: ".txt",
    OutputFormat.MARKDOWN: ".md",
    OutputFormat.HTML: ".html",
    OutputFormat.JSON: ".json",
}
DEFAULT_SERVER = "http://127.0.0.1:3001"


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    if version:
        typer.echo(f"documents-worker version {__version__}")
        raise typer.Exit(0)
    if ctx.invoked_subcommand is None:
        serve()


@app.command()
def serve(
    host: Annotated[
        str | None,
        typer.Option(help="Listen address (default 127.0.0.1; 0.0.0.0 with API keys on)."),
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 3001, or PORT).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes for jobs.")] = None,
    executor: Annotated[
        ExecutorKind | None,
        typer.Option(
            help="Where jobs run (default executor.kind): 'local' worker processes, "
            "'celery' (this process is the API only: jobs go to the broker, "
            "`docworker worker` runs them) or 'none'."
        ),
    ] = None,
) -> None:
    """Start the HTTP API with the local executor (SQLite and local storage by default).
    SIGTERM drains it: no new work, running jobs finish (server.drain_timeout at most).
    SIGHUP reads the settings again and applies those safe to change while it runs
    (log level, flags, limits: docs/configuration.md)."""
    from docworker.api.app import create_app
    from docworker.api.serving import serve as serve_app
    from docworker.telemetry import configure_logging
    from docworker.tracing import shutdown as shutdown_tracing

    overrides: dict[str, dict[str, Any]] = {}
    for section, name, value in (
        ("server", "host", host),
        ("server", "port", port),
        ("executor", "workers", workers),
        ("executor", "kind", executor),
    ):
        if value is not None:
            overrides.setdefault(section, {})[name] = value
    settings = _settings_or_fail(**overrides)
    configure_logging(level=settings.log.level, json_logs=settings.json_logs)
    restrict_umask()  # the metrics' files are the service's user's alone, as all it keeps
    _gather_metrics(settings, "api")
    # Before any thread of the service starts: each would make an arena of its own.
    limit_arenas(settings.server.malloc_arenas)
    try:
        application = create_app(settings)
    except SettingsRefused as refused:
        lines = "\n".join(f"  - {reason}" for reason in refused.reasons)
        raise fail(f"refusing to start ({settings.profile.value} profile):\n{lines}", 2) from None
    _reload_on_hangup(application, settings, overrides)
    try:
        status = serve_app(application, settings)
    finally:
        shutdown_tracing()  # the spans still held are exported
    if status:
        raise typer.Exit(status)


def _settings_or_fail(**overrides: Any) -> Settings:
    """The settings, or exit 2 naming what is wrong with them (never the values)."""
    from pydantic import ValidationError

    try:
        return load_settings(**overrides)
    except ValidationError as exc:
        lines = "\n".join(
            f"  - {'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        raise fail(f"the settings are not valid:\n{lines}", 2) from None
    except ValueError as exc:
        raise fail(str(exc), 2) from None


def _reload_on_hangup(application: Any, settings: Settings, overrides: dict[str, Any]) -> None:
    """SIGHUP reloads the settings (:mod:`docworker.reload`), in a thread of its own: a
    signal handler may not log nor take locks."""
    import signal
    import threading

    from docworker.reload import reload

    lock = threading.Lock()

    def run() -> None:
        with lock:
            services = getattr(application.state, "services", None)
            reload(settings, services, **overrides)

    def on_hangup(signum: int, frame: Any) -> None:
        threading.Thread(target=run, name="settings-reload", daemon=True).start()

    signal.signal(signal.SIGHUP, on_hangup)


config_app = typer.Typer(help="The settings: show them, check them.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show(
    output: Annotated[
        str, typer.Option("--format", help="yaml or json.", case_sensitive=False)
    ] = "yaml",
    profile: Annotated[
        str | None, typer.Option(help="Show them as this profile would have them.")
    ] = None,
    sources: Annotated[bool, typer.Option(help="Say where each setting given came from.")] = True,
) -> None:
    """The effective settings (defaults, the profile's, the settings file, the
    environment), every secret masked: passwords of URLs, keys, secrets."""
    from docworker.config_report import masked
    from docworker.config_report import sources as sources_of

    if output.lower() not in ("yaml", "json"):
        raise fail(f"--format is yaml or json, not {output}", 2)
    settings = _settings_or_fail(**({"profile": profile} if profile else {}))
    data: dict[str, Any] = {"settings": masked(settings)}
    if sources:
        data["sources"] = sources_of(settings)
    if output.lower() == "json":
        typer.echo(json.dumps(data, indent=2))
    else:
        import yaml  # type: ignore[import-untyped]

        typer.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), nl=False)


@config_app.command("check")
def config_check(
    profile: Annotated[
        str | None,
        typer.Option(help="Check as this profile (e.g. production) instead of the configured."),
    ] = None,
) -> None:
    """Exit 0 when the profile accepts the settings; else 1, listing every refusal and
    why (2: the settings are not valid at all)."""
    from docworker.config import Profile
    from docworker.config_report import problems

    if profile is not None and profile not in {p.value for p in Profile}:
        known = ", ".join(p.value for p in Profile)
        raise fail(f"--profile is one of {known}, not {profile}", 2)
    settings = _settings_or_fail(**({"profile": profile} if profile else {}))
    found = problems(settings)
    name = settings.profile.value
    if not found:
        typer.echo(f"ok: the {name} profile accepts these settings")
        return
    lines = "\n".join(f"  - {reason}" for reason in found)
    typer.echo(f"the {name} profile refuses these settings:\n{lines}")
    raise typer.Exit(1)


@app.command()
def worker(
    queues: Annotated[
        str | None,
        typer.Option(
            help="Families whose queues this worker takes, separated by commas "
            "(documents, ocr, convert, media; default: all)."
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(help="Worker processes (default celery.concurrency, else executor.workers)."),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=65535,
            help="Answer GET /metrics (Prometheus text of this worker and its processes) "
            "on this port (default metrics.worker_port; 0: none).",
        ),
    ] = None,
) -> None:
    """Run jobs of the celery executor: a Celery worker taking the named families' queues
    from the broker (celery.broker_url), against the same job store and blob store as the
    API (docs/distributed.md)."""
    from docworker.jobs.distributed import prepare_worker, queue_name
    from docworker.operations.base import Family
    from docworker.storage import storage_refusals
    from docworker.telemetry import configure_logging

    settings = _settings_or_fail()
    configure_logging(level=settings.log.level, json_logs=settings.json_logs)
    names = [part.strip() for part in (queues or "").split(",") if part.strip()]
    known = {family.value for family in Family}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise fail(
            f"unknown queue {', '.join(unknown)}: the queues are {', '.join(sorted(known))}", 2
        )
    families = names or [family.value for family in Family]
    processes = concurrency or settings.celery.concurrency or settings.executor.workers
    if refusals := storage_refusals(settings.storage):
        lines = "\n".join(f"  - {reason}" for reason in refusals)
        raise fail(f"refusing to start:\n{lines}", 2)
    restrict_umask()
    port = settings.metrics.worker_port if metrics_port is None else metrics_port
    if port:
        # Only when scraped: the scrapes fold the files of the pool processes that ended.
        _gather_metrics(settings, "worker")
    try:
        celery_app = prepare_worker(settings)
    except DocworkerError as exc:
        raise fail(exc.detail) from None
    if port:
        from docworker import metrics_store

        try:
            metrics_store.serve(port, settings.metrics.worker_host)
        except OSError as exc:
            raise fail(f"the metrics port {port} cannot be opened: {exc}") from None
    # JSON logs: no banner in plain text either (the log lines say the same).
    quiet = ["--quiet"] if settings.json_logs else []
    celery_app.worker_main(
        [
            *quiet,
            "worker",
            "--queues",
            ",".join(queue_name(settings, family) for family in families),
            "--concurrency",
            str(processes),
            "--pool",
            "prefork",
            "--hostname",
            f"docworker-{os.getpid()}@%h",
            "--loglevel",
            settings.log.level.upper(),
            "--without-gossip",
            "--without-mingle",
        ]
    )


def _gather_metrics(settings: Settings, role: str) -> None:
    """Gather the metrics of this instance's processes in one folder (metrics.*), before
    any is recorded or any process is started."""
    if not settings.metrics.multiprocess:
        return
    from docworker import metrics_store

    parent = settings.metrics.folder or settings.data_dir / "metrics"
    try:
        metrics_store.enable(metrics_store.instance_folder(parent.absolute(), role))
    except OSError as exc:
        raise fail(f"the metrics folder {parent} cannot be made: {exc}") from None


def _inputs(paths: list[Path]) -> list[tuple[Path, Path]]:
    """(file, path relative to what was named) for each file named or found in a folder."""
    found: list[tuple[Path, Path]] = []
    for path in paths:
        if path.is_dir():
            found.extend((f, f.relative_to(path)) for f in sorted(path.rglob("*")) if f.is_file())
        elif path.is_file():
            found.append((path, Path(path.name)))
        else:
            raise fail(f"{path}: no such file or folder")
    return found


def _extract_one(
    path: Path, params: ExtractParams, settings: Settings, convert: Converter
) -> dict[str, Any]:
    ctx = operation_context(settings, convert=convert)
    return ExtractOperation().run(ctx, InputFile(path=path, name=path.name), params).payload


def _content_text(payload: dict[str, Any]) -> str:
    content = payload["content"]
    return (
        content if isinstance(content, str) else json.dumps(content, indent=2, ensure_ascii=False)
    )


@app.command()
def extract(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders.")],
    output: Annotated[OutputFormat, typer.Option(help="text, markdown, html or json.")] = (
        OutputFormat.MARKDOWN
    ),
    out: Annotated[Path | None, typer.Option(help="Folder for the outputs.")] = None,
    pages: Annotated[str | None, typer.Option(help="Pages, e.g. 1-3,5.")] = None,
    password: Annotated[str | None, typer.Option(help="Password of encrypted files.")] = None,
    content: Annotated[
        HtmlContent,
        typer.Option(help="Of a web page: full (all its text) or main (the article)."),
    ] = "full",
    sheet_names: Annotated[
        bool, typer.Option(help="Open each spreadsheet sheet with a heading of its name.")
    ] = True,
) -> None:
    """Extract documents here, without a server. One file without --out prints to stdout.
    v1's form, ``extract INPUT OUTPUT`` (a file and a new file to write), writes the text."""
    from docworker.telemetry import configure_logging

    if out is None and len(paths) == 2 and paths[0].is_file() and not paths[1].exists():
        # A file and a path that does not exist yet, without --out: v1's form. (Two
        # existing files stay this command's own form; `docworker cli extract` is v1's.)
        extract_v1(paths[0], paths[1])
        return
    try:
        params = ExtractParams.model_validate(
            {
                "output": output,
                "pages": pages,
                "password": password,
                "content": content,
                "sheet_names": sheet_names,
            }
        )
    except ValueError as exc:
        raise fail(str(exc).splitlines()[-1], 2) from None
    settings = load_settings()
    # Logs go to stderr, stdout carrying the output; a command line speaks only of trouble.
    configure_logging(level="WARNING", json_logs=settings.json_logs)
    files = _inputs(paths)
    if out is None and len(files) != 1:
        raise fail("several files need --out DIR", 2)
    # Started by the first file that needs it (.doc, .xls, .ppt), stopped here.
    with LibreOfficeEngine(settings.libreoffice, settings.sandbox) as libreoffice:
        if out is None:
            try:
                payload = _extract_one(files[0][0], params, settings, libreoffice.convert)
            except DocworkerError as exc:
                raise fail(f"{files[0][0]}: {exc.detail}") from None
            sys.stdout.write(_content_text(payload))
            return
        failures = _extract_many(files, out, params, settings, libreoffice.convert)
    if failures:
        raise fail(f"{failures} of {len(files)} files failed")


def _extract_many(
    files: list[tuple[Path, Path]],
    out: Path,
    params: ExtractParams,
    settings: Settings,
    convert: Converter,
) -> int:
    failures = 0
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("extracting", total=len(files))
        for path, relative in files:
            target = (out / relative).with_suffix(relative.suffix + SUFFIX[params.output])
            try:
                payload = _extract_one(path, params, settings, convert)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(_content_text(payload), encoding="utf-8")
            except DocworkerError as exc:
                failures += 1
                progress.console.print(
                    f"docworker: {path}: {exc.detail}", markup=False, soft_wrap=True
                )
            progress.advance(task)
    return failures


ServerOption = Annotated[
    str, typer.Option(envvar="DOCWORKER_SERVER", help="Base URL of the server.")
]


@jobs_app.command("list")
def jobs_list(
    server: ServerOption = DEFAULT_SERVER,
    status: Annotated[list[str] | None, typer.Option(help="Only these states.")] = None,
    operation: Annotated[str | None, typer.Option(help="Only this operation.")] = None,
    limit: Annotated[int, typer.Option(help="How many.")] = 20,
) -> None:
    """List jobs, newest first."""
    query: dict[str, Any] = {"limit": limit, "status": status or []}
    if operation:
        query["operation"] = operation
    body = server_call(server, "GET", "/api/v2/jobs", params=query)
    for job in body["jobs"]:
        name = (job.get("input") or {}).get("name") or "-"
        typer.echo(
            f"{job['id']}  {job['status']:<9}  {job['operation']:<8}  {job['created_at']}  {name}"
        )


@jobs_app.command("show")
def jobs_show(job_id: str, server: ServerOption = DEFAULT_SERVER) -> None:
    """Show one job as JSON."""
    typer.echo(json.dumps(server_call(server, "GET", f"/api/v2/jobs/{job_id}"), indent=2))


@jobs_app.command("cancel")
def jobs_cancel(job_id: str, server: ServerOption = DEFAULT_SERVER) -> None:
    """Cancel a queued or running job."""
    job = server_call(server, "DELETE", f"/api/v2/jobs/{job_id}")
    typer.echo(f"{job['id']}  {job['status']}")


@jobs_app.command("delete")
def jobs_delete(job_id: str, server: ServerOption = DEFAULT_SERVER) -> None:
    """Delete a job with all its data (cancelled first if it has not ended)."""
    server_call(server, "DELETE", f"/api/v2/jobs/{job_id}", params={"purge": "true"})
    typer.echo(f"{job_id}  deleted")


@secrets_app.command("new-key")
def secrets_new_key() -> None:
    """Print a new random key for DOCWORKER_SECRETS__KEYS."""
    typer.echo(new_key())


@secrets_app.command("rotate")
def secrets_rotate() -> None:
    """Seal every stored secret parameter and webhook secret again with the first of
    secrets.keys (those sealed with an older key, and any stored in clear by an older
    version). Put the new
    key first in every replica's configuration before, remove the old one after."""
    settings = load_settings()
    restrict_umask()
    keys = SecretKeys.from_settings(settings)
    store = JobStore(settings.database_url)
    try:
        store.migrate()
        changed = store.rewrite_params(
            lambda operation, params: reseal_params(operation, params, keys)
        )
        hooks = store.rewrite_webhooks(lambda webhook: reseal_webhook(webhook, keys))
        batch_hooks = store.rewrite_batch_webhooks(lambda webhook: reseal_webhook(webhook, keys))
    except DocworkerError as exc:
        raise fail(exc.detail) from None
    finally:
        store.close()
    typer.echo(f"{changed} jobs had their secret parameters sealed with the first key")
    typer.echo(f"{hooks} jobs had their webhook secret sealed with the first key")
    typer.echo(f"{batch_hooks} batches had their webhook secret sealed with the first key")


app.command("capacity")(capacity)
install_v1_commands(app)
# v1's packaged binary took `server` as well as no argument to start the service.
app.command("server", help="Start the HTTP API (v1's name for 'serve').")(serve)


def main() -> None:
    # Typer's rich tracebacks would show a user's bad input as a crash.
    os.environ.setdefault("_TYPER_STANDARD_TRACEBACK", "1")
    app()
