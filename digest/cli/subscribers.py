"""digest subscribers list|validate|add|remove|enable, digest bounces, digest unsubscribe-mail.

Sign-up stays in the config file, and these commands edit and check it in place, keeping
its comments and layout: `add` writes a new `[[subscribers]]` table after the last one,
`remove` takes out the table's own lines (and the comment block right above it when that
names the person). Every edit is parsed again and compared with what was meant before the
file is replaced (atomically). What subscribers change themselves lives in the database:
an unsubscribed or bouncing address is not mailed, whatever the file says, until
`digest subscribers enable EMAIL`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from email_validator import EmailNotValidError, validate_email
from pydantic import ValidationError

from digest.cli import config_file
from digest.cli.commands import CONFIG_OPTION
from digest.cli.output import print_table
from digest.cli.serve import load_tokens
from digest.config import (
    Config,
    Settings,
    _describe,
    _SubscriberModel,
    find_config,
    load_config,
    load_settings,
)
from digest.errors import ConfigError, InputError
from digest.inbound import parse_dsn, parse_request
from digest.sources import build_source
from digest.store import Bounce, Store


def _config_file(config_path: Path | None, settings: Settings, *, editing: bool) -> Path:
    path, is_example = find_config(config_path, settings)
    if editing and is_example:
        raise ConfigError(
            f"{path}: this is the bundled example, not your config: copy it to digest.toml "
            "(or point DIGEST_CONFIG at yours) and edit that"
        )
    return path


def _load(config_path: Path | None, settings: Settings) -> Config:
    path, is_example = find_config(config_path, settings)
    return load_config(path, is_example=is_example)


def _refuse_problems(path: Path, checked: config_file.Checked, doing: str) -> None:
    if checked.problems:
        first = checked.problems[0].render(path)
        more = len(checked.problems) - 1
        raise ConfigError(
            f"{first}" + (f" (and {more} more)" if more else "") + f"; fix it before {doing}"
        )


def _normalised(email: str) -> str:
    try:
        return validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InputError(f"{email!r} is not an email address: {exc}") from None


# -- the commands ----------------------------------------------------------------------------


@click.group("subscribers")
def subscribers() -> None:
    """List, check and edit the subscribers of the config file."""


@subscribers.command("validate")
@CONFIG_OPTION
def validate_command(config_path: Path | None) -> None:
    """Check the config file: every problem with its line number; exit 2 if any."""
    settings = load_settings()
    path = _config_file(config_path, settings, editing=False)
    checked = config_file.check(config_file.read(path))
    for problem in checked.problems:
        click.echo(problem.render(path), err=True)
    if checked.problems:
        raise click.exceptions.Exit(2)
    config = load_config(path)
    for index, spec in enumerate(config.sources, start=1):
        build_source(spec, config_dir=config.directory, where=f"{path}: sources[{index}]")
    click.echo(
        f"{path}: {_count(len(config.subscribers), 'subscriber')}, "
        f"{_count(len(config.sources), 'source')}: valid"
    )


@subscribers.command("list")
@CONFIG_OPTION
def list_command(config_path: Path | None) -> None:
    """The subscribers of the config file, and who is not mailed (unsubscribed, bouncing)."""
    settings = load_settings()
    config = _load(config_path, settings)
    store = Store.open(settings.database_url)
    try:
        suppressed = store.suppressed([s.email for s in config.subscribers])
    finally:
        store.close()
    print_table(
        ["subscriber", "name", "topics", "state"],
        [
            [
                s.email,
                s.name,
                str(len(s.topics)),
                f"not mailed: {suppressed[s.email]}" if s.email in suppressed else "active",
            ]
            for s in config.subscribers
        ],
    )


@subscribers.command("add")
@click.argument("email")
@click.option("--name", default="", help="Their name (greeting and To: header).")
@click.option("--topic", "topics", multiple=True, help="A topic phrase; repeat for more.")
@click.option("--like", "likes", multiple=True, help="An arXiv id or title they liked.")
@click.option("--exclude", "excludes", multiple=True, help="A phrase that disqualifies a paper.")
@click.option("--author", "authors", multiple=True, help="A followed author.")
@click.option("--category", "categories", multiple=True, help="An arXiv category, or huggingface.")
@click.option("--max-papers", type=int, default=None, help="At most this many papers a digest.")
@click.option("--timezone", default=None, help="Their IANA time zone, e.g. Europe/Paris.")
@click.option("--send-at", default=None, help="Local time of their digest, HH:MM.")
@click.option("--frequency", type=click.Choice(["daily", "weekdays", "weekly"]), default=None)
@CONFIG_OPTION
def add_command(
    email: str,
    name: str,
    topics: tuple[str, ...],
    likes: tuple[str, ...],
    excludes: tuple[str, ...],
    authors: tuple[str, ...],
    categories: tuple[str, ...],
    max_papers: int | None,
    timezone: str | None,
    send_at: str | None,
    frequency: str | None,
    config_path: Path | None,
) -> None:
    """Add EMAIL to the config file, after the last subscriber; comments stay as they are."""
    settings = load_settings()
    path = _config_file(config_path, settings, editing=True)
    text = config_file.read(path)
    checked = config_file.check(text)
    _refuse_problems(path, checked, "adding a subscriber")
    address = _normalised(email)
    if address.casefold() in checked.lines:
        line = checked.lines[address.casefold()]
        where = f"{path}:{line}" if line else str(path)
        raise ConfigError(f"{where}: {address} is already a subscriber")
    values: dict[str, Any] = {"email": address}
    optional: dict[str, Any] = {
        "name": name,
        "topics": list(topics),
        "like": list(likes),
        "exclude": list(excludes),
        "authors": list(authors),
        "categories": list(categories),
        "max_papers": max_papers,
        "timezone": timezone,
        "send_at": send_at,
        "frequency": frequency,
    }
    values.update({k: v for k, v in optional.items() if v not in (None, "", [])})
    try:
        _SubscriberModel.model_validate(values)
    except ValidationError as exc:
        raise InputError(f"{address}: {_describe(exc)}") from None
    new_text, line = config_file.with_table(text, values)
    config_file.replace(
        path, new_text, lambda raw: raw.get("subscribers") == [*checked.subscribers, values]
    )
    click.echo(f"{path}:{line}: added {address}")
    _note_suppressed(settings, address)


@subscribers.command("remove")
@click.argument("email")
@CONFIG_OPTION
def remove_command(email: str, config_path: Path | None) -> None:
    """Remove EMAIL's table from the config file; the rest of the file stays as it is."""
    settings = load_settings()
    path = _config_file(config_path, settings, editing=True)
    text = config_file.read(path)
    checked = config_file.check(text)
    _refuse_problems(path, checked, "removing a subscriber")
    wanted = email.strip().casefold()
    index = next(
        (
            i
            for i, t in enumerate(checked.subscribers)
            if str(t.get("email", "")).casefold() == wanted
            or _normalised_or_none(str(t.get("email", ""))) == wanted
        ),
        None,
    )
    if index is None:
        raise ConfigError(f"{path}: no subscriber {email!r}")
    try:
        new_text, first, last = config_file.without_table(text, index, checked.subscribers)
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    table = checked.subscribers[index]
    remaining = checked.subscribers[:index] + checked.subscribers[index + 1 :]
    config_file.replace(path, new_text, lambda raw: raw.get("subscribers", []) == remaining)
    click.echo(f"{path}:{first}: removed {table['email']} (lines {first}-{last})")
    click.echo(
        "Their history stays in the database: added again, they are never sent a paper twice."
    )


