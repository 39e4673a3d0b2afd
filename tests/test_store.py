"""The store contract, run on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from digest.models import Paper
from digest.store import PlannedDigest, PlanOutcome, Store

NOW = datetime(2026, 4, 10, 8, 0, tzinfo=UTC)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.open(database_url)
    yield opened
    opened.close()


def paper(title: str, arxiv_id: str | None = None, **kw: object) -> Paper:
    return Paper(title=title, abstract=f"About {title}.", arxiv_id=arxiv_id, **kw)  # type: ignore[arg-type]


def test_ingest_counts_new_then_updates(store: Store) -> None:
    first = store.ingest([paper("A", "2604.00001", upvotes=3), paper("B", "2604.00002")], NOW)
    assert (first.new, first.updated) == (2, 0)
    again = store.ingest([paper("A", "2604.00001", upvotes=9), paper("B", "2604.00002")], NOW)
    assert (again.new, again.updated, again.unchanged) == (0, 1, 1)
    (stored,) = store.papers_by_key(["arxiv:2604.00001"])
    assert stored.upvotes == 9
    assert store.count_papers() == 2


def test_title_only_paper_becomes_the_id_paper(store: Store) -> None:
    store.ingest([paper("Deep  Transfer: Learning!", comments=4)], NOW)
    result = store.ingest([paper("deep transfer learning", "2604.00003", upvotes=5)], NOW)
    assert (result.new, result.updated) == (0, 1)
    (stored,) = store.papers_by_key(["arxiv:2604.00003"])
    assert stored.comments == 4 and stored.upvotes == 5
    # ...and a later text dump of the same title updates it instead of adding a copy.
    assert store.ingest([paper("Deep transfer learning", comments=6)], NOW).new == 0
    assert store.count_papers() == 1


def test_two_papers_with_the_same_title_but_different_ids_stay_apart(store: Store) -> None:
    store.ingest([paper("Same", "2604.00010")], NOW)
    assert store.ingest([paper("Same", "2604.00011")], NOW).new == 1


def test_duplicates_within_one_batch_are_merged(store: Store) -> None:
    result = store.ingest([paper("X", comments=1), paper("X", "2604.00020", upvotes=2)], NOW)
    assert result.new == 1
    (stored,) = store.papers_by_key(["arxiv:2604.00020"])
    assert stored.comments == 1 and stored.upvotes == 2


def plan_one(store: Store, email: str, keys: list[str], now: datetime = NOW) -> None:
    """Plan a digest of these papers for one subscriber, as the pipeline does."""
    cands = store.candidates([email], now, 7)
    ids = tuple(cands.ids[k] for k in keys)
    contents = {"considered": len(cands.eligible[email]), "papers": [{"id": i} for i in ids]}
    digest = PlannedDigest(
        email, now.date(), ids, contents, cands.seen_through[email], cands.versions[email]
    )
    store.plan([digest], now=now, domain="example.org")


def test_candidates_exclude_what_was_sent_and_considered(store: Store) -> None:
    store.ingest([paper("A", "1"), paper("B", "2")], NOW)
    cands = store.candidates(["x@example.org", "y@example.org"], NOW, 7)
    assert cands.eligible["x@example.org"] == {"arxiv:1", "arxiv:2"}
    plan_one(store, "x@example.org", ["arxiv:1"])
    store.ingest([paper("C", "3")], NOW + timedelta(hours=1))
    later = store.candidates(["x@example.org", "y@example.org"], NOW + timedelta(hours=2), 7)
    assert later.eligible["x@example.org"] == {"arxiv:3"}
    assert later.eligible["y@example.org"] == {"arxiv:1", "arxiv:2", "arxiv:3"}
    assert store.sent_keys("x@example.org") == {"arxiv:1"}


def test_a_paper_is_never_planned_twice_for_a_subscriber(store: Store) -> None:
    store.ingest([paper("A", "1")], NOW)
    stale = store.candidates(["x@example.org"], NOW, 7)
    plan_one(store, "x@example.org", ["arxiv:1"])
    # A second planner that read the same state loses the race: nothing is planned twice.
    email = "x@example.org"
    digest = PlannedDigest(
        email,
        NOW.date(),
        (stale.ids["arxiv:1"],),
        {"papers": []},
        stale.seen_through[email],
        stale.versions[email],
    )
    outcome = store.plan([digest], now=NOW, domain="example.org")
    assert outcome.lost == [email] and outcome.planned == []
    assert store.message_counts() == {"pending": 1}


def test_two_planners_racing_over_the_same_subscribers_plan_each_once(
    store: Store, database_url: str
) -> None:
    """Two runs that read the same state plan the same 200 digests at the same moment,
    each through its own connections: every subscriber is planned (or considered) by
    exactly one of them and lost by the other, known and new subscribers alike."""
    store.ingest([paper("A", "1"), paper("B", "2")], NOW)
    emails = [f"r{n:03d}@example.org" for n in range(200)]
    known = [PlannedDigest(e, NOW.date(), (), {}, 0, -1) for e in emails[:100]]
    assert len(store.plan(known, now=NOW, domain="example.org").considered) == 100
    cands = store.candidates(emails, NOW, 7)
    ids = tuple(cands.ids.values())
    digests = [
        PlannedDigest(e, NOW.date(), ids if n % 2 else (), {"considered": 2}, 0, cands.versions[e])
        for n, e in enumerate(emails)
    ]
    assert {cands.versions[e] for e in emails} == {1, -1}

    def plan() -> PlanOutcome:
        other = Store.open(database_url)
        try:
            return other.plan(digests, now=NOW, domain="example.org")
        finally:
            other.close()

    with ThreadPoolExecutor(2) as pool:
        first, second = [f.result() for f in [pool.submit(plan), pool.submit(plan)]]
    for mine, theirs in [(first, second), (second, first)]:
        taken = mine.planned + mine.considered
        assert len(taken) == len(set(taken))
        assert set(taken) == set(theirs.lost)
    assert sorted(first.planned + second.planned) == emails[1::2]
    assert sorted(first.considered + second.considered) == emails[::2]
    assert store.message_counts() == {"pending": 100}
    statuses = [d["status"] for d in store.decisions(emails[-1], NOW.date())]
    assert sorted(statuses) == ["planned", "planned by another run"]


def test_a_slot_in_another_time_zone_reads_back_as_the_same_moment(store: Store) -> None:
    """A Tokyo subscriber's 07:00 slot is 22:00 UTC the day before, whatever the database
    (SQLite keeps no offset); scheduling compares it with slots of every other zone."""
    tokyo = datetime(2026, 11, 30, 7, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert store.skip_slot("tokyo@example.org", tokyo, tokyo.date(), "test", NOW, 3)
    handled, _planned = store.last_slots(["tokyo@example.org"])["tokyo@example.org"]
    assert handled == tokyo and handled is not None and handled.utcoffset() == timedelta(0)
    # Handled once: the same moment given in UTC is not a later slot.
    assert not store.skip_slot("tokyo@example.org", tokyo.astimezone(UTC), tokyo.date(), "", NOW, 3)


def test_new_subscriber_starts_with_recent_papers_only(store: Store) -> None:
    store.ingest([paper("Old", "1")], NOW - timedelta(days=30))
    store.ingest([paper("Fresh", "2")], NOW)
    cands = store.candidates(["new@example.org"], NOW, 7)
    assert cands.eligible["new@example.org"] == {"arxiv:2"}


def test_fields_round_trip(store: Store) -> None:
    original = Paper(
        title="T",
        abstract="Abs",
        arxiv_id="2604.07429",
        authors=("A One", "B Two"),
        author_count=2,
        published=date(2026, 4, 8),
        list_date=date(2026, 4, 10),
        upvotes=7,
        comments=1,
        submitter="akhaliq",
        ai_summary="Sum",
        ai_keywords=("k1", "k2"),
        github_repo="https://github.com/x/y",
        github_stars=12,
        project_page="https://x.y",
        organization="Org",
        source="f.json",
    )
    store.ingest([original], NOW)
    assert store.papers_by_key([original.key]) == [original]


def test_embedding_cache_round_trip(store: Store) -> None:
    vectors = {"arxiv:1": np.arange(4, dtype=np.float32), "title:x": np.ones(4, np.float32)}
    store.put(vectors, "m")
    got = store.get(["arxiv:1", "title:x", "arxiv:none"], "m")
    assert set(got) == {"arxiv:1", "title:x"}
    np.testing.assert_array_equal(got["arxiv:1"], vectors["arxiv:1"])
    store.put({"arxiv:1": np.zeros(4, np.float32)}, "m")
    np.testing.assert_array_equal(store.get(["arxiv:1"], "m")["arxiv:1"], np.zeros(4))
    assert store.get(["arxiv:1"], "other") == {}


def test_reopening_keeps_data_and_schema(database_url: str) -> None:
    first = Store.open(database_url)
    first.ingest([paper("A", "1")], NOW)
    first.close()
    second = Store.open(database_url)
    assert second.count_papers() == 1
    second.close()


def test_migrations_create_exactly_the_tables_the_queries_use(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from digest.store.schema import metadata

    store = Store.open(database_url)
    with store.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    store.close()
    assert differences == []
