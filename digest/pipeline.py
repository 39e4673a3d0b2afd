"""One run of the service: fetch → store → index → rank → render → send → record.

The only place the parts meet. The CLI, and later the scheduler and the workers, call
`run_once`; it knows the stages, not formats or storage. The parts come in an `App`,
the clock as `now`. Ordering rules: a page's papers and its memo are stored together;
a paper's shared work (embeddings) is done and committed right after it is stored; a
paper is recorded as sent only after the mailer accepted the message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.message import EmailMessage

import jinja2

from digest.app import App
from digest.errors import ConfigError, SendError, SourceError
from digest.mailer import Mailer
from digest.models import Digest, Paper, RankedPaper, Subscriber, key_for_reference
from digest.rank import Ranker
from digest.render import render_message
from digest.sources import FetchContext, Source
from digest.store import Store

log = logging.getLogger(__name__)

# Called as work advances: (stage, done, total or None). Stages: "fetch", "index".
Progress = Callable[[str, int, "int | None"], None]
INDEX_BATCH = 64  # papers embedded and committed together: a kill loses at most one batch


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What one run does; the CLI's flags, the scheduler's job arguments."""

    list_date: date | None = None  # treat this list date as today (replay, backfill)
    only: tuple[str, ...] = ()  # these subscribers' emails; empty: everyone
    dry_run: bool = False  # rank and render, send and record nothing
    fetch: bool = True  # read the sources first


@dataclass(slots=True)
class SourceReport:
    """What one source did in this run."""

    name: str
    fetched: int = 0
    new: int = 0
    updated: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SubscriberReport:
    """What one subscriber got in this run."""

    email: str
    considered: int
    sent: int
    status: str  # "sent", "dry run", "nothing new", "no matching papers", "failed"
    where: str = ""
    error: str = ""


@dataclass(slots=True)
class RunReport:
    """Everything one run did, for the CLI to print and the scheduler to log."""

    sources: list[SourceReport] = field(default_factory=list)
    indexed: int = 0  # papers whose shared ranking work was done in this run
    digests: list[SubscriberReport] = field(default_factory=list)

    @property
    def send_failed(self) -> bool:
        return any(r.status == "failed" for r in self.digests)

    @property
    def every_source_failed(self) -> bool:
        return bool(self.sources) and all(r.failed and not r.fetched for r in self.sources)


def run_once(
    app: App, options: RunOptions, now: datetime, progress: Progress | None = None
) -> RunReport:
    """Fetch (unless told not to), then rank, render and send each subscriber's digest."""
    subscribers = select_subscribers(app, options.only)
    report = RunReport()
    if options.fetch:
        report.sources = fetch(app, options.list_date, now, progress)
        report.indexed = index_recent(app, now, progress)
    day = options.list_date or now.date()
    report.digests = asyncio.run(
        send_digests(
            app.store,
            app.ranker,
            app.mailer,
            app.templates,
            subscribers,
            sender=app.settings.from_address,
            now=now,
            day=day,
            new_subscriber_days=app.settings.new_subscriber_days,
            dry_run=options.dry_run,
        )
    )
    return report


def preview(
    app: App, email: str, options: RunOptions, now: datetime
) -> tuple[Digest, EmailMessage]:
    """The digest `email` would get next and its message; nothing is sent or recorded."""
    (subscriber,) = select_subscribers(app, (email,))
    if options.fetch:
        fetch(app, options.list_date, now)
        index_recent(app, now)
    (plan,) = plan_digests(
        app.store,
        app.ranker,
        [subscriber],
        now=now,
        day=options.list_date or now.date(),
        new_subscriber_days=app.settings.new_subscriber_days,
    )
    message = render_message(plan.digest, app.templates, sender=app.settings.from_address, now=now)
    return plan.digest, message


def select_subscribers(app: App, only: Sequence[str]) -> tuple[Subscriber, ...]:
    if only:
        return tuple(app.config.subscriber(email) for email in only)
    if not app.config.subscribers:
        raise ConfigError(
            f"{app.config.path}: no [[subscribers]]: add at least one (see digest.example.toml)"
        )
    return app.config.subscribers


def fetch(
    app: App, list_date: date | None, now: datetime, progress: Progress | None = None
) -> list[SourceReport]:
    """Read every source and merge what it found into the seen-set.

    `list_date` pins the list date (replays); otherwise each web source takes today in
    its own time zone from `now`.
    """

    def page_done(where: str, done: int, total: int | None) -> None:
        log.info("event=page_read where=%s done=%d total=%s", where, done, total)
        if progress is not None:
            progress("fetch", done, total)

    ctx = app.fetch_context(list_date or now.date(), None if list_date else now, page_done)
    return fetch_sources(app.sources, app.store, ctx, now)


def fetch_sources(
    sources: Sequence[Source], store: Store, ctx: FetchContext, now: datetime
) -> list[SourceReport]:
    """Each page is stored with its memo as soon as it is read, so a broken page or
    source loses nothing that came before it and never stops the others. A page with
    some unreadable items stores the rest and is reported as failed too.
    """
    reports = []
    for source in sources:
        report = SourceReport(source.name)
        try:
            for page in source.fetch(ctx):
                if page.papers or page.memo is not None:
                    result = store.ingest(page.papers, now, page.memo)
                    report.fetched += len(page.papers)
                    report.new += result.new
                    report.updated += result.updated
                if page.error is not None:
                    _source_failed(report, page.error)
        except SourceError as exc:
            _source_failed(report, exc)
        reports.append(report)
    return reports