@subscribers.command("enable")
@click.argument("email")
@CONFIG_OPTION
def enable_command(email: str, config_path: Path | None) -> None:
    """Mail EMAIL again after an unsubscribe or bounces (they must be in the config file)."""
    settings = load_settings()
    config = _load(config_path, settings)
    known = _subscriber(config, email)
    address = known or email.strip()
    store = Store.open(settings.database_url)
    try:
        reasons = store.enable(address)
    finally:
        store.close()
    if reasons:
        click.echo(f"{address}: enabled (was {'; '.join(reasons)})")
    else:
        click.echo(f"{address}: was not suppressed; bounce counts reset")
    if known is None:
        click.echo(
            f"note: {address} is not in {config.path}: add it with "
            f"`digest subscribers add {address}` to send it digests",
            err=True,
        )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _normalised_or_none(email: str) -> str | None:
    try:
        return validate_email(email, check_deliverability=False).normalized.casefold()
    except EmailNotValidError:
        return None


def _subscriber(config: Config, email: str) -> str | None:
    """The address as the config file spells it, or None if it is not a subscriber."""
    wanted = email.strip().casefold()
    return next((s.email for s in config.subscribers if s.email.casefold() == wanted), None)


def _note_suppressed(settings: Settings, address: str) -> None:
    store = Store.open(settings.database_url)
    try:
        reason = store.suppressed([address]).get(address)
    finally:
        store.close()
    if reason:
        click.echo(
            f"note: {address} is not mailed ({reason}) until `digest subscribers enable {address}`",
            err=True,
        )


# -- mail that comes back ------------------------------------------------------------------

Done = Callable[[], None]


