"""send-now, fetch, preview, status: each parses flags, calls the pipeline, prints."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import click

from digest import pipeline
from digest.app import load_app_config, local_now, open_app
from digest.cli.output import TerminalProgress, print_table, warn
from digest.config import Config, Settings, load_settings

CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Config file (default: $DIGEST_CONFIG, ./digest.toml, else the bundled example).",
)
DATE_OPTION = click.option(
    "--date",
    "list_date",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="The list date to treat as today (YYYY-MM-DD), for replaying and backfilling.",
)


def setup(config_path: Path | None) -> tuple[Settings, Config]:
    settings = load_settings()
    config = load_app_config(settings, config_path)
    if config.is_example:
        click.echo(
            f"Using the bundled example config ({config.path}): "
            "copy it to digest.toml to use your own subscribers and sources.",
            err=True,
        )
    return settings, config


@click.command("send-now")
@CONFIG_OPTION
@DATE_OPTION
@click.option("--dry-run", is_flag=True, help="Fetch and rank, but send and record nothing.")
@click.option("--subscriber", "only", metavar="EMAIL", help="Only this subscriber.")
@click.option(
    "--force", is_flag=True, help="Send whatever the schedule says (never a paper twice)."
)
def send_now(
    config_path: Path | None,
    list_date: datetime | None,
    dry_run: bool,
    only: str | None,
    force: bool,
) -> None:
    """Fetch new papers and send the digests that are due (all of them with --force)."""
    settings, config = setup(config_path)
    options = pipeline.RunOptions(
        list_date=list_date.date() if list_date else None,
        only=(only,) if only else (),
        dry_run=dry_run,
        force=force,
    )
    with open_app(settings, config) as app, TerminalProgress() as progress:
        pipeline.select_subscribers(app, options.only)  # refuse an empty list before fetching
        report = pipeline.run_once(app, options, local_now(), progress)
        mailer = app.mailer.description
    print_source_errors(report.sources)
    print_table(
        ["subscriber", "new papers", "sent", "result"],
        [[r.email, str(r.considered), str(r.sent), result_text(r, mailer)] for r in report.digests],
    )
    if report.storm:
        click.echo(
            f"error: delivery paused: {report.storm}; the rest stays in the outbox",
            err=True,
        )
    if report.stopped:
        click.echo("stopped: what was not sent stays in the outbox for the next run", err=True)
    if report.send_failed:
        raise click.exceptions.Exit(1)


def result_text(report: pipeline.SubscriberReport, mailer: str) -> str:
    texts = {
        "sent": f"sent to {report.where}",
        "failed": f"FAILED: {report.error} (its papers go into the next digest)",
        "retry": f"will retry: {report.error}",
        "planned": "queued in the outbox (delivery stopped early)",
        "dry run": f"dry run: would send to {mailer}",
        "suppressed": f"suppressed: {report.error}",
        "not due": f"not due ({report.error})",
        "skipped": f"skipped: {report.error}",
        "planned by another run": "planned by another run",
    }
    return texts.get(report.status, report.status)


@click.command("plan")
@CONFIG_OPTION
@DATE_OPTION
@click.option("--subscriber", "only", metavar="EMAIL", help="Only this subscriber.")
@click.option("--force", is_flag=True, help="Plan whatever the schedule says.")
@click.option("--no-fetch", is_flag=True, help="Plan from what is stored; read no source.")
def plan(
    config_path: Path | None,
    list_date: datetime | None,
    only: str | None,
    force: bool,
    no_fetch: bool,
) -> None:
    """Fetch, rank and put each due subscriber's digest in the outbox; send nothing."""
    settings, config = setup(config_path)
    now = local_now()
    options = pipeline.RunOptions(
        list_date=list_date.date() if list_date else None,
        only=(only,) if only else (),
        force=force,
        fetch=not no_fetch,
    )
    with open_app(settings, config) as app, TerminalProgress() as progress:
        subscribers = pipeline.select_subscribers(app, options.only)
        if options.fetch:
            print_source_errors(pipeline.fetch(app, options.list_date, now, progress))
            pipeline.index_recent(app, now, progress)
        due, waiting = pipeline.due_now(app, subscribers, now, options)
        reports = waiting + pipeline.plan(app, due, now=now)
    print_table(
        ["subscriber", "new papers", "papers", "result"],
        [[r.email, str(r.considered), str(r.sent), result_text(r, "")] for r in reports],
    )


@click.command("worker")
@CONFIG_OPTION
@click.option("--once", is_flag=True, help="Stop when nothing is due instead of waiting.")
def worker(config_path: Path | None, once: bool) -> None:
    """Deliver due messages from the outbox until stopped (SIGTERM/SIGINT finish in-flight)."""
    settings, config = setup(config_path)
    with open_app(settings, config) as app:
        report = asyncio.run(pipeline.deliver(app, local_now, once=once))
    click.echo(
        f"sent {report.count('sent')}, retrying {report.count('retry')}, "
        f"failed {report.count('failed')}"
    )
    for result in report.results:
        if result.outcome != "sent":
            click.echo(f"{result.subscriber}: {result.outcome}: {result.detail}", err=True)
    if report.storm:
        click.echo(f"error: delivery paused: {report.storm}", err=True)
    if report.storm or report.count("failed"):
        raise click.exceptions.Exit(1)


