"""One run of the service: fetch → store → index → rank → plan → deliver.

The only place the parts meet. The CLI, and later the scheduler and the workers, call
`run_once` (or `plan` and `deliver`); it knows the stages, not formats or storage. The
parts come in an `App`, the clock as `now`. Ordering rules: a page's papers and its memo
are stored together; a paper's shared work (embeddings) is done and committed right
after it is stored; a digest is planned (message, reserved papers, progress) in one
transaction before anything is sent; a message is marked sent only after the mail
server accepted it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

from digest import delivery
from digest.app import App
from digest.compose import Composer, sender_domain
from digest.config import Settings, parse_clock
from digest.delivery import Clock, Delivered, DeliveryOptions, DeliveryReport
from digest.errors import ConfigError, SourceError
from digest.models import (
    Digest,
    Feedback,
    Paper,
    RankedPaper,
    Reason,
    Subscriber,
    key_for_reference,
)
from digest.rank.filters import filter_by_categories, matched_category
from digest.render import render_message
from digest.schedule import Schedule, decide
from digest.sources import FetchContext, Source
from digest.store import PlannedDigest, Store

log = logging.getLogger(__name__)

# Called as work advances: (stage, done, total or None). Stages: "fetch", "index".
Progress = Callable[[str, int, "int | None"], None]
INDEX_BATCH = 64  # papers embedded and committed together: a kill loses at most one batch


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What one run does; the CLI's flags, the scheduler's job arguments."""

    list_date: date | None = None  # treat this list date as today (replay, backfill)
    force: bool = False  # send to every selected subscriber, whatever their schedule
    # Catch-up: a slot missed by more than this is skipped (the daemon); None sends the
    # current period whenever the run happens (send-now from cron or by hand).
    grace: timedelta | None = None
    kind: str = "send-now"  # how the run is logged: send-now, scheduled
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
    sent: int  # papers in the digest
    status: str  # sent, retry, failed, dry run, nothing new, no matching papers, suppressed, ...
    where: str = ""
    error: str = ""


@dataclass(slots=True)
class RunReport:
    """Everything one run did, for the CLI to print and the scheduler to log."""

    sources: list[SourceReport] = field(default_factory=list)
    indexed: int = 0  # papers whose shared ranking work was done in this run
    digests: list[SubscriberReport] = field(default_factory=list)
    storm: str | None = None  # delivery paused: many temporary failures in a row
    stopped: bool = False  # a signal stopped delivery early; the rest is still in the outbox

    @property
    def send_failed(self) -> bool:
        return self.storm is not None or any(r.status in ("failed", "retry") for r in self.digests)

    @property
    def every_source_failed(self) -> bool:
        return bool(self.sources) and all(r.failed and not r.fetched for r in self.sources)


def run_once(
    app: App,
    options: RunOptions,
    now: datetime,
    progress: Progress | None = None,
    halt: threading.Event | None = None,
    clock: Clock | None = None,
) -> RunReport:
    """Fetch (unless told not to), plan every subscriber's digest, then deliver the outbox.

    `now` is the run's time (list dates, plans); `clock` tells delivery the time as it
    goes (retries, leases), and defaults to a clock that stays at `now`.
    """
    clock = clock or (lambda: now)
    subscribers = select_subscribers(app, options.only)
    report = RunReport()
    if options.fetch:
        report.sources = fetch(app, options.list_date, now, progress)
        report.indexed = index_recent(app, now, progress)
    due, waiting = due_now(app, subscribers, now, options)
    if not due and options.kind != "send-now":
        # Nobody is due: only deliver what the outbox holds (retries, a stopped run's rest).
        waiting_mail = app.store.next_due()
        if waiting_mail is None or waiting_mail > now:
            report.digests = waiting
            return report
    run_id = None if options.dry_run else app.store.start_run(options.kind, now)
    planned = plan(app, due, now=now, dry_run=options.dry_run, run_id=run_id)
    if options.dry_run:
        report.digests = waiting + planned
        return report
    delivered = asyncio.run(deliver(app, clock, halt=halt))
    report.digests = waiting + merge_reports(planned, delivered)
    report.storm, report.stopped = delivered.storm, delivered.stopped
    assert run_id is not None
    app.store.finish_run(run_id, clock(), run_counts(report), run_errors(report))
    return report