def _messages(source: str | None) -> Iterator[tuple[str, bytes, Done]]:
    """(name, bytes, mark-as-read) of each message: stdin (None or "-"), one file, or the
    new messages of a Maildir (each moved to cur/ and marked seen once handled)."""
    if source in (None, "-"):
        yield "stdin", sys.stdin.buffer.read(), lambda: None
        return
    path = Path(str(source))
    if path.is_file():
        yield path.name, path.read_bytes(), lambda: None
        return
    if (path / "new").is_dir() and (path / "cur").is_dir():
        for item in sorted((path / "new").iterdir()):
            if item.name.startswith(".") or not item.is_file():
                continue
            target = path / "cur" / f"{item.name}:2,S"
            yield item.name, item.read_bytes(), lambda i=item, t=target: os.replace(i, t)  # type: ignore[misc]
        return
    raise InputError(f"{source}: no such file or Maildir (a folder with cur/ and new/)")


@click.command("bounces")
@click.argument("source", required=False)
@CONFIG_OPTION
def bounces(source: str | None, config_path: Path | None) -> None:
    """Read delivery-status notifications (SOURCE: a file, a Maildir, or stdin) and stop
    mailing addresses after DIGEST_BOUNCE_LIMIT hard bounces."""
    settings = load_settings()
    config = _load(config_path, settings)
    now = datetime.now(UTC)
    rows: list[list[str]] = []
    store = Store.open(settings.database_url)
    try:
        for name, data, done in _messages(source):
            report = parse_dsn(data)
            if report is None:
                rows.append([name, "", "", "skipped: not a delivery-status notification"])
                done()
                continue
            owner = (
                store.message_recipient(report.original_message_id)
                if report.original_message_id
                else None
            )
            bounced = [r for r in report.recipients if r.bounced]
            for r in bounced:
                # Ours by Message-ID first: a forward makes the final recipient another address.
                candidates = [owner] if owner and len(bounced) == 1 else []
                candidates += [r.original, r.final]
                email = next((e for c in candidates if c and (e := _subscriber(config, c))), None)
                email = email or (owner if owner and len(bounced) == 1 else None)
                kind = "hard" if r.hard else "soft"
                if email is None:
                    rows.append([r.final, r.status, kind, "ignored: not a subscriber"])
                    continue
                outcome = store.record_bounce(
                    Bounce(email, report.report_id, r.status, r.hard, r.diagnostic),
                    now,
                    settings.bounce_limit,
                )
                rows.append([email, r.status, kind, _bounce_result(outcome, r.hard, settings)])
            if not bounced:
                rows.append([name, "", "", "skipped: reports no failure"])
            done()
    finally:
        store.close()
    print_table(["recipient", "status", "bounce", "result"], rows)


def _bounce_result(outcome: Any, hard: bool, settings: Settings) -> str:
    if not outcome.counted:
        return "read before: not counted again"
    if outcome.suppressed:
        return f"suppressed after {_count(outcome.hard_bounces, 'hard bounce')}"
    if not hard:
        return "recorded; soft bounces are not counted"
    limit = settings.bounce_limit
    return f"counted: {outcome.hard_bounces} of {limit}" if limit else "counted (no limit set)"


@click.command("unsubscribe-mail")
@click.argument("source", required=False)
@CONFIG_OPTION
def unsubscribe_mail(source: str | None, config_path: Path | None) -> None:
    """Apply unsubscribe requests sent to the List-Unsubscribe mailto address (SOURCE: a
    file, a Maildir, or stdin); the sender must be the subscriber."""
    settings = load_settings()
    config = _load(config_path, settings)
    tokens = load_tokens(settings, "unsubscribe-mail") if settings.secret_key else None
    now = datetime.now(UTC)
    rows: list[list[str]] = []
    store = Store.open(settings.database_url)
    try:
        for name, data, done in _messages(source):
            request = parse_request(data)
            sender = request.sender or "?"
            if request.automatic:
                result = f"ignored: automatic ({request.automatic})"
            elif not request.asks:
                result = "ignored: does not ask to unsubscribe"
            elif not request.sender:
                result = "refused: not from exactly one address"
            else:
                token = (
                    tokens.find(request.text, "unsubscribe", today=now.date()) if tokens else None
                )
                if token is not None and token.email.casefold() != request.sender.casefold():
                    result = f"refused: the request's link is for another address than {sender}"
                else:
                    email = token.email if token else _subscriber(config, request.sender)
                    if email is None:
                        result = "ignored: not a subscriber"
                    else:
                        fresh = store.unsubscribe(email, "by mail", now)
                        result = "unsubscribed" if fresh else "unsubscribed already"
                        sender = email
            rows.append([name, sender, result])
            done()
    finally:
        store.close()
    print_table(["message", "sender", "result"], rows)


def add_subscriber_commands(group: click.Group) -> None:
    """Register `subscribers`, `bounces` and `unsubscribe-mail` on the `digest` command."""
    for command in (subscribers, bounces, unsubscribe_mail):
        group.add_command(command)