def _source_failed(report: SourceReport, error: SourceError) -> None:
    # Reported to the user from the run report; logged for the record only.
    log.info("event=source_failed source=%s error=%s", report.name, error)
    report.failed += 1
    report.errors.append(str(error))


def index_recent(app: App, now: datetime, progress: Progress | None = None) -> int:
    """Do the ranker's per-paper work for every paper a digest may soon draw on.

    Papers first seen within `new_subscriber_days` are covered, so work lost to a kill
    is picked up by the next run. Committed in batches: a kill keeps what was done.
    """
    since = now - timedelta(days=app.settings.new_subscriber_days)
    papers = app.store.papers_seen_since(since)
    done = indexed = 0
    for start in range(0, len(papers), INDEX_BATCH):
        batch = papers[start : start + INDEX_BATCH]
        fresh = app.ranker.index(batch)
        done += len(batch)
        indexed += fresh
        if fresh:
            log.info("event=indexed papers=%d done=%d total=%d", fresh, done, len(papers))
        if progress is not None:
            progress("index", done, len(papers))
    return indexed


@dataclass(frozen=True, slots=True)
class DigestPlan:
    """One subscriber's next digest and what recording it will change."""

    digest: Digest
    paper_ids: tuple[int, ...]  # store row ids of the digest's papers
    seen_through: int  # the subscriber's progress once the digest is recorded


def plan_digests(
    store: Store,
    ranker: Ranker,
    subscribers: Sequence[Subscriber],
    *,
    now: datetime,
    day: date,
    new_subscriber_days: int,
) -> list[DigestPlan]:
    """Rank each subscriber's papers that no earlier digest considered."""
    emails = [s.email for s in subscribers]
    candidates = store.candidates(emails, now, new_subscriber_days)
    history = _history_for_likes(store, subscribers, candidates.papers)
    ranked = ranker.rank(
        candidates.papers, subscribers, history=history, eligible=candidates.eligible
    )
    plans = []
    for sub in subscribers:
        chosen: list[RankedPaper] = ranked.get(sub.email, [])
        considered = len(candidates.eligible.get(sub.email, ()))
        plans.append(
            DigestPlan(
                Digest(sub, tuple(chosen), day, considered=considered),
                tuple(candidates.ids[r.paper.key] for r in chosen),
                candidates.seen_through.get(sub.email, 0),
            )
        )
    return plans


def _history_for_likes(
    store: Store, subscribers: Sequence[Subscriber], papers: Sequence[Paper]
) -> list[Paper]:
    """Earlier papers that subscribers' `like` entries name (by arXiv id or title)."""
    present = {p.key for p in papers}
    wanted = {key_for_reference(like) for sub in subscribers for like in sub.like} - present
    return store.papers_by_key(sorted(wanted)) if wanted else []


async def send_digests(
    store: Store,
    ranker: Ranker,
    mailer: Mailer,
    env: jinja2.Environment,
    subscribers: Sequence[Subscriber],
    *,
    sender: str,
    now: datetime,
    day: date,
    new_subscriber_days: int,
    dry_run: bool = False,
) -> list[SubscriberReport]:
    """Rank, render and send each subscriber's digest; record what the mailer accepted."""
    plans = plan_digests(
        store, ranker, subscribers, now=now, day=day, new_subscriber_days=new_subscriber_days
    )
    reports = []
    for plan in plans:
        digest = plan.digest
        email, considered = digest.subscriber.email, digest.considered
        if not digest.papers:
            status = "nothing new" if considered == 0 else "no matching papers"
            log.info("event=nothing_to_send subscriber=%s considered=%d", email, considered)
            if not dry_run:
                store.mark_considered(email, plan.seen_through, now)
            reports.append(SubscriberReport(email, considered, 0, status))
            continue
        message = render_message(digest, env, sender=sender, now=now)
        if dry_run:
            reports.append(SubscriberReport(email, considered, len(digest.papers), "dry run"))
            continue
        reports.append(await _send_one(store, mailer, message, plan, now))
    return reports


async def _send_one(
    store: Store, mailer: Mailer, message: EmailMessage, plan: DigestPlan, now: datetime
) -> SubscriberReport:
    email, considered = plan.digest.subscriber.email, plan.digest.considered
    try:
        where = await mailer.send(message)
    except SendError as exc:
        # Nothing recorded: the same papers stay unsent and are tried again next run.
        log.warning("event=send_failed subscriber=%s error=%s", email, exc)
        return SubscriberReport(email, considered, 0, "failed", error=str(exc))
    store.record_delivery(
        email,
        plan.paper_ids,
        message_id=str(message["Message-ID"]),
        destination=where,
        seen_through=plan.seen_through,
        now=now,
    )
    n = len(plan.paper_ids)
    log.info("event=digest_sent subscriber=%s papers=%d where=%s", email, n, where)
    return SubscriberReport(email, considered, n, "sent", where=where)