@click.command("fetch")
@CONFIG_OPTION
@DATE_OPTION
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def fetch(config_path: Path | None, list_date: datetime | None, fmt: str) -> None:
    """Read the sources, store what is new and embed it; send nothing."""
    settings, config = setup(config_path)
    now = local_now()
    day = list_date.date() if list_date else None
    with open_app(settings, config) as app, TerminalProgress() as progress:
        reports = pipeline.fetch(app, day, now, progress)
        pipeline.index_recent(app, now, progress)
    if fmt == "json":
        click.echo(json.dumps({"sources": [asdict(r) for r in reports]}, indent=2))
    else:
        print_source_errors(reports)
        print_table(
            ["source", "fetched", "new", "updated", "failed"],
            [[r.name, str(r.fetched), str(r.new), str(r.updated), str(r.failed)] for r in reports],
        )
        total = sum(r.new for r in reports)
        click.echo(f"{total} new paper{'s' if total != 1 else ''}")
    if reports and all(r.failed and not r.fetched for r in reports):
        raise click.exceptions.Exit(1)


@click.command("preview")
@click.argument("email")
@CONFIG_OPTION
@DATE_OPTION
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Where to write the HTML (default: preview/<email>.html); the text goes beside it.",
)
@click.option(
    "--open",
    "open_browser",
    is_flag=True,
    help="Open the HTML in a web browser (when there is one and this runs in a terminal).",
)
def preview(
    email: str,
    config_path: Path | None,
    list_date: datetime | None,
    output: Path | None,
    open_browser: bool,
) -> None:
    """Write EMAIL's next digest (HTML and plain text) to files and print the HTML's path;
    send nothing. With nothing new, say so and write nothing."""
    import sys
    import webbrowser

    settings, config = setup(config_path)
    options = pipeline.RunOptions(list_date=list_date.date() if list_date else None)
    with open_app(settings, config) as app:
        digest, message = pipeline.preview(app, email, options, local_now())
    target = output or Path("preview") / f"{digest.subscriber.email}.html"
    text_target = target.with_suffix(".txt")
    if not digest.papers:
        click.echo(f"{digest.subscriber.email}: nothing new to send; no preview written", err=True)
        stale = [str(p) for p in (target, text_target) if p.exists()]
        if stale:
            click.echo(f"(an earlier preview is out of date: {', '.join(stale)})", err=True)
        return
    html_part = message.get_body(preferencelist=("html",))
    text_part = message.get_body(preferencelist=("plain",))
    assert html_part is not None and text_part is not None
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(html_part.get_content(), encoding="utf-8")
    text_target.write_text(text_part.get_content(), encoding="utf-8")
    click.echo(
        f"{digest.subscriber.email}: {message['Subject']} (plain text: {text_target})", err=True
    )
    click.echo(str(target))
    if open_browser:
        if not sys.stdout.isatty():
            click.echo("not opened: the output is not a terminal", err=True)
        elif not webbrowser.open(target.resolve().as_uri()):
            click.echo("not opened: no web browser found", err=True)


@click.command("status")
@CONFIG_OPTION
def status(config_path: Path | None) -> None:
    """Show the configuration in use, the active ranker and mailer, and each subscriber."""
    settings, config = setup(config_path)
    with open_app(settings, config) as app:
        click.echo(f"config:    {config.path}{' (bundled example)' if config.is_example else ''}")
        click.echo(f"database:  {app.store.safe_url} ({app.store.count_papers()} papers)")
        click.echo(f"ranker:    {app.ranker.name}")
        click.echo(f"mailer:    {app.mailer.description}")
        click.echo(f"sources:   {', '.join(s.name for s in app.sources) or 'none'}")
        emails = [s.email for s in config.subscribers]
        summary = app.store.subscriber_status(emails)
        suppressed = app.store.suppressed(emails)
        counts = app.store.message_counts()
        runs = app.store.recent_runs(5)
        failures = app.store.recent_failures(10)
        health = app.store.source_health(5)
    now = local_now()
    upcoming = {}
    for sub in config.subscribers:
        schedule = pipeline.schedule_for(sub, settings)
        upcoming[sub.email] = (
            f"{schedule.next_slot(now).astimezone(schedule.zone):%a %d %b %H:%M %Z}"
        )
    click.echo(f"outbox:    {', '.join(f'{n} {k}' for k, n in sorted(counts.items())) or 'empty'}")
    click.echo("")
    print_table(
        ["subscriber", "last digest", "papers sent", "next digest", "state"],
        [
            [
                e,
                last.strftime("%Y-%m-%d %H:%M") if last else "never",
                str(sent),
                upcoming[e],
                f"suppressed: {suppressed[e]}" if e in suppressed else "active",
            ]
            for e, (last, sent) in summary.items()
        ],
    )
    if health:
        click.echo("")
        print_table(
            ["source", "last good fetch", "failed (last 5)", "last error"],
            [
                [
                    name,
                    f"{h['last_success']:%Y-%m-%d %H:%M}" if h.get("last_success") else "never",
                    str(h.get("recent_failures", 0)),
                    (h.get("last_error") or "")[:80],
                ]
                for name, h in sorted(health.items())
            ],
        )
    if runs:
        click.echo("")
        print_table(
            ["run", "started", "planned", "sent", "retrying", "failed", "suppressed"],
            [
                [
                    f"{r['id']} {r['kind']}",
                    f"{r['started_at']:%Y-%m-%d %H:%M}",
                    *(str(r[k]) for k in ("planned", "sent", "retrying", "failed", "suppressed")),
                ]
                for r in runs
            ],
        )
    for failure in failures:
        click.echo(f"{failure['status']}: {failure['subscriber']}: {failure['last_error']}")
    if runs and (runs[0]["failed"] or runs[0]["retrying"]):
        raise click.exceptions.Exit(1)


def print_source_errors(reports: list[pipeline.SourceReport]) -> None:
    for report in reports:
        for error in report.errors:
            warn(error)
