"""The `digest` command: send-now, fetch, preview, rank.

A thin skin over the pipeline. Expected errors (`DigestError`) become one line on stderr
and a non-zero exit here and only here; `-v` shows the traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from digest import pipeline
from digest.app import App, load_app_config, local_now, open_app
from digest.config import Config, Settings, load_settings
from digest.errors import DigestError
from digest.rank.command import rank_command
from digest.render import render_message

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


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log progress and show tracebacks.")
@click.version_option(package_name="paper-digest")
def cli(verbose: bool) -> None:
    """paper-digest: a daily email of the new papers that matter to each subscriber."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )


def _setup(config_path: Path | None) -> tuple[Settings, Config]:
    settings = load_settings()
    config = load_app_config(settings, config_path)
    if config.is_example:
        click.echo(
            f"Using the bundled example config ({config.path.name}): "
            "copy it to digest.toml to use your own subscribers and sources.",
            err=True,
        )
    return settings, config


def _today(list_date: datetime | None, now: datetime) -> date:
    return list_date.date() if list_date else now.date()


def _fetch_with_progress(
    app: App, list_date: datetime | None, now: datetime
) -> list[pipeline.SourceReport]:
    """Fetch every source; a progress bar on a terminal. `--date` pins the list date."""
    today = _today(list_date, now)
    live_now = None if list_date else now
    if not sys.stderr.isatty():
        return pipeline.fetch(app.sources, app.store, app.fetch_context(today, live_now), now)
    with click.progressbar(length=1, label="Fetching", file=sys.stderr) as bar:

        def progress(where: str, done: int, total: int | None) -> None:
            bar.length = max(total or done + 1, done)
            bar.update(done - bar.pos)

        ctx = app.fetch_context(today, live_now, progress)
        return pipeline.fetch(app.sources, app.store, ctx, now)


@cli.command("send-now")
@CONFIG_OPTION
@DATE_OPTION
@click.option("--dry-run", is_flag=True, help="Fetch and rank, but send and record nothing.")
@click.option("--subscriber", "only", metavar="EMAIL", help="Only this subscriber.")
def send_now(
    config_path: Path | None, list_date: datetime | None, dry_run: bool, only: str | None
) -> None:
    """Fetch new papers and send each subscriber's digest now."""
    settings, config = _setup(config_path)
    subscribers = (config.subscriber(only),) if only else config.subscribers
    now = local_now()
    today = _today(list_date, now)
    with open_app(settings, config) as app:
        sources = _fetch_with_progress(app, list_date, now)
        _print_source_errors(sources)
        reports = asyncio.run(
            pipeline.send_digests(
                app.store,
                app.ranker,
                app.mailer,
                app.templates,
                subscribers,
                sender=settings.from_address,
                now=now,
                day=today,
                new_subscriber_days=settings.new_subscriber_days,
                dry_run=dry_run,
            )
        )
        mailer = app.mailer.description
    _print_table(
        ["subscriber", "new papers", "sent", "result"],
        [[r.email, str(r.considered), str(r.sent), _result_text(r, mailer)] for r in reports],
    )
    if any(r.status == "failed" for r in reports):
        raise click.exceptions.Exit(1)


def _result_text(report: pipeline.SubscriberReport, mailer: str) -> str:
    if report.status == "sent":
        return f"sent to {report.where}"
    if report.status == "failed":
        return f"FAILED: {report.error} (will retry next run)"
    if report.status == "dry run":
        return f"dry run: would send to {mailer}"
    return report.status


@cli.command("fetch")
@CONFIG_OPTION
@DATE_OPTION
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def fetch(config_path: Path | None, list_date: datetime | None, fmt: str) -> None:
    """Read the sources and store what is new; send nothing."""
    settings, config = _setup(config_path)
    now = local_now()
    with open_app(settings, config) as app:
        reports = _fetch_with_progress(app, list_date, now)
    if fmt == "json":
        click.echo(json.dumps({"sources": [asdict(r) for r in reports]}, indent=2))
    else:
        _print_source_errors(reports)
        _print_table(
            ["source", "fetched", "new", "updated", "failed"],
            [[r.name, str(r.fetched), str(r.new), str(r.updated), str(r.failed)] for r in reports],
        )
        total = sum(r.new for r in reports)
        click.echo(f"{total} new paper{'s' if total != 1 else ''}")
    if reports and all(r.failed and not r.fetched for r in reports):
        raise click.exceptions.Exit(1)


@cli.command("preview")
@click.argument("email")
@CONFIG_OPTION
@DATE_OPTION
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Where to write the HTML (default: preview/<email>.html).",
)
def preview(
    email: str, config_path: Path | None, list_date: datetime | None, output: Path | None
) -> None:
    """Write the HTML of EMAIL's next digest to a file and print its path; send nothing."""
    settings, config = _setup(config_path)
    subscriber = config.subscriber(email)
    now = local_now()
    today = _today(list_date, now)
    with open_app(settings, config) as app:
        _print_source_errors(_fetch_with_progress(app, list_date, now))
        (plan,) = pipeline.plan_digests(
            app.store,
            app.ranker,
            [subscriber],
            now=now,
            day=today,
            new_subscriber_days=settings.new_subscriber_days,
        )
        message = render_message(plan.digest, app.templates, sender=settings.from_address, now=now)
    html_part = message.get_body(preferencelist=("html",))
    assert html_part is not None
    target = output or Path("preview") / f"{subscriber.email}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(html_part.get_content(), encoding="utf-8")
    if not plan.digest.papers:
        click.echo(f"{subscriber.email}: nothing new to send", err=True)
    click.echo(str(target))


@cli.command("status")
@CONFIG_OPTION
def status(config_path: Path | None) -> None:
    """Show the configuration in use, the active ranker and mailer, and each subscriber."""
    settings, config = _setup(config_path)
    with open_app(settings, config) as app:
        click.echo(f"config:    {config.path}{' (bundled example)' if config.is_example else ''}")
        click.echo(f"database:  {app.store.safe_url} ({app.store.count_papers()} papers)")
        click.echo(f"ranker:    {app.ranker.name}")
        click.echo(f"mailer:    {app.mailer.description}")
        click.echo(f"sources:   {', '.join(s.name for s in app.sources) or 'none'}")
        emails = [s.email for s in config.subscribers]
        summary = app.store.subscriber_status(emails)
    click.echo("")
    _print_table(
        ["subscriber", "last digest", "papers sent"],
        [
            [e, last.strftime("%Y-%m-%d %H:%M") if last else "never", str(sent)]
            for e, (last, sent) in summary.items()
        ],
    )


cli.add_command(rank_command, "rank")


def _print_source_errors(reports: Sequence[pipeline.SourceReport]) -> None:
    for report in reports:
        for error in report.errors:
            click.echo(f"warning: {error}", err=True)


def _print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    for line in [header, [("-" * w) for w in widths], *rows]:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=False)).rstrip())


def main(argv: list[str] | None = None) -> Any:
    """Entry point: run the CLI, turning expected errors into one line and an exit code."""
    verbose = "-v" in (argv or sys.argv[1:]) or "--verbose" in (argv or sys.argv[1:])
    try:
        code = cli.main(args=argv, prog_name="digest", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except DigestError as exc:
        if verbose:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    if isinstance(code, int) and code:
        sys.exit(code)
    return code
