"""run, check, why: running the service and answering "why did I get no email today?"."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import aiosmtplib
import click

from digest import pipeline
from digest.app import local_now, open_app
from digest.cli.commands import CONFIG_OPTION, setup
from digest.config import Settings, load_settings
from digest.errors import DigestError
from digest.models import Reason
from digest.render import make_environment
from digest.scheduler import Service, outages


@click.command("run")
@CONFIG_OPTION
def run(config_path: Path | None) -> None:
    """Run the service: fetch on an interval and send each subscriber's digest on time.

    Logs to stderr; SIGTERM or SIGINT finish the messages in flight and stop; SIGHUP
    reloads the config file.
    """
    settings, _config = setup(config_path)
    Service(settings, config_path, local_now).run()


@click.command("check")
@CONFIG_OPTION
@click.option("--smtp", "with_smtp", is_flag=True, help="Also connect to the SMTP server.")
def check(config_path: Path | None, with_smtp: bool) -> None:
    """Check config, environment, database, templates (and SMTP): one line per problem."""
    problems: list[str] = []
    settings, config = setup(config_path)
    click.echo(f"ok: config {config.path} ({len(config.subscribers)} subscribers)")
    try:
        make_environment(settings.templates_dir, postal_address=settings.postal_address)
        click.echo("ok: templates")
    except DigestError as exc:
        problems.append(str(exc))
    with open_app(settings, config) as app:
        click.echo(f"ok: database {app.store.safe_url}")
        click.echo(f"ok: ranker {app.ranker.name}")
        for source, problem in outages(app, local_now()).items():
            problems.append(f"source {source}: {problem}")
    if with_smtp:
        try:
            click.echo(f"ok: {asyncio.run(_smtp_check(settings))}")
        except DigestError as exc:
            problems.append(str(exc))
    for problem in problems:
        click.echo(f"error: {problem}", err=True)
    if problems:
        raise click.exceptions.Exit(1)


async def _smtp_check(settings: Settings) -> str:
    if not settings.smtp_host:
        raise DigestError("DIGEST_SMTP_HOST is not set: mail goes to the outbox folder")
    port = settings.smtp_port_or_default
    where = f"smtp://{settings.smtp_host}:{port}"
    client = aiosmtplib.SMTP(
        hostname=settings.smtp_host,
        port=port,
        use_tls=settings.smtp_security == "ssl",
        start_tls=settings.smtp_security == "starttls",
        timeout=settings.smtp_timeout,
    )
    try:
        await client.connect()
        if settings.smtp_username and settings.smtp_password:
            await client.login(settings.smtp_username, settings.smtp_password.get_secret_value())
        await client.noop()
        await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise DigestError(f"{where}: {' '.join(str(exc).split())}") from None
    return f"{where} answered"


CONSIDERED_SHOWN = 20  # papers `digest why` lists without --all


@click.command("why")
@click.argument("email")
@CONFIG_OPTION
@click.option(
    "--date",
    "day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="The day to explain (default: today in the subscriber's time zone).",
)
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help=f"List every paper considered (default: the best {CONSIDERED_SHOWN}).",
)
def why(email: str, config_path: Path | None, day: datetime | None, show_all: bool) -> None:
    """Explain one subscriber's day: due or not, planned, sent, skipped, and why; and
    every paper the digest considered, with its score and why it was or was not sent."""
    settings = load_settings()
    _settings, config = setup(config_path)
    subscriber = config.subscriber(email)
    schedule = pipeline.schedule_for(subscriber, settings)
    now = local_now()
    wanted = day.date() if day else now.astimezone(schedule.zone).date()
    with open_app(settings, config) as app:
        suppressed = app.store.suppressed([subscriber.email])
        decisions = app.store.decisions(subscriber.email, wanted)
        messages = app.store.messages_on(subscriber.email, wanted)
        papers = app.store.papers_by_id(
            [p["id"] for m in messages for p in (m["contents"] or {}).get("papers", [])]
        )
        # The last decision that ranked papers: list them all, ranked again.
        ranked = [d for d in decisions if d["status"] in ("planned", "no matching papers")]
        considered: list[pipeline.Considered] = []
        if ranked:
            last = ranked[-1]
            picked = {
                entry["id"]
                for m in messages
                if m["message_id"] == last["message_id"]
                for entry in (m["contents"] or {}).get("papers", [])
            }
            considered = pipeline.considered_papers(app, subscriber, last, picked)
    click.echo(f"{subscriber.email} on {wanted:%a %d %b %Y}")
    click.echo(f"schedule:  {schedule.describe()}")
    if schedule.runs_on(wanted):
        slot = schedule.slot_on(wanted).astimezone(schedule.zone)
        click.echo(f"due:       yes, at {slot:%H:%M %Z}")
    else:
        click.echo("due:       no digest is scheduled on that day")
    if subscriber.email in suppressed:
        click.echo(f"suppressed: {suppressed[subscriber.email]} (digest subscribers enable)")
    if not decisions and not messages:
        click.echo("nothing was planned or skipped for that day yet")
    for d in decisions:
        detail = f": {d['detail']}" if d["detail"] else ""
        click.echo(
            f"{d['created_at']:%H:%M} {d['status']}{detail} "
            f"({d['considered']} new papers considered, {d['papers']} picked)"
        )
    for m in messages:
        state = m["status"]
        if m["status"] == "sent" and m["sent_at"]:
            state = f"sent {m['sent_at']:%H:%M} to {m['destination']}"
        elif m["last_error"]:
            state = f"{m['status']} after {m['attempts']} attempt(s): {m['last_error']}"
        click.echo(f"message {m['message_id']}: {state}")
        for n, entry in enumerate((m["contents"] or {}).get("papers", []), start=1):
            paper = papers.get(entry["id"])
            title = paper.title if paper else f"paper {entry['id']}"
            reasons = "; ".join(Reason.from_json(r) for r in entry.get("why", []))
            click.echo(f"  {n}. {title}  [{reasons}]")
    if considered:
        _echo_considered(considered, ranked[-1]["created_at"], show_all)


def _echo_considered(considered: list[pipeline.Considered], at: datetime, show_all: bool) -> None:
    shown = considered if show_all else considered[:CONSIDERED_SHOWN]
    click.echo(
        f"considered at {at:%H:%M}: {len(considered)} papers, "
        "ranked again now with the current preferences:"
    )
    for n, c in enumerate(shown, start=1):
        score = f"{c.score:.3f}" if c.score is not None else "    -"
        title = c.paper.title if len(c.paper.title) <= 60 else c.paper.title[:59] + "…"
        reasons = f"  [{'; '.join(c.why)}]" if c.why else ""
        click.echo(f"  {n:>3}. {score}  {c.outcome}: {title}{reasons}")
    if len(shown) < len(considered):
        click.echo(f"  ({len(considered) - len(shown)} more: digest why --all)")
