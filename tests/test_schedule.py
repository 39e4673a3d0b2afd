"""Each subscriber's own morning: a fake clock drives the scheduled runs through two weeks
(DST changes both ways, downtime shorter and longer than the grace, weekends, a weekly
subscriber, three time zones); the test checks which digests went out when."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from digest.app import App, load_app_config, open_app
from digest.config import load_settings
from digest.models import Paper
from digest.schedule import Schedule, decide
from digest.scheduler import cron_trigger, run_scheduled

PARIS, NEW_YORK, TOKYO = (
    ZoneInfo("Europe/Paris"),
    ZoneInfo("America/New_York"),
    ZoneInfo("Asia/Tokyo"),
)

SUBSCRIBERS = """
[[subscribers]]
email = "paris@example.org"
timezone = "Europe/Paris"
send_at = "02:30"

[[subscribers]]
email = "ny@example.org"
timezone = "America/New_York"
send_at = "07:00"
frequency = "weekdays"

[[subscribers]]
email = "tokyo@example.org"
timezone = "Asia/Tokyo"
send_at = "08:00"
frequency = "weekly"
weekday = "friday"
max_papers = 50
"""


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    config = tmp_path / "digest.toml"
    config.write_text(SUBSCRIBERS)
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'digest.db'}",
        outbox_dir=tmp_path / "outbox",
        mailer="outbox",
        ranker="lexical",
        catch_up_grace=6.0,
        _env_file=None,
    )
    with open_app(settings, load_app_config(settings, config)) as opened:
        yield opened


def drive(app: App, start: datetime, days: int, down: list[tuple[datetime, datetime]]) -> None:
    """Every 15 minutes: new papers at each UTC midnight; a scheduled run unless down."""
    tick, end, serial = start, start + timedelta(days=days), 0
    while tick < end:
        if tick.hour == 0 and tick.minute == 0:
            papers = []
            for _ in range(3):
                serial += 1
                papers.append(
                    Paper(
                        f"Paper number {serial}",
                        "About things.",
                        f"2601.{serial:05d}",
                        upvotes=serial,
                    )
                )
            app.store.ingest(papers, tick)
        if not any(a <= tick < b for a, b in down):
            run_scheduled(app, tick)
        tick += timedelta(minutes=15)


def sent(app: App, email: str) -> list[tuple[datetime, date, str | None, list[int]]]:
    """(plan time, issue date, period start, paper ids) of each digest, in order."""
    import sqlalchemy as sa

    from digest.store.schema import messages_table as m

    with app.store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(m.c.created_at, m.c.issue_date, m.c.contents, m.c.status)
            .where(m.c.subscriber == email)
            .order_by(m.c.id)
        ).all()
    assert all(r.status == "sent" for r in rows)
    return [
        (
            r.created_at.replace(tzinfo=UTC),
            r.issue_date,
            r.contents.get("period_start"),
            [p["id"] for p in r.contents["papers"]],
        )
        for r in rows
    ]


def test_spring_two_weeks(app: App) -> None:
    start = datetime(2026, 3, 23, 0, 0, tzinfo=UTC)  # Monday; Paris springs forward on 03-29
    short = (datetime(2026, 3, 25, 10, 30, tzinfo=UTC), datetime(2026, 3, 25, 13, 0, tzinfo=UTC))
    long = (datetime(2026, 3, 31, 9, 0, tzinfo=UTC), datetime(2026, 3, 31, 20, 0, tzinfo=UTC))
    drive(app, start, 14, [short, long])

    paris = sent(app, "paris@example.org")
    local = [(t.astimezone(PARIS), day) for t, day, _, _ in paris]
    assert [day for _, day in local] == [date(2026, 3, 23) + timedelta(days=n) for n in range(14)]
    for moment, day in local:
        assert moment.date() == day
        # 02:30 every day; on 03-29 02:30 does not exist and the digest goes at 03:30.
        expected = time(3, 30) if day == date(2026, 3, 29) else time(2, 30)
        assert (moment.hour, moment.minute) == (expected.hour, expected.minute)

    ny = sent(app, "ny@example.org")
    ny_days = [day for _, day, _, _ in ny]
    weekdays = [
        date(2026, 3, 23) + timedelta(days=n)
        for n in range(14)
        if (date(2026, 3, 23) + timedelta(days=n)).weekday() < 5
    ]
    # 03-31's 07:00 EDT (11:00 UTC) fell in a 11-hour outage: skipped, not sent late.
    assert ny_days == [d for d in weekdays if d != date(2026, 3, 31)]
    times = {day: t.astimezone(NEW_YORK) for t, day, _, _ in ny}
    # A 2.5-hour outage over 03-25's send: it went out once, when the service came back.
    assert times[date(2026, 3, 25)] == datetime(2026, 3, 25, 9, 0, tzinfo=NEW_YORK)
    assert all((t.hour, t.minute) == (7, 0) for d, t in times.items() if d != date(2026, 3, 25))
    # Monday's digest covers the weekend; the one after the skipped day covers both days.
    by_day = {day: (period, ids) for _, day, period, ids in ny}
    assert by_day[date(2026, 3, 30)][0] == "2026-03-28"
    assert by_day[date(2026, 4, 1)][0] == "2026-03-31"
    assert len(by_day[date(2026, 4, 1)][1]) == 6  # two days of papers, nothing lost

    tokyo = sent(app, "tokyo@example.org")
    assert [day for _, day, _, _ in tokyo] == [date(2026, 3, 27), date(2026, 4, 3)]
    assert all(t.astimezone(TOKYO).time() == time(8, 0) for t, _, _, _ in tokyo)

    # Nobody got a paper twice, and every paper first seen before someone's last digest
    # reached them (the weekly subscriber gets a week at a time).
    for email in ("paris@example.org", "ny@example.org", "tokyo@example.org"):
        ids = [i for _, _, _, papers in sent(app, email) for i in papers]
        assert len(ids) == len(set(ids))
        last = sent(app, email)[-1][0]
        assert set(ids) == {p.id for p in _papers_before(app, last)}


def _papers_before(app: App, moment: datetime) -> list[object]:
    import sqlalchemy as sa

    from digest.store.schema import papers_table as p

    with app.store.engine.connect() as conn:
        return list(conn.execute(sa.select(p.c.id).where(p.c.first_seen_at <= moment)))


def test_autumn_two_weeks_fall_back_sends_once(app: App) -> None:
    start = datetime(2026, 10, 19, 0, 0, tzinfo=UTC)  # Paris falls back 10-25, New York 11-01
    drive(app, start, 15, [])
    paris = sent(app, "paris@example.org")
    days = [day for _, day, _, _ in paris]
    assert days == [date(2026, 10, 19) + timedelta(days=n) for n in range(15)]
    fall_back = next(t for t, day, _, _ in paris if day == date(2026, 10, 25))
    assert fall_back == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # the first 02:30
    ny = {day: t.astimezone(NEW_YORK) for t, day, _, _ in sent(app, "ny@example.org")}
    assert all((t.hour, t.minute) == (7, 0) for t in ny.values())
    assert date(2026, 11, 2) in ny  # the Monday after New York's change
    assert not any(day.weekday() >= 5 for day in ny)


def test_decide_is_pure_and_handles_each_slot_once() -> None:
    schedule = Schedule(PARIS, time(7, 0))
    now = datetime(2026, 5, 4, 6, 0, tzinfo=UTC)  # 08:00 in Paris
    first = decide(schedule, None, now, timedelta(hours=6))
    assert first.action == "send" and first.slot == datetime(2026, 5, 4, 5, 0, tzinfo=UTC)
    assert decide(schedule, first.slot, now, timedelta(hours=6)).action == "wait"
    late = decide(schedule, None, now + timedelta(hours=7), timedelta(hours=6))
    assert late.action == "skip"
    manual = decide(schedule, None, now + timedelta(hours=7), None)
    assert manual.action == "send"  # a manual run sends the current period whenever run


def test_cron_triggers_fire_at_local_times() -> None:
    weekly = cron_trigger(Schedule(TOKYO, time(8, 0), "weekly", 4))
    fire = weekly.get_next_fire_time(None, datetime(2026, 3, 23, tzinfo=UTC))
    assert fire is not None and fire.astimezone(TOKYO) == datetime(2026, 3, 27, 8, 0, tzinfo=TOKYO)
    weekdays = cron_trigger(Schedule(NEW_YORK, time(7, 0), "weekdays"))
    fire = weekdays.get_next_fire_time(None, datetime(2026, 3, 28, tzinfo=UTC))  # Saturday
    assert fire is not None and fire.astimezone(NEW_YORK).date() == date(2026, 3, 30)
