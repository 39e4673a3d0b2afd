"""Ranking at scale: 100,000 subscribers x 1,000 papers, seconds and peak memory.

Each measurement runs in its own process so that peak RSS is its own. The baseline is
the floor any ranker pays for this output: a dense score matrix, a top-k per subscriber
and the RankedPaper lists, with no text work at all; ranker figures are also shown as
ratios to it.

    .venv/bin/python bench/rank_scale.py [--subscribers 100000] [--papers 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from digest.models import Feedback, Paper, RankedPaper, Subscriber  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "arxiv-daily-listings"
PHRASES = [
    "large language models",
    "diffusion models",
    "reinforcement learning",
    "robotics",
    "computer vision",
    "machine translation",
    "graph neural networks",
    "speech recognition",
    "retrieval augmented generation",
    "3d reconstruction",
    "video generation",
    "agents",
    "image segmentation",
    "federated learning",
    "quantization",
    "benchmark",
    "medical imaging",
    "Computation and Language",
    "Computer Vision and Pattern Recognition",
    "Artificial Intelligence",
    "multimodal reasoning",
    "autonomous driving",
    "privacy",
    "code generation",
    "hallucination",
]


def papers(n: int) -> list[Paper]:
    out: dict[str, Paper] = {}
    rng = random.Random(0)
    for path in sorted(DATA.glob("20*.jsonl")):
        for line in path.read_text().splitlines():
            r = json.loads(line)
            out.setdefault(
                r["id"],
                Paper(
                    title=r["title"],
                    abstract=" ".join(r["summary"].split()),
                    arxiv_id=r["id"],
                    authors=tuple(r["authors"]),
                    upvotes=rng.choice([0, 0, 1, 3, 10, 50]),
                ),
            )
    base = sorted(out.values(), key=lambda p: p.key)
    # Past the real papers, reuse their text under new ids (distinct keys, same vocabulary).
    return [
        base[i % len(base)]
        if i < len(base)
        else Paper(
            base[i % len(base)].title + f" ({i})",
            base[i % len(base)].abstract,
            arxiv_id=f"9999.{i:05d}",
            authors=base[i % len(base)].authors,
        )
        for i in range(n)
    ]


def subscribers(n: int, pool: list[Paper]) -> list[Subscriber]:
    rng = random.Random(1)
    subs = []
    for i in range(n):
        kind = i % 4
        topics = tuple(rng.sample(PHRASES, rng.randint(1, 3))) if kind in (0, 1) else ()
        like = tuple(p.arxiv_id or "" for p in rng.sample(pool, 5)) if kind in (1, 2) else ()
        subs.append(
            Subscriber(
                f"s{i}@example.org",
                topics=topics,
                like=like,
                exclude=("survey",) if i % 7 == 0 else (),
                authors=(rng.choice(pool).authors[:1] if i % 5 == 0 else ()),
                popularity=0.2 if i % 3 == 0 else 0.0,
            )
        )
    return subs


def feedback_for(subs: list[Subscriber], pool: list[Paper]) -> dict[str, list[Feedback]]:
    """Every subscriber's "more / less like this" on 10 earlier papers (7 more, 3 less)."""
    rng = random.Random(2)
    return {
        s.email: [
            Feedback(p.key, "more" if k < 7 else "less", p.title)
            for k, p in enumerate(rng.sample(pool, 10))
        ]
        for s in subs
    }


def run(kind: str, n_subs: int, n_papers: int, with_feedback: bool = False) -> dict[str, float]:
    day = papers(n_papers)
    history = papers(n_papers + 300)[n_papers:]  # liked papers come from earlier days
    subs = subscribers(n_subs, history)
    feedback = feedback_for(subs, history) if with_feedback else None
    result: Mapping[str, list[RankedPaper]]
    cold = 0.0
    if kind == "baseline":
        t = time.perf_counter()
        scores = np.random.default_rng(0).random((n_subs, n_papers), dtype=np.float32)
        top = np.argpartition(-scores, 9, axis=1)[:, :10]
        result = {
            s.email: [RankedPaper(day[j], float(scores[i, j]), ()) for j in top[i]]
            for i, s in enumerate(subs)
        }
        seconds = time.perf_counter() - t
    else:
        from digest.rank import MemoryEmbeddingCache, make_ranker

        cache = MemoryEmbeddingCache()
        ranker = make_ranker(kind, cache)
        # Shared work per new paper (embedding + index), cold; then the embeddings are
        # cached, as in production after a paper's first day.
        t = time.perf_counter()
        ranker.rank(day, subs[:1], history=history)
        cold = (time.perf_counter() - t) / n_papers
        ranker.rank(history, subs[:1])
        t = time.perf_counter()
        result = ranker.rank(day, subs, history=history, feedback=feedback)
        seconds = time.perf_counter() - t
    # What the pipeline then does: read every subscriber's list once.
    t = time.perf_counter()
    sent = sum(len(result.get(s.email, [])) for s in subs)
    read = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "read": read, "peak_mb": peak, "sent": sent, "cold": cold}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subscribers", type=int, default=100_000)
    ap.add_argument("--papers", type=int, default=1_000)
    ap.add_argument("--child")
    ap.add_argument("--kinds", nargs="*", default=["baseline", "lexical", "static", "onnx"])
    ap.add_argument(
        "--feedback",
        action="store_true",
        help="also rank each route with every subscriber's feedback (10 papers each)",
    )
    args = ap.parse_args()
    if args.child:
        kind, _, fed = args.child.partition("+")
        print(json.dumps(run(kind, args.subscribers, args.papers, bool(fed))))
        return
    print(f"{args.subscribers:,} subscribers x {args.papers:,} papers ({os.cpu_count()} cores)")
    base = None
    kinds = args.kinds
    if args.feedback:
        kinds = [
            k for kind in kinds for k in (kind, f"{kind}+feedback") if k != "baseline+feedback"
        ]
    for kind in kinds:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                kind,
                "--subscribers",
                str(args.subscribers),
                "--papers",
                str(args.papers),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        base = base or r["seconds"]
        print(
            f"{kind:18} rank() {r['seconds']:6.2f} s ({r['seconds'] / base:4.2f}x baseline)  "
            f"+ reading every list {r['read']:5.2f} s  peak {r['peak_mb']:6.0f} MB  "
            f"papers sent {int(r['sent']):,}"
            + (f"  cold {1000 * r['cold']:.1f} ms/paper" if r["cold"] else "")
        )


if __name__ == "__main__":
    main()