def preview(
    app: App, email: str, options: RunOptions, now: datetime
) -> tuple[Digest, EmailMessage]:
    """The digest `email` would get next and its message; nothing is sent or recorded."""
    (subscriber,) = select_subscribers(app, (email,))
    if options.fetch:
        fetch(app, options.list_date, now)
        index_recent(app, now)
    due, _ = due_now(app, [subscriber], now, replace(options, force=True))
    digest = rank_digests(app, due, now=now)[0][0]
    message = render_message(digest, app.templates, sender=app.settings.from_address, now=now)
    return digest, message


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
    reports = fetch_sources(app.sources, app.store, ctx, now)
    app.store.record_fetches([(r.name, r.fetched, r.new, r.failed, r.errors) for r in reports], now)
    return reports


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
class Due:
    """A subscriber whose digest is to be planned now, and for which slot and period."""

    subscriber: Subscriber
    day: date  # the issue date
    slot: datetime | None = None  # None: forced, outside the schedule
    period_start: date | None = None


def schedule_for(subscriber: Subscriber, settings: Settings) -> Schedule:
    return Schedule(
        ZoneInfo(subscriber.timezone or settings.timezone),
        parse_clock(subscriber.send_at or settings.send_at),
        subscriber.frequency,  # type: ignore[arg-type]
        subscriber.weekday,
    )


def due_now(
    app: App, subscribers: Sequence[Subscriber], now: datetime, options: RunOptions
) -> tuple[list[Due], list[SubscriberReport]]:
    """Which subscribers' digests are due now; slots missed beyond the grace are recorded
    as skipped. Returns (due, reports for the others)."""
    last = app.store.last_slots([s.email for s in subscribers])
    due: list[Due] = []
    others: list[SubscriberReport] = []
    for sub in subscribers:
        schedule = schedule_for(sub, app.settings)
        previous, last_planned = last.get(sub.email, (None, None))
        # The period starts the day after the last planned digest (skipped slots roll over).
        start = None
        if last_planned is not None:
            start = last_planned.astimezone(schedule.zone).date() + timedelta(days=1)
        if options.force:
            day = options.list_date or now.astimezone(schedule.zone).date()
            due.append(Due(sub, day, None, start))
            continue
        decision = decide(schedule, previous, now, options.grace)
        if decision.action == "send" and decision.slot is not None:
            day = options.list_date or decision.slot.astimezone(schedule.zone).date()
            due.append(Due(sub, day, decision.slot, start))
            continue
        upcoming = f"{decision.next_slot.astimezone(schedule.zone):%a %d %b %H:%M %Z}"
        if decision.action == "skip" and decision.slot is not None:
            day = decision.slot.astimezone(schedule.zone).date()
            app.store.skip_slot(
                sub.email,
                decision.slot,
                day,
                decision.reason,
                now,
                app.settings.new_subscriber_days,
            )
            log.info("event=slot_skipped subscriber=%s reason=%s", sub.email, decision.reason)
            others.append(
                SubscriberReport(
                    sub.email, 0, 0, "skipped", error=f"{decision.reason}; next {upcoming}"
                )
            )
        else:
            others.append(SubscriberReport(sub.email, 0, 0, "not due", error=f"next {upcoming}"))
    return due, others


def rank_digests(
    app: App, due: Sequence[Due], *, now: datetime
) -> list[tuple[Digest, PlannedDigest]]:
    """Rank each due subscriber's papers that no earlier digest considered."""
    store = app.store
    subscribers = [d.subscriber for d in due]
    emails = [s.email for s in subscribers]
    candidates = store.candidates(emails, now, app.settings.new_subscriber_days)
    candidates.eligible = filter_by_categories(subscribers, candidates.papers, candidates.eligible)
    history, feedback = _signals(store, subscribers, candidates.papers)
    ranked = app.ranker.rank(
        candidates.papers,
        subscribers,
        history=history,
        eligible=candidates.eligible,
        feedback=feedback,
    )
    result = []
    for entry in due:
        sub, day = entry.subscriber, entry.day
        chosen: list[RankedPaper] = ranked.get(sub.email, [])
        eligible = candidates.eligible.get(sub.email, set())
        considered = len(eligible)
        fallback = not chosen and sub.when_empty == "trending"
        if fallback:
            chosen = trending(candidates.papers, eligible)
        if sub.categories:
            chosen = [_with_category(r, sub.categories) for r in chosen]
        contents: dict[str, object] = {
            "considered": considered,
            "period_start": entry.period_start.isoformat() if entry.period_start else None,
            "trending": fallback,
            "papers": [
                {
                    "id": candidates.ids[r.paper.key],
                    "score": round(r.score, 6),
                    "why": [w.to_json() for w in r.why],
                }
                for r in chosen
            ],
        }
        planned = PlannedDigest(
            subscriber=sub.email,
            issue_date=day,
            paper_ids=tuple(candidates.ids[r.paper.key] for r in chosen),
            contents=contents,
            seen_through=candidates.seen_through.get(sub.email, 0),
            plan_version=candidates.versions.get(sub.email, 0),
            slot=entry.slot,
            seen_from=candidates.seen_from.get(sub.email),
        )
        digest = Digest(
            sub,
            tuple(chosen),
            day,
            considered=considered,
            period_start=entry.period_start,
            trending=fallback,
        )
        result.append((digest, planned))
    return result


