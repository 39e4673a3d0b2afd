"""One run of the service: fetch → store → rank → render → send → record.

The only place the parts meet. It knows the stages, not formats or storage: sources,
store, ranker and mailer are handed in; the clock and the settings are parameters.
Ordering rule: a paper is recorded as sent only after the mailer accepted the message.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from email.message import EmailMessage

import jinja2

from digest.errors import SendError, SourceError
from digest.mailer import Mailer
from digest.models import Digest, Paper, RankedPaper, Subscriber
from digest.rank import Ranker
from digest.render import render_message
from digest.sources import FetchContext, Source
from digest.store import Store

log = logging.getLogger(__name__)


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


def fetch(
    sources: Sequence[Source], store: Store, ctx: FetchContext, now: datetime
) -> list[SourceReport]:
    """Read every source and merge what it found into the seen-set.

    Each page is stored as soon as it is read, so a broken page or source loses nothing
    that came before it and never stops the others. A page with some unreadable items
    stores the rest and is reported as failed too.
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
    log.warning("event=source_failed source=%s error=%s", report.name, error)
    report.failed += 1
    report.errors.append(str(error))


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
    """Earlier papers that subscribers' `like` entries name by arXiv id."""
    present = {p.arxiv_id for p in papers if p.arxiv_id}
    wanted = {
        f"arxiv:{like}"
        for sub in subscribers
        for like in sub.like
        if _looks_like_arxiv_id(like) and like not in present
    }
    return store.papers_by_key(sorted(wanted)) if wanted else []


def _looks_like_arxiv_id(text: str) -> bool:
    head, _, tail = text.partition(".")
    return head.isdigit() and tail.replace("v", "").isdigit()


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
