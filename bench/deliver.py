"""Delivery end to end: N personalised digests through the real pipeline, against raw SMTP.

    .venv/bin/python bench/deliver.py [--subscribers 20000] [--database-url URL]
                                      [--ranker lexical|auto] [--pool 4] [--sinks 2]

N distinct subscribers (topics drawn from the recorded papers' AI keywords and title
phrases; some with liked papers, followed authors or a taste for popular papers) get
their digests of the papers in `tests/fixtures/hf-daily-papers-api/days/` (183 papers,
stored before the clock starts) through `digest.pipeline.plan` and
`digest.pipeline.deliver`: rank, plan into the outbox, claim, compose (render + MIME),
send over the SMTP pool, record each outcome. The ranker is BM25 (`lexical`) by default:
with `auto`, thousands of distinct topic phrases would each be embedded, which is
ranking work, not delivery. The SMTP server is an aiosmtpd sink that accepts and
discards, in subprocesses on 127.0.0.1 (as in bench/smtp_pool.py).

Printed, all from this run: (a) raw aiosmtplib sending pre-built messages (a sample of
the digests this run produced, so the same sizes) over `pool` reused connections; (b)
paper-digest end to end (plan + compose + send + ledger); their ratio (b)/(a); the time
per message of each stage, summed over the delivery slots where they run side by side
("slot: between sends" is a slot's time from one send's end to its next send's start:
composing, waiting for its outcome's commit, claiming); memory: the peak and the
resident size after planning and after delivering. SQLite (a temporary file) by default;
`--database-url` names a PostgreSQL server, where a fresh schema is made and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from smtp_pool import raw, run_sink, start_sinks, stop  # noqa: E402

from digest import pipeline  # noqa: E402
from digest.app import App, open_app  # noqa: E402
from digest.compose import Composer  # noqa: E402
from digest.config import Config, Settings  # noqa: E402
from digest.models import OutgoingMessage, Paper, Subscriber  # noqa: E402
from digest.sources.hf_api import parse_daily_papers  # noqa: E402
from digest.store import ClaimedMessage, DeliveryResult, Store  # noqa: E402

DAYS = ROOT / "tests" / "fixtures" / "hf-daily-papers-api" / "days"
NOW = datetime(2026, 8, 22, 6, 30, tzinfo=UTC)
SENDER = "Paper digest <digest@bench.example.org>"
SAMPLE = 256  # messages kept for the raw baseline
NAMES = ["Ada", "Grace", "Alan", "Zoë", "Jürgen", "Åsa", "Chloé", "Søren", "Björk", "Lin"]
_WORD = re.compile(r"[A-Za-z][A-Za-z-]{3,}")


def load_papers() -> list[Paper]:
    papers: list[Paper] = []
    for path in sorted(DAYS.glob("*.json")):
        papers += parse_daily_papers(path.read_bytes(), str(path))
    return papers


def make_subscribers(papers: Sequence[Paper], n: int, seed: int) -> list[Subscriber]:
    """Distinct subscribers of every kind, their interests drawn from the papers."""
    rng = random.Random(seed)
    keywords = sorted({k.lower() for p in papers for k in p.ai_keywords if 3 < len(k) < 40})
    words = [[w.lower() for w in _WORD.findall(p.title)] for p in papers]
    phrases = sorted({" ".join(ws[i : i + 2]) for ws in words for i in range(len(ws) - 1)})
    pool = keywords + phrases
    ids = [p.arxiv_id for p in papers if p.arxiv_id]
    authors = sorted({a for p in papers for a in p.authors[:3]})
    subscribers = []
    for i in range(n):
        kind = rng.random()
        topics: tuple[str, ...] = ()
        like: tuple[str, ...] = ()
        followed: tuple[str, ...] = ()
        popularity = rng.choice([0.0, 0.0, 0.0, 0.2, 0.5])
        if kind < 0.70:  # topics
            topics = tuple(rng.sample(pool, rng.randint(1, 4)))
        elif kind < 0.80:  # topics and likes
            topics = tuple(rng.sample(pool, rng.randint(1, 2)))
            like = tuple(rng.sample(ids, rng.randint(1, 3)))
        elif kind < 0.88:  # likes only
            like = tuple(rng.sample(ids, rng.randint(1, 3)))
        elif kind < 0.93:  # followed authors and a topic
            followed = tuple(rng.sample(authors, rng.randint(1, 3)))
            topics = tuple(rng.sample(pool, 1))
        else:  # neither topics nor likes: the day's papers by upvotes
            popularity = 1.0
        subscribers.append(
            Subscriber(
                email=f"reader{i}@example.org",
                name=f"{rng.choice(NAMES)} {i}" if rng.random() < 0.8 else "",
                topics=topics,
                like=like,
                authors=followed,
                popularity=popularity,
                max_papers=rng.choice([5, 8, 10, 10, 10, 15, 20]),
                min_score=rng.choice([None, None, 0.3]),
            )
        )
    return subscribers


class Stopwatch:
    """Seconds spent in each stage, summed over calls."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.calls[name] = self.calls.get(name, 0) + 1


