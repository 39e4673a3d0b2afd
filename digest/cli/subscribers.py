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
import re
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import tomlkit
from email_validator import EmailNotValidError, validate_email
from pydantic import ValidationError
from tomlkit.exceptions import TOMLKitError

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

CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Config file (default: $DIGEST_CONFIG, ./digest.toml, else the bundled example).",
)


# -- where things are in the file ---------------------------------------------------------

_HEADER = re.compile(r"^\s*\[(\[)?\s*([^\[\]#]+?)\s*\](\])?\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)\s*=""")


@dataclass(slots=True)
class _Table:
    """One `[name]` or `[[name]]` table of the file, by 0-based line numbers."""

    name: str
    array: bool
    header: int
    lead: int  # first line of the comment block right above the header (= header if none)
    # One past its last line: its last key (or value line), and the comments right after
    # it; comments after a blank line belong to what follows, not to this table.
    end: int = 0
    keys: dict[str, int] = field(default_factory=dict)


def _tables(lines: Sequence[str]) -> list[_Table]:
    """The tables of a TOML file, found by reading its lines (tomlkit keeps no line numbers).

    Lines inside multi-line arrays, inline tables and strings are skipped."""
    tables: list[_Table] = []
    depth, quote, gap = 0, "", False
    for number, line in enumerate(lines):
        inside = bool(depth or quote)
        stripped = line.strip()
        if not inside:
            header = _HEADER.match(line)
            if header and bool(header.group(1)) == bool(header.group(3)):
                lead = number
                floor = tables[-1].header + 1 if tables else 0
                while lead > floor and lines[lead - 1].lstrip().startswith("#"):
                    lead -= 1
                if tables:
                    tables[-1].end = min(tables[-1].end, lead)
                name = header.group(2).strip().strip("\"'")
                tables.append(_Table(name, bool(header.group(1)), number, lead, number + 1))
                gap = False
                continue
            key = _KEY.match(line)
            if key and tables:
                tables[-1].keys.setdefault(key.group(1).strip("\"'"), number)
        if tables:
            if not stripped and not inside:
                gap = True
            elif inside or not stripped.startswith("#") or not gap:
                tables[-1].end, gap = number + 1, False
        depth, quote = _advance(line, depth, quote)
    return tables


def _advance(line: str, depth: int, quote: str) -> tuple[int, str]:
    """Bracket depth and open multi-line string after `line`."""
    i = 0
    while i < len(line):
        if quote:
            if line.startswith(quote, i):
                i, quote = i + len(quote), ""
                continue
            i += 2 if quote in ('"', '"""') and line[i] == "\\" else 1
            continue
        char = line[i]
        if char == "#":
            break
        for opener in ('"""', "'''", '"', "'"):
            if line.startswith(opener, i):
                quote, i = opener, i + len(opener)
                break
        else:
            depth += char in "[{"
            depth -= char in "]}"
            i += 1
    if quote in ('"', "'"):
        quote = ""  # a one-line string cannot span lines
    return max(depth, 0), quote


# -- checking ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Problem:
    line: int | None  # 1-based
    text: str

    def render(self, path: Path) -> str:
        return f"{path}:{self.line}: {self.text}" if self.line else f"{path}: {self.text}"


@dataclass(slots=True)
class _Checked:
    problems: list[_Problem]
    subscribers: list[dict[str, Any]]  # the tables as written
    lines: dict[str, int]  # casefolded email -> 1-based line of its table's header