def _with_category(ranked: RankedPaper, wanted: Sequence[str]) -> RankedPaper:
    """The why-line also names the arXiv category the subscriber follows it for."""
    category = matched_category(ranked.paper, wanted)
    if category is None:
        return ranked
    return replace(ranked, why=(*ranked.why, Reason("category", category)))


def trending(papers: Sequence[Paper], eligible: set[str], limit: int = 3) -> list[RankedPaper]:
    """Nothing matched: the most upvoted of the papers this subscriber has not seen."""
    pool = [p for p in papers if p.key in eligible and p.upvotes]
    pool.sort(key=lambda p: (-(p.upvotes or 0), p.key))
    return [RankedPaper(p, 0.0, (Reason("upvotes", str(p.upvotes)),)) for p in pool[:limit]]


def plan(
    app: App,
    due: Sequence[Due],
    *,
    now: datetime,
    dry_run: bool = False,
    run_id: int | None = None,
) -> list[SubscriberReport]:
    """Rank and plan each subscriber's digest into the outbox (unless `dry_run`).

    Suppressed addresses are skipped. Of two runs planning the same subscriber at once,
    one plans and the other reports "planned by another run".
    """
    suppressed = app.store.suppressed([d.subscriber.email for d in due])
    active = [d for d in due if d.subscriber.email not in suppressed]
    reports = [
        SubscriberReport(email, 0, 0, "suppressed", error=reason)
        for email, reason in suppressed.items()
    ]
    ranked = rank_digests(app, active, now=now) if active else []
    if not dry_run:
        domain = sender_domain(app.settings.from_address)
        outcome = app.store.plan([p for _, p in ranked], now=now, domain=domain, run_id=run_id)
        lost = set(outcome.lost)
    for digest, _ in ranked:
        email, considered, n = digest.subscriber.email, digest.considered, len(digest.papers)
        if not dry_run and email in lost:
            status = "planned by another run"
        elif not n:
            status = "nothing new" if considered == 0 else "no matching papers"
        else:
            status = "dry run" if dry_run else "planned"
        log.info("event=planned subscriber=%s papers=%d status=%s", email, n, status)
        reports.append(SubscriberReport(email, considered, n, status))
    return reports


async def deliver(
    app: App, clock: Clock, *, once: bool = True, halt: threading.Event | None = None
) -> DeliveryReport:
    """Deliver due messages from the outbox with this app's mailer and settings."""
    settings = app.settings
    composer = Composer(
        app.templates,
        settings.from_address,
        {s.email: s for s in app.config.subscribers},
        app.store.papers_by_id,
        unsubscribe_mailto=settings.unsubscribe_mailto,
        public_url=settings.public_url,
        secret_key=settings.secret_key,
    )
    options = DeliveryOptions(
        worker=f"{socket.gethostname()}:{os.getpid()}",
        batch_size=settings.delivery_batch,
        lease=timedelta(seconds=settings.delivery_lease),
        max_attempts=settings.max_attempts,
        retry_delay=timedelta(seconds=settings.retry_delay),
        storm_limit=settings.storm_limit,
        suppress_after=settings.suppress_after,
        once=once,
    )
    stop = asyncio.Event()
    watcher = asyncio.create_task(_watch(halt, stop)) if halt is not None else None
    try:
        with _stop_on_signals(stop):
            return await delivery.deliver(
                app.store, app.mailer, composer.compose_many, options, clock=clock, stop=stop
            )
    finally:
        if watcher is not None:
            watcher.cancel()


async def _watch(halt: threading.Event, stop: asyncio.Event) -> None:
    """Carry a stop request from another thread (the daemon's signal handler) into the loop."""
    while not halt.is_set():
        await asyncio.sleep(0.1)
    stop.set()


@contextmanager
def _stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """SIGTERM and SIGINT finish the messages in flight, then stop (main thread only)."""
    loop = asyncio.get_running_loop()
    installed = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def merge_reports(
    planned: list[SubscriberReport], delivered: DeliveryReport
) -> list[SubscriberReport]:
    """Plans and what delivery did with them (and with earlier runs' retries)."""
    last: dict[str, Delivered] = {}
    for result in delivered.results:
        last[result.subscriber] = result
    merged = []
    for report in planned:
        done = last.pop(report.email, None)
        if done is None:
            merged.append(report)
            continue
        merged.append(_with_outcome(report, done))
    for email, done in last.items():  # earlier runs' messages delivered now
        merged.append(_with_outcome(SubscriberReport(email, 0, 0, "earlier digest"), done))
    return merged