class TimedStore(Store):
    """The real store; claims and outcome commits timed (they run in worker threads)."""

    watch: Stopwatch

    def claim(
        self, worker: str, now: datetime, limit: int, lease: timedelta
    ) -> list[ClaimedMessage]:
        with self.watch.stage("ledger: claim"):
            return super().claim(worker, now, limit, lease)

    def finish(
        self, worker: str, results: Sequence[DeliveryResult], now: datetime, suppress_after: int
    ) -> None:
        with self.watch.stage("ledger: commit"):
            super().finish(worker, results, now, suppress_after)


class TimedMailer:
    """The real SMTP pool mailer; each send timed, a sample of the messages kept."""

    def __init__(self, inner: object, watch: Stopwatch, sample: list[OutgoingMessage]) -> None:
        self.inner = inner
        self.watch = watch
        self.sample = sample
        self.last_end: dict[object, float] = {}

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def __aenter__(self) -> TimedMailer:
        await self.inner.__aenter__()  # type: ignore[attr-defined]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.inner.__aexit__(*exc)  # type: ignore[attr-defined]

    async def send(self, message: OutgoingMessage) -> str:
        if len(self.sample) < SAMPLE:
            self.sample.append(message)
        start = time.perf_counter()
        task = asyncio.current_task()
        last = self.last_end.get(task)
        if last is not None:  # this slot's time since its previous send ended
            self.watch.add("slot: between sends", start - last)
        try:
            return await self.inner.send(message)  # type: ignore[attr-defined, no-any-return]
        finally:
            end = time.perf_counter()
            self.last_end[task] = end
            self.watch.add("send (on the wire)", end - start)


def timed_compose(watch: Stopwatch) -> None:
    """Time the Composer the pipeline builds (instrumentation only: the method is kept)."""
    real = Composer.compose_many

    def compose_many(self: Composer, claimed: list[ClaimedMessage]) -> list[OutgoingMessage]:
        with watch.stage("compose (render + MIME)"):
            return real(self, claimed)

    Composer.compose_many = compose_many  # type: ignore[method-assign]


