"""Subscriber state in the store (unsubscribes, bounces, feedback), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from digest.models import Feedback, Paper
from digest.store import Bounce, DeliveryResult, PlannedDigest, Store

NOW = datetime(2026, 4, 10, 8, 0, tzinfo=UTC)
ADA = "ada@example.org"


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.open(database_url)
    yield opened
    opened.close()


def test_an_unsubscribe_is_a_suppression_until_enabled(store: Store) -> None:
    assert store.unsubscribe(ADA, "one-click", NOW)
    assert not store.unsubscribe(ADA, "web page", NOW)  # idempotent; the first reason stays
    assert store.suppressed([ADA, "bob@example.org"]) == {ADA: "unsubscribed (one-click)"}
    assert store.enable("ADA@example.org") == ["unsubscribed (one-click)"]
    assert store.suppressed([ADA]) == {}
    assert store.enable(ADA) == []


def test_hard_bounces_suppress_at_the_limit_and_each_report_counts_once(store: Store) -> None:
    first = Bounce(ADA, "report-1", "5.1.1", True, "550 5.1.1 No such user")
    outcome = store.record_bounce(first, NOW, limit=2)
    assert (outcome.counted, outcome.hard_bounces, outcome.suppressed) == (True, 1, False)
    # The same notification read again (the Maildir re-read) counts nothing.
    again = store.record_bounce(first, NOW, limit=2)
    assert (again.counted, again.hard_bounces, again.suppressed) == (False, 1, False)
    # A soft bounce never counts towards the limit.
    soft = store.record_bounce(Bounce(ADA, "report-2", "4.2.2", False), NOW, limit=2)
    assert soft.hard_bounces == 1 and not soft.suppressed
    second = store.record_bounce(Bounce(ADA, "report-3", "5.1.1", True), NOW, limit=2)
    assert second.suppressed and second.hard_bounces == 2
    assert store.suppressed([ADA])[ADA].startswith("bounced: 2 hard bounces, last 5.1.1")
    # Enabled: the old bounces no longer count; re-reading them changes nothing.
    store.enable(ADA)
    assert not store.record_bounce(first, NOW, limit=2).suppressed
    assert store.record_bounce(Bounce(ADA, "report-4", "5.1.1", True), NOW, 2).hard_bounces == 1
    assert store.suppressed([ADA]) == {}


def test_feedback_keeps_the_latest_verdict_per_paper_with_its_title(store: Store) -> None:
    store.ingest([Paper("Sparse attention", "About it.", arxiv_id="2604.00001")], NOW)
    day = date(2026, 4, 10)
    store.record_feedback(ADA, "arxiv:2604.00001", "more", day, NOW)
    store.record_feedback(ADA, "arxiv:2604.00009", "less", day, NOW + timedelta(seconds=1))
    store.record_feedback("bob@example.org", "arxiv:2604.00001", "less", day, NOW)
    assert store.feedback_for([ADA, "carol@example.org"]) == {
        ADA: [
            Feedback("arxiv:2604.00001", "more", "Sparse attention"),
            Feedback("arxiv:2604.00009", "less", ""),
        ]
    }
    # The other verdict replaces the first; undoing a verdict no longer held changes nothing.
    store.record_feedback(ADA, "arxiv:2604.00001", "less", day, NOW + timedelta(seconds=2))
    assert not store.undo_feedback(ADA, "arxiv:2604.00001", "more")
    assert store.undo_feedback(ADA, "arxiv:2604.00001", "less")
    assert store.feedback_for([ADA]) == {ADA: [Feedback("arxiv:2604.00009", "less", "")]}


def test_sent_papers_are_what_went_out_newest_first(store: Store) -> None:
    store.ingest([Paper("One", arxiv_id="2604.00001"), Paper("Two", arxiv_id="2604.00002")], NOW)
    cands = store.candidates([ADA], NOW, 7)
    ids = (cands.ids["arxiv:2604.00001"], cands.ids["arxiv:2604.00002"])
    contents = {
        "considered": 2,
        "papers": [{"id": ids[0], "score": 0.9, "why": [["topic", "attention"]]}, {"id": ids[1]}],
    }
    version = cands.versions.get(ADA, -1)  # a new subscriber
    planned = PlannedDigest(ADA, NOW.date(), ids, contents, cands.seen_through.get(ADA, 0), version)
    store.plan([planned], now=NOW, domain="example.org")
    assert store.sent_papers(ADA) == []  # planned, not sent
    (claimed,) = store.claim("w", NOW, 10, timedelta(minutes=5))
    store.finish("w", [DeliveryResult(claimed.id, "sent", "smtp://x")], NOW, 3)
    sent = store.sent_papers(ADA)
    assert [s.paper.title for s in sent] == ["One", "Two"]
    assert [str(w) for w in sent[0].why] == ["topic: attention"]
    assert sent[0].sent_at == NOW and sent[0].issue_date == NOW.date()
    assert store.sent_papers("bob@example.org") == []
    store.ping()