def _check(text: str) -> _Checked:
    """Every subscriber table's first problem (unknown key, bad value, duplicate), with its
    line; the file is otherwise read by `load_config`, as every command does."""
    try:
        raw = tomlkit.parse(text).unwrap()
    except TOMLKitError as exc:
        return _Checked([_Problem(getattr(exc, "line", None), f"not valid TOML: {exc}")], [], {})
    tables = raw.get("subscribers", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        return _Checked([_Problem(None, "subscribers: expected [[subscribers]] tables")], [], {})
    spans = [t for t in _tables(text.splitlines()) if t.name == "subscribers" and t.array]
    if len(spans) != len(tables):
        spans = []  # not written as [[subscribers]] tables: no line numbers
    checked = _Checked([], list(tables), {})
    first: dict[str, tuple[int, int | None]] = {}
    for index, table in enumerate(tables, start=1):
        span = spans[index - 1] if spans else None
        label = f"subscribers[{index}]"
        if isinstance(table.get("email"), str):
            label += f" ({table['email']})"
        try:
            model = _SubscriberModel.model_validate(table)
        except ValidationError as exc:
            loc = exc.errors()[0]["loc"]
            key = str(loc[0]) if loc else ""
            line = span.keys.get(key, span.header) if span else None
            checked.problems.append(_Problem(_one_based(line), f"{label}: {_describe(exc)}"))
            continue
        email_line = _one_based(span.keys.get("email", span.header)) if span else None
        folded = model.email.casefold()
        if folded in first:
            other, other_line = first[folded]
            where = f"subscribers[{other}]" + (f", line {other_line}" if other_line else "")
            checked.problems.append(
                _Problem(email_line, f"{label}: duplicate subscriber {model.email} (also {where})")
            )
            continue
        first[folded] = (index, email_line)
        checked.lines[folded] = span.header + 1 if span else 0
    return checked


def _one_based(line: int | None) -> int | None:
    return None if line is None else line + 1


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


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text: {exc}") from None


def _refuse_problems(path: Path, checked: _Checked, doing: str) -> None:
    if checked.problems:
        first = checked.problems[0].render(path)
        more = len(checked.problems) - 1
        raise ConfigError(
            f"{first}" + (f" (and {more} more)" if more else "") + f"; fix it before {doing}"
        )


def _replace(path: Path, text: str, expect: Callable[[dict[str, Any]], bool]) -> None:
    """Write `text` over `path` atomically, once it parses as a valid config and `expect`
    holds for what it holds."""
    if not expect(tomllib.loads(text)):
        raise ConfigError(f"{path}: the edit could not be made safely; the file is unchanged")
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        try:
            load_config(Path(temp))
        except ConfigError as exc:
            raise ConfigError(str(exc).replace(temp, str(path))) from None
        os.chmod(temp, path.stat().st_mode & 0o7777)
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


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
    checked = _check(_read(path))
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
    text = _read(path)
    checked = _check(text)
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
    new_text, line = _with_table(text, values)
    _replace(path, new_text, lambda raw: raw.get("subscribers") == [*checked.subscribers, values])
    click.echo(f"{path}:{line}: added {address}")
    _note_suppressed(settings, address)


@subscribers.command("remove")
@click.argument("email")
@CONFIG_OPTION
def remove_command(email: str, config_path: Path | None) -> None:
    """Remove EMAIL's table from the config file; the rest of the file stays as it is."""
    settings = load_settings()
    path = _config_file(config_path, settings, editing=True)
    text = _read(path)
    checked = _check(text)
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
    lines = text.splitlines(keepends=True)
    spans = [t for t in _tables(lines) if t.name == "subscribers" and t.array]
    if len(spans) != len(checked.subscribers):
        raise ConfigError(f"{path}: subscribers must be [[subscribers]] tables to be removed")
    table, span = checked.subscribers[index], spans[index]
    start = span.lead if _names(lines[span.lead : span.header], table) else span.header
    kept = lines[:start] + lines[span.end :]
    # A comment block kept right above the removed table now heads the next one.
    attached = start == span.header and start > 0 and bool(lines[start - 1].strip())
    new_text = _tidy(kept, start, attached)
    remaining = checked.subscribers[:index] + checked.subscribers[index + 1 :]
    _replace(path, new_text, lambda raw: raw.get("subscribers", []) == remaining)
    click.echo(f"{path}:{start + 1}: removed {table['email']} (lines {start + 1}-{span.end})")
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


def _names(comment_lines: Sequence[str], table: dict[str, Any]) -> bool:
    """Whether a comment block speaks of this subscriber (their address, name or local part)."""
    text = "".join(comment_lines).casefold()
    email = str(table.get("email", "")).casefold()
    words = [email, email.partition("@")[0], str(table.get("name", "")).casefold()]
    return any(len(w) > 1 and re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text) for w in words)


def _tidy(lines: list[str], joint: int, attached: bool) -> str:
    """The lines joined, with no run of blank lines left where a table was cut out (none
    at all when the text before the cut was attached to that table)."""
    before = joint
    while before > 0 and not lines[before - 1].strip() and not attached:
        before -= 1
    after = joint
    while after < len(lines) and not lines[after].strip():
        after += 1
    gap = ["\n"] if before > 0 and after < len(lines) and not attached else []
    return "".join(lines[:before] + gap + lines[after:])


def _with_table(text: str, values: dict[str, Any]) -> tuple[str, int]:
    """`text` with a [[subscribers]] table of `values` after the last one (else at the end),
    and the 1-based line of its header."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    spans = [t for t in _tables(lines) if t.name == "subscribers" and t.array]
    at = spans[-1].end if spans else len(lines)
    while at > 0 and not lines[at - 1].strip():
        at -= 1  # before the blank lines that end the last table
    table = tomlkit.table()
    for key, value in values.items():
        table.add(key, value)
    document = tomlkit.document()
    aot = tomlkit.aot()
    aot.append(table)
    document.append("subscribers", aot)
    block = tomlkit.dumps(document).strip("\n").splitlines(keepends=False)
    new = [*(["\n"] if at > 0 else []), *(line + "\n" for line in block)]
    follow = lines[at:]
    if follow and follow[0].strip():
        new.append("\n")
    return "".join(lines[:at] + new + follow), at + (2 if at > 0 else 1)


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