@contextmanager
def database(url: str | None) -> Iterator[str]:
    """A temporary SQLite file, or a fresh schema on the named PostgreSQL server."""
    if not url:
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/bench.db"
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        query = {"options": f"-csearch_path={schema}"}
        yield sa.engine.make_url(url).update_query_dict(query).render_as_string(False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--database-url", help="PostgreSQL URL (default: a SQLite file)")
    parser.add_argument("--ranker", default="lexical", choices=["lexical", "auto"])
    parser.add_argument("--pool", type=int, default=4, help="SMTP connections")
    parser.add_argument("--sinks", type=int, default=2, help="sink processes")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the raw baseline")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        run_sink(args.sink)
        return

    papers = load_papers()
    subscribers = make_subscribers(papers, args.subscribers, args.seed)
    watch = Stopwatch()
    sample: list[OutgoingMessage] = []
    timed_compose(watch)
    children, port = start_sinks(args.sinks)
    try:
        with database(args.database_url) as url:
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                database_url=url,
                mailer="smtp",
                smtp_host="127.0.0.1",
                smtp_port=port,
                smtp_security="none",
                smtp_pool_size=args.pool,
                DIGEST_FROM=SENDER,
                ranker=args.ranker,
                delivery_batch=256,
                public_url="https://digest.bench.example.org",
                secret_key="bench-secret-key-0123456789",  # type: ignore[arg-type]
            )
            config = Config(ROOT / "bench" / "deliver.toml", tuple(subscribers), ())
            with open_app(settings, config) as app:
                store = TimedStore(app.store.engine)
                store.watch = watch
                mailer = TimedMailer(app.mailer, watch, sample)
                app = replace(app, store=store, mailer=mailer)  # type: ignore[arg-type]
                start = time.perf_counter()
                store.ingest(papers, NOW)
                indexed = pipeline.index_recent(app, NOW)
                shared = time.perf_counter() - start

                cpu0, wall0 = time.process_time(), time.perf_counter()
                with watch.stage("plan (rank + outbox)"):
                    planned = plan(app, subscribers)
                after_plan = peak_rss(), current_rss()
                with watch.stage("deliver"):
                    report = asyncio.run(pipeline.deliver(app, lambda: NOW))
                after_deliver = peak_rss(), current_rss()
                wall = time.perf_counter() - wall0
                cpu = time.process_time() - cpu0
                ranker = app.ranker.name
        sent = report.count("sent")
        sizes = [len(m.data) for m in sample]
        items = [
            OutgoingMessage(f"<raw{i}@bench>", m.sender, f"raw{i}@example.org", m.data)
            for i, m in zip(range(sent), _cycle(sample), strict=False)
        ]
        raw_rate = 0.0
        for _ in range(args.rounds):
            begin = time.perf_counter()
            asyncio.run(raw(port, args.pool, items))
            raw_rate = max(raw_rate, len(items) / (time.perf_counter() - begin))
    finally:
        stop(children)

    with_papers = sum(1 for r in planned if r.sent)
    print(
        f"{len(subscribers):,} subscribers, {len(papers)} papers ({indexed} indexed in "
        f"{shared:.1f} s before the clock), ranker {ranker}, "
        f"{'PostgreSQL' if args.database_url else 'SQLite'}, {args.pool} SMTP connections, "
        f"{args.sinks} sink process(es), {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    print(
        f"digests planned with papers: {with_papers:,}; sent: {sent:,}; "
        f"failed or retrying: {len(report.results) - sent}"
    )
    if sizes:
        print(
            f"message size: mean {sum(sizes) / len(sizes) / 1024:.1f} KiB, "
            f"max {max(sizes) / 1024:.1f} KiB (sample of {len(sizes)})"
        )
    rate = sent / wall if wall else 0.0
    print()
    print(f"(a) raw aiosmtplib, pre-built   {raw_rate:9,.0f} msg/s   (best of {args.rounds})")
    cpu_per = cpu / max(sent, 1) * 1e3
    print(f"(b) paper-digest end to end     {rate:9,.0f} msg/s   (CPU {cpu_per:.2f} ms/msg)")
    print(f"ratio (b)/(a): {rate / raw_rate if raw_rate else 0:.2f}")
    print()
    print(f"{'stage':<28}{'total s':>9}{'ms/message':>12}")
    per = max(sent, 1)
    for name, seconds in watch.seconds.items():
        print(f"{name:<28}{seconds:>9.2f}{seconds / per * 1e3:>12.3f}")
    print(f"{'end to end':<28}{wall:>9.2f}{wall / per * 1e3:>12.3f}")
    print(
        f"\nmemory (MiB): peak {after_deliver[0]:.0f} (reached by the end of plan: "
        f"{after_plan[0]:.0f}); resident after plan {after_plan[1]:.0f}, after deliver "
        f"{after_deliver[1]:.0f}"
    )


def plan(app: App, subscribers: Sequence[Subscriber]) -> list[pipeline.SubscriberReport]:
    """Every subscriber's digest planned now, whatever their schedule (as `--force`)."""
    options = pipeline.RunOptions(force=True, fetch=False)
    due, others = pipeline.due_now(app, subscribers, NOW, options)
    return others + pipeline.plan(app, due, now=NOW)


def peak_rss() -> float:
    """MiB: the process's maximum resident set so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss() -> float:
    """MiB resident now (Linux), else the peak."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss()


def _cycle(items: list[OutgoingMessage]) -> Iterator[OutgoingMessage]:
    while items:
        yield from items


if __name__ == "__main__":
    main()