def _with_outcome(report: SubscriberReport, done: Delivered) -> SubscriberReport:
    if done.outcome == "sent":
        return replace(report, status="sent", where=done.detail)
    if done.outcome == "retry":
        when = f"{done.next_attempt_at:%Y-%m-%d %H:%M}" if done.next_attempt_at else "later"
        return replace(report, status="retry", error=f"{done.detail} (retry at {when})")
    return replace(report, status="failed", error=done.detail)


def run_counts(report: RunReport) -> dict[str, int]:
    statuses = [r.status for r in report.digests]
    return {
        "planned": sum(
            1 for r in report.digests if r.sent and r.status != "planned by another run"
        ),
        "sent": statuses.count("sent"),
        "retrying": statuses.count("retry"),
        "failed": statuses.count("failed"),
        "suppressed": statuses.count("suppressed"),
    }


def run_errors(report: RunReport) -> list[str]:
    errors = [f"{r.email}: {r.error}" for r in report.digests if r.status in ("failed", "retry")]
    errors += [e for s in report.sources for e in s.errors]
    return [*([f"error storm: {report.storm}"] if report.storm else []), *errors]


def _signals(
    store: Store, subscribers: Sequence[Subscriber], papers: Sequence[Paper]
) -> tuple[list[Paper], dict[str, list[Feedback]]]:
    """What the ranker learns from besides topics: the earlier papers that `like`
    entries name (by arXiv id or title) and the subscribers' "more / less like this"
    from the email (digest serve), whose papers join that history."""
    present = {p.key for p in papers}
    wanted = {key_for_reference(like) for sub in subscribers for like in sub.like} - present
    history = store.papers_by_key(sorted(wanted)) if wanted else []
    feedback = store.feedback_for([sub.email for sub in subscribers])
    named = {f.paper_key for fs in feedback.values() for f in fs}
    named -= present | {p.key for p in history}
    history += store.papers_by_key(sorted(named)) if named else []
    return history, feedback


@dataclass(frozen=True, slots=True)
class Considered:
    """A paper a digest drew on, as ranked again for `digest why`."""

    paper: Paper
    score: float | None  # None: not ranked (categories, exclusions, earlier feedback)
    why: tuple[Reason, ...]
    outcome: str  # "in the digest", or why not


def considered_papers(
    app: App, subscriber: Subscriber, decision: dict[str, Any], picked: Collection[int]
) -> list[Considered]:
    """Every paper a planning decision drew on, ranked again with today's preferences,
    feedback and ranker, best first: in the digest (`picked`, by row id), below
    min_score, beyond max_papers; then those left out by categories, exclusions or
    earlier feedback."""
    first, last = decision.get("considered_from"), decision.get("considered_through")
    if first is None or last is None:
        return []
    store, email = app.store, subscriber.email
    drawn = store.papers_drawn_on(email, first, last, decision["created_at"])
    papers = list(drawn.values())
    row_of = {p.key: row for row, p in drawn.items()}
    passing = filter_by_categories([subscriber], papers, {email: set(row_of)})[email]
    history, feedback = _signals(store, [subscriber], papers)
    ranked = app.ranker.rank(
        papers,
        [subscriber],
        history=history,
        eligible={email: passing},
        feedback=feedback,
        lift_thresholds=True,
    ).get(email, [])
    threshold = app.ranker.default_min_score
    if subscriber.min_score is not None:
        threshold = subscriber.min_score
    judged = {f.paper_key: f.verdict for f in feedback.get(email, [])}
    out: list[Considered] = []
    for r in ranked:
        if row_of[r.paper.key] in picked:
            outcome = "in the digest"
        elif r.score < threshold and (subscriber.topics or subscriber.like):
            # (With `popularity` the score mixes in upvotes; the threshold is on relevance,
            # so near it this may name the other reason.)
            outcome = f"below min_score {threshold:.2f}"
        else:
            outcome = f"beyond max_papers {subscriber.max_papers}"
        out.append(Considered(r.paper, r.score, r.why, outcome))
    listed = {c.paper.key for c in out}
    for paper in papers:
        if paper.key in listed:
            continue
        if paper.key in judged:
            outcome = f'they said "{judged[paper.key]} like this" of it'
        elif paper.key not in passing:
            outcome = "left out by their categories"
        else:
            outcome = "excluded (their exclude list, or a paper they like)"
        out.append(Considered(paper, None, (), outcome))
    return out
