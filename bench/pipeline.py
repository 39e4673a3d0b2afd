"""Benchmark: build the digests of N synthetic subscribers over the bundled example pages.

Prints the shared work per paper (embeddings), then, per stage (load, seen-set diff, rank,
render, MIME bytes), the time per digest and digests/s, plus peak memory. Every time is
also given as a ratio to a fixed calibration workload measured in the same run, because
this machine's speed drifts between runs.

    python bench/pipeline.py [--subscribers 1000] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import re
import resource
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from digest.config import DEFAULT_TEMPLATES
from digest.models import Digest, Paper, Subscriber
from digest.rank import MemoryEmbeddingCache, make_ranker
from digest.render import make_environment, render_message
from digest.sources.text_dump import parse_text_dump
from digest.store import Store

ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / "examples" / "pages"
NOW = datetime(2026, 11, 22, 6, 30, tzinfo=UTC)
T = TypeVar("T")
_STOP = set(
    [
        "the",
        "a",
        "an",
        "of",
        "and",
        "or",
        "for",
        "to",
        "in",
        "on",
        "with",
        "by",
        "from",
        "we",
        "our",
        "is",
        "are",
        "this",
        "that",
        "as",
        "at",
        "be",
        "which",
        "these",
        "their",
        "its",
        "it",
        "can",
        "via",
        "using",
        "based",
        "into",
        "than",
        "not",
        "also",
        "has",
        "have",
        "been",
        "more",
        "such",
    ]
)


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def calibration() -> float:
    """A fixed pure-Python workload (sort + dict + string work); its time is the unit."""
    rng = random.Random(0)

    def work() -> int:
        values = [rng.random() for _ in range(200_000)]
        values.sort()
        counts = Counter(f"{v:.3f}" for v in values)
        return len(counts)

    return min(timed(work)[1] for _ in range(3))


def synthetic_subscribers(papers: list[Paper], n: int, seed: int) -> list[Subscriber]:
    """Topics drawn from the papers' own title words (bigrams and single words)."""
    rng = random.Random(seed)
    words = [
        [w for w in re.findall(r"[a-z][a-z-]{3,}", p.title.lower()) if w not in _STOP]
        for p in papers
    ]
    phrases = [" ".join(ws[i : i + 2]) for ws in words for i in range(len(ws) - 1)]
    singles = [w for ws in words for w in ws]
    subs = []
    for i in range(n):
        topics = rng.sample(phrases, 2) + rng.sample(singles, 1)
        subs.append(Subscriber(f"user{i}@example.org", f"User {i}", topics=tuple(topics)))
    return subs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    unit = calibration()
    stages: dict[str, float] = {}

    files = sorted(PAGES.glob("*.txt"))
    papers, stages["load"] = timed(
        lambda: [
            p for f in files for p in parse_text_dump(f.read_bytes(), str(f), today=NOW.date())
        ]
    )
    subscribers = synthetic_subscribers(papers, args.subscribers, args.seed)
    emails = [s.email for s in subscribers]

    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{tmp}/bench.db")
        _, ingest = timed(lambda: store.ingest(papers, NOW))
        candidates, diff = timed(lambda: store.candidates(emails, NOW, 7))
        stages["seen-set diff"] = ingest + diff
        store.close()

    ranker = make_ranker("auto", cache=MemoryEmbeddingCache())
    # Shared work per paper (embedding, index), paid once a day whatever the subscribers.
    _, embed = timed(lambda: ranker.rank(candidates.papers, subscribers[:1]))
    ranked, stages["rank"] = timed(
        lambda: ranker.rank(candidates.papers, subscribers, eligible=candidates.eligible)
    )
    env = make_environment(DEFAULT_TEMPLATES)
    digests = [
        Digest(s, tuple(ranked.get(s.email, [])), NOW.date())
        for s in subscribers
        if ranked.get(s.email)
    ]
    messages, stages["render"] = timed(
        lambda: [render_message(d, env, sender="bench@example.org", now=NOW) for d in digests]
    )
    sizes, stages["MIME bytes"] = timed(lambda: [len(m.as_bytes()) for m in messages])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    n = len(subscribers)
    print(f"papers: {len(papers)} from {len(files)} pages; subscribers: {n}; ranker: {ranker.name}")
    print(
        f"digests with papers: {len(digests)}; mean message size: "
        f"{sum(sizes) / max(len(sizes), 1) / 1024:.1f} KiB"
    )
    print(
        f"shared work per paper (embedding, index; once a day): "
        f"{embed / len(candidates.papers) * 1000:.1f} ms x {len(candidates.papers)} papers"
    )
    print(f"calibration unit: {unit * 1000:.1f} ms\n")
    print(f"{'stage':<15}{'total s':>9}{'ms/digest':>11}{'digests/s':>11}{'x unit':>9}")
    for name, seconds in [*stages.items(), ("all", sum(stages.values()))]:
        per = seconds / n
        rate = n / seconds if seconds else float("inf")
        print(f"{name:<15}{seconds:>9.3f}{per * 1000:>11.3f}{rate:>11.0f}{seconds / unit:>9.2f}")
    print(f"\npeak memory (max RSS of the process): {peak / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
