"""Ranking quality on real arXiv data: category = topic, the ranker never sees categories.

Subscribers per (day, category with >= 3 papers that day):
  topic:<cat>  topics = [the official category name], e.g. "Computation and Language"
  like:<cat>   like = 5 papers listing <cat> from earlier days (fixed seed)
Candidates are a day's papers; relevant = the paper lists the category. Two sources:
  listing days  /work/shared/data/arxiv-daily-listings/<day>.jsonl (no upvotes)
  HF days       hf-daily-papers-api/days/<day>.json, the papers labelled by hf-joined.jsonl

Tuning used the DEV days only; the figures that count are on the TEST days.

    .venv/bin/python bench/rank_eval.py [--split dev|test|all] [--minilm FILE.npz] [--methods ...]
    .venv/bin/python bench/rank_eval.py --feedback [--split ...] [--kinds onnx static lexical]

`--feedback` runs the simulated reader instead (see `simulate`): nDCG@10 per day with no
feedback, with its "more" papers as likes, and learned, over runs of consecutive days.

`--minilm` takes reference vectors of the genuine all-MiniLM-L6-v2 written by
tools/minilm_embed.py (it needs torch, which the project does not).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from digest.models import Feedback, Paper, Subscriber  # noqa: E402
from digest.rank import MemoryEmbeddingCache, make_ranker  # noqa: E402
from digest.rank.engine import Engine  # noqa: E402
from digest.rank.text import content_words  # noqa: E402
from digest.sources.hf_api import parse_daily_papers  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
LISTINGS = DATA / "arxiv-daily-listings"
HF_DAYS = DATA / "hf-daily-papers-api" / "days"
OAI = DATA / "arxiv-oai-pmh"
# 2026-04-11 is Friday's list re-read on Saturday: the same papers, so it is not used.
LISTING_DEV = ("2025-05-22", "2025-12-11")
LISTING_TEST = ("2026-04-09", "2026-04-10")
HF_SPLIT = date(2026, 1, 1)  # HF days before: dev; from this day on: test
N_LIKES = 5
MIN_RELEVANT = 3

# The official arXiv names (arxiv.org/category_taxonomy) of every category in the data.
CATEGORY_NAMES = {
    "cs.AI": "Artificial Intelligence",
    "cs.AR": "Hardware Architecture",
    "cs.CC": "Computational Complexity",
    "cs.CE": "Computational Engineering, Finance, and Science",
    "cs.CG": "Computational Geometry",
    "cs.CL": "Computation and Language",
    "cs.CR": "Cryptography and Security",
    "cs.CV": "Computer Vision and Pattern Recognition",
    "cs.CY": "Computers and Society",
    "cs.DB": "Databases",
    "cs.DC": "Distributed, Parallel, and Cluster Computing",
    "cs.DL": "Digital Libraries",
    "cs.DM": "Discrete Mathematics",
    "cs.DS": "Data Structures and Algorithms",
    "cs.ET": "Emerging Technologies",
    "cs.FL": "Formal Languages and Automata Theory",
    "cs.GL": "General Literature",
    "cs.GR": "Graphics",
    "cs.GT": "Computer Science and Game Theory",
    "cs.HC": "Human-Computer Interaction",
    "cs.IR": "Information Retrieval",
    "cs.IT": "Information Theory",
    "cs.LG": "Machine Learning",
    "cs.LO": "Logic in Computer Science",
    "cs.MA": "Multiagent Systems",
    "cs.MM": "Multimedia",
    "cs.MS": "Mathematical Software",
    "cs.NA": "Numerical Analysis",
    "cs.NE": "Neural and Evolutionary Computing",
    "cs.NI": "Networking and Internet Architecture",
    "cs.OH": "Other Computer Science",
    "cs.OS": "Operating Systems",
    "cs.PF": "Performance",
    "cs.PL": "Programming Languages",
    "cs.RO": "Robotics",
    "cs.SC": "Symbolic Computation",
    "cs.SD": "Sound",
    "cs.SE": "Software Engineering",
    "cs.SI": "Social and Information Networks",
    "cs.SY": "Systems and Control",
    "eess.AS": "Audio and Speech Processing",
    "eess.IV": "Image and Video Processing",
    "eess.SP": "Signal Processing",
    "eess.SY": "Systems and Control",
    "stat.ML": "Machine Learning (Statistics)",
    "stat.AP": "Applications",
    "stat.CO": "Computation",
    "stat.ME": "Methodology",
    "math.NA": "Numerical Analysis",
    "math.OC": "Optimization and Control",
    "math.IT": "Information Theory",
    "q-bio.NC": "Neurons and Cognition",
    "physics.comp-ph": "Computational Physics",
    "quant-ph": "Quantum Physics",
}


@dataclass(frozen=True)
class Case:
    """One candidate set with ground truth: a listing day or an HF day."""

    name: str
    split: str
    papers: list[Paper]
    cats: dict[str, frozenset[str]]  # paper key -> categories


def _listing_records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _strs(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list | tuple) else []


def _paper(r: dict[str, object]) -> Paper:
    return Paper(
        title=" ".join(str(r["title"]).split()),
        abstract=" ".join(str(r.get("summary") or "").split()),
        arxiv_id=str(r["id"]),
        authors=tuple(str(a) for a in r.get("authors") or ()),  # type: ignore[attr-defined]
    )


def load_cases() -> tuple[list[Case], dict[str, Paper], dict[str, frozenset[str]]]:
    """The cases, every labelled paper by key (for likes), and their categories."""
    pool: dict[str, Paper] = {}
    cats: dict[str, frozenset[str]] = {}
    cases: list[Case] = []
    for day in (*LISTING_DEV, *LISTING_TEST):
        seen: dict[str, Paper] = {}
        for r in _listing_records(LISTINGS / f"{day}.jsonl"):
            p = _paper(r)
            seen.setdefault(p.key, p)
            cats[p.key] = frozenset(_strs(r["categories"]))
        pool.update(seen)
        split = "dev" if day in LISTING_DEV else "test"
        cases.append(
            Case(f"listing {day}", split, sorted(seen.values(), key=lambda p: p.key), cats)
        )
    for r in _listing_records(LISTINGS / "hf-joined.jsonl"):
        p = _paper(r)
        pool.setdefault(p.key, p)
        cats.setdefault(p.key, frozenset(_strs(r["categories"])))
    for path in sorted(HF_DAYS.glob("*.json")):
        hf_day = date.fromisoformat(path.stem)
        hf = [
            p
            for p in parse_daily_papers(path.read_bytes(), str(path), list_date=hf_day)
            if p.key in cats
        ]
        if len(hf) >= 6:
            split = "dev" if hf_day < HF_SPLIT else "test"
            cases.append(Case(f"hf {hf_day}", split, hf, cats))
    return cases, pool, cats


# --- consecutive days for the simulated reader (see feedback_eval) ---------------------

_OAI_NS = {"o": "http://www.openarchives.org/OAI/2.0/", "a": "http://arxiv.org/OAI/arXiv/"}


def oai_records(path: Path) -> list[tuple[Paper, date, frozenset[str]]]:
    """(paper, first-version date, categories) of every record of an OAI-PMH page."""
    from lxml import etree

    out = []
    for meta in etree.parse(str(path)).iterfind(".//a:arXiv", _OAI_NS):
        authors = tuple(
            " ".join(
                x
                for x in (
                    a.findtext("a:forenames", "", _OAI_NS),
                    a.findtext("a:keyname", "", _OAI_NS),
                )
                if x
            )
            for a in meta.iterfind("a:authors/a:author", _OAI_NS)
        )
        paper = Paper(
            title=" ".join(meta.findtext("a:title", "", _OAI_NS).split()),
            abstract=" ".join(meta.findtext("a:abstract", "", _OAI_NS).split()),
            arxiv_id=meta.findtext("a:id", "", _OAI_NS),
            authors=authors,
        )
        created = date.fromisoformat(meta.findtext("a:created", "", _OAI_NS))
        out.append((paper, created, frozenset(meta.findtext("a:categories", "", _OAI_NS).split())))
    return out


def oai_listing_days(path: Path, split: str) -> list[Case]:
    """A harvest page cut into arXiv's daily listings: a weekday's submissions are one
    listing, and Friday's, Saturday's and Sunday's are one (announced on Monday). Batches
    of fewer than 40 papers (the stragglers before the first full day) are left out."""
    by_day: dict[date, list[tuple[Paper, frozenset[str]]]] = {}
    for paper, created, categories in oai_records(path):
        day = created - timedelta(days=max(created.weekday() - 4, 0))
        by_day.setdefault(day, []).append((paper, categories))
    cases = []
    for day, rows in sorted(by_day.items()):
        if len(rows) >= 40:
            cats = {p.key: c for p, c in rows}
            papers = sorted({p.key: p for p, _ in rows}.values(), key=lambda p: p.key)
            cases.append(Case(f"oai {day}", split, papers, cats))
    return cases


def oai_batches(path: Path, split: str, n: int) -> list[Case]:
    """A harvest page cut into `n` batches of papers in submission order."""
    rows = sorted(oai_records(path), key=lambda r: (r[1], r[0].key))
    size = math.ceil(len(rows) / n)
    cases = []
    for start in range(0, len(rows), size):
        batch = rows[start : start + size]
        cats = {p.key: c for p, _, c in batch}
        name = f"oai {batch[0][1]}..{batch[-1][1]}"
        cases.append(Case(name, split, [p for p, _, _ in batch], cats))
    return cases


def subscribers_for(
    case: Case, pool: dict[str, Paper]
) -> tuple[list[Subscriber], dict[str, set[str]], list[Paper]]:
    """Topic and like subscribers for the case's categories, their relevant keys, history."""
    counts = Counter(c for p in case.papers for c in case.cats[p.key])
    first = min(p.key for p in case.papers)
    earlier = sorted(k for k in pool if k < first)
    subs: list[Subscriber] = []
    relevant: dict[str, set[str]] = {}
    history: list[Paper] = []
    for cat, n in sorted(counts.items()):
        if n < MIN_RELEVANT or cat not in CATEGORY_NAMES:
            continue
        rel = {p.key for p in case.papers if cat in case.cats[p.key]}
        subs.append(Subscriber(f"topic:{cat}", topics=(CATEGORY_NAMES[cat],)))
        relevant[f"topic:{cat}"] = rel
        liked_pool = [k for k in earlier if cat in case.cats[k]]
        if len(liked_pool) >= N_LIKES:
            rng = random.Random(f"{case.name}/{cat}")
            liked = [pool[k] for k in rng.sample(liked_pool, N_LIKES)]
            history += liked
            subs.append(Subscriber(f"like:{cat}", like=tuple(p.arxiv_id or "" for p in liked)))
            relevant[f"like:{cat}"] = rel
    return subs, relevant, history


# --- metrics --------------------------------------------------------------------------


def ndcg(ranked: Sequence[str], rel: set[str], k: int = 10) -> float:
    dcg = sum(1.0 / math.log2(i + 2) for i, key in enumerate(ranked[:k]) if key in rel)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(rel))))
    return dcg / ideal if ideal else 0.0


def precision(ranked: Sequence[str], rel: set[str], k: int = 5) -> float:
    return sum(1 for key in ranked[:k] if key in rel) / k


def recall(ranked: Sequence[str], rel: set[str], k: int = 20) -> float:
    return sum(1 for key in ranked[:k] if key in rel) / len(rel) if rel else 0.0


# --- methods: each returns subscriber -> full ranking of the candidate keys ------------

Method = Callable[[list[Paper], list[Subscriber], list[Paper]], dict[str, list[str]]]


def _order(papers: Sequence[Paper], scores: Sequence[float]) -> list[str]:
    return [
        p.key for _, p in sorted(zip(scores, papers, strict=True), key=lambda t: (-t[0], t[1].key))
    ]


def m_random(
    papers: list[Paper], subs: list[Subscriber], history: list[Paper]
) -> dict[str, list[str]]:
    out = {}
    for s in subs:
        keys = sorted(p.key for p in papers)
        random.Random(s.email + str(len(papers))).shuffle(keys)
        out[s.email] = keys
    return out


def m_upvotes(
    papers: list[Paper], subs: list[Subscriber], history: list[Paper]
) -> dict[str, list[str]]:
    order = _order(papers, [float(p.upvotes or 0) for p in papers])
    return {s.email: order for s in subs}


def m_keyword(
    papers: list[Paper], subs: list[Subscriber], history: list[Paper]
) -> dict[str, list[str]]:
    """Substring match of the topic (or its words) in title + abstract, title counting double."""
    out = {}
    for s in subs:
        if not s.topics:
            continue
        phrase = s.topics[0].lower()
        ws = content_words(phrase)
        scores = []
        for p in papers:
            t, a = p.title.lower(), p.abstract.lower()
            scores.append(
                2.0 * (phrase in t) + (phrase in a) + 0.1 * sum(w in t or w in a for w in ws)
            )
        out[s.email] = _order(papers, scores)
    return out


def m_bm25(
    papers: list[Paper], subs: list[Subscriber], history: list[Paper]
) -> dict[str, list[str]]:
    """Plain Okapi BM25 (k1=1.5, b=0.75) over title + abstract, whitespace-lowercase tokens."""
    docs = [f"{p.title} {p.abstract}".lower().split() for p in papers]
    n = len(docs)
    avg = sum(map(len, docs)) / n
    df = Counter(w for d in docs for w in set(d))
    tfs = [Counter(d) for d in docs]
    out = {}
    for s in subs:
        if not s.topics:
            continue
        q = s.topics[0].lower().split()
        scores = []
        for d, tf in zip(docs, tfs, strict=True):
            sc = 0.0
            for w in q:
                if w in tf:
                    idf = math.log(1 + (n - df[w] + 0.5) / (df[w] + 0.5))
                    sc += idf * tf[w] * 2.5 / (tf[w] + 1.5 * (0.25 + 0.75 * len(d) / avg))
            scores.append(sc)
        out[s.email] = _order(papers, scores)
    return out


def m_svm(
    papers: list[Paper], subs: list[Subscriber], history: list[Paper]
) -> dict[str, list[str]]:
    """arxiv-sanity-lite: TF-IDF (1-2 grams) + LinearSVC(C=0.01, balanced), likes positive."""
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.svm import LinearSVC
    except ImportError:
        return {}
    by_id = {p.arxiv_id: p for p in history}
    corpus = list(papers) + [p for p in history if p.key not in {q.key for q in papers}]
    vec = TfidfVectorizer(
        lowercase=True,
        strip_accents="unicode",
        ngram_range=(1, 2),
        max_features=20000,
        norm="l2",
        use_idf=True,
        smooth_idf=True,
        sublinear_tf=True,
        max_df=0.1,
        min_df=1,
    )
    x = vec.fit_transform([f"{p.title} {p.abstract}" for p in corpus])
    out = {}
    for s in subs:
        if not s.like:
            continue
        liked = {by_id[i].key for i in s.like if i in by_id}
        y = np.array([p.key in liked for p in corpus], dtype=int)
        clf = LinearSVC(class_weight="balanced", verbose=False, max_iter=10000, tol=1e-6, C=0.01)
        clf.fit(x, y)
        scores = clf.decision_function(x[: len(papers)])
        out[s.email] = _order(papers, list(scores))
    return out


def m_minilm(vectors: dict[str, np.ndarray]) -> Method:
    """The genuine all-MiniLM-L6-v2: cosine to the topic, or mean cosine to the likes."""

    def run(
        papers: list[Paper], subs: list[Subscriber], history: list[Paper]
    ) -> dict[str, list[str]]:
        by_id = {p.arxiv_id: p for p in history}
        e = np.stack([vectors[p.key] for p in papers])
        out = {}
        for s in subs:
            if s.topics:
                q = vectors[f"phrase:{s.topics[0]}"][None, :]
            else:
                q = np.stack([vectors[by_id[i].key] for i in s.like if i in by_id])
            out[s.email] = _order(papers, list((q @ e.T).mean(axis=0)))
        return out

    return run


class DiskCache(MemoryEmbeddingCache):
    """The EmbeddingCache kept on disk between runs (embedding every day is slow)."""

    def __init__(self, path: Path | None) -> None:
        super().__init__()
        self.path = path
        self.dirty = False
        if path is not None and path.exists():
            with np.load(path) as data:
                for model, key, vec in zip(
                    data["models"].tolist(), data["keys"].tolist(), data["vecs"], strict=True
                ):
                    self._data[(model, key)] = vec

    def put(self, vectors: Mapping[str, np.ndarray], model: str) -> None:
        super().put(vectors, model)
        self.dirty = self.dirty or bool(vectors)

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        by_dims: dict[int, list[tuple[str, str]]] = {}
        for model, key in self._data:
            by_dims.setdefault(len(self._data[(model, key)]), []).append((model, key))
        # One file holds one width: keep the widest model's vectors (the full encoder).
        rows = by_dims[max(by_dims)] if by_dims else []
        np.savez(
            self.path,
            models=np.array([m for m, _ in rows]),
            keys=np.array([k for _, k in rows]),
            vecs=np.stack([self._data[r] for r in rows]) if rows else np.zeros((0, 1)),
        )
        self.dirty = False


CACHE = DiskCache(None)


def m_ranker(kind: str, fusion: dict[str, float] | None = None, **engine_kw: float) -> Method:
    def run(
        papers: list[Paper], subs: list[Subscriber], history: list[Paper]
    ) -> dict[str, list[str]]:
        if kind in ("onnx", "static"):
            from digest.rank.semantic import make_semantic

            ranker: object = make_semantic(CACHE, route=kind)
        else:
            ranker = make_ranker(kind, CACHE)
        assert isinstance(ranker, Engine)
        for k, v in engine_kw.items():
            setattr(ranker, k, v)
        model = ranker.model
        if fusion:
            base = model.fusion  # type: ignore[attr-defined]
            model.fusion = replace(base, **fusion)  # type: ignore[attr-defined]
        got = ranker.rank(papers, subs, history=history, lift_thresholds=True)
        return {e: [r.paper.key for r in ranked] for e, ranked in got.items()}

    return run


def m_onnx_alone() -> Method:
    """all-MiniLM-L6-v2 through our ONNX int8 graph, scored as the torch reference is."""
    from digest.rank.onnx import OnnxEncoder

    enc = OnnxEncoder()

    def vecs(keys: list[str], texts: list[str]) -> np.ndarray:
        model = enc.model + "/plain"
        found = CACHE.get(keys, model)
        miss = [i for i, k in enumerate(keys) if k not in found]
        if miss:
            fresh = enc.encode([texts[i] for i in miss])
            CACHE.put({keys[i]: fresh[r] for r, i in enumerate(miss)}, model)
            found = CACHE.get(keys, model)
        return np.stack([found[k] for k in keys])

    def run(
        papers: list[Paper], subs: list[Subscriber], history: list[Paper]
    ) -> dict[str, list[str]]:
        by_id = {p.arxiv_id: p for p in history}
        e = vecs([p.key for p in papers], [f"{p.title}. {p.abstract}" for p in papers])
        out = {}
        for s in subs:
            if s.topics:
                q = vecs([f"phrase:{s.topics[0]}"], [s.topics[0]])
            else:
                liked = [by_id[i] for i in s.like if i in by_id]
                q = vecs([p.key for p in liked], [f"{p.title}. {p.abstract}" for p in liked])
            out[s.email] = _order(papers, list((q @ e.T).mean(axis=0)))
        return out

    return run


def evaluate(methods: dict[str, Method], split: str) -> None:
    cases, pool, _ = load_cases()
    chosen = [c for c in cases if split == "all" or c.split == split]
    print(f"split={split}: {len(chosen)} cases: {', '.join(c.name for c in chosen)}")
    for group in ("listing", "hf"):
        group_cases = [c for c in chosen if c.name.startswith(group)]
        if not group_cases:
            continue
        print(f"\n## {group} days ({len(group_cases)})")
        print(
            f"{'method':34} {'profile':6} {'n':>4} {'nDCG@10':>8} {'P@5':>6} {'R@20':>6} "
            f"{'s/case':>7}"
        )
        for name, method in methods.items():
            per: dict[str, list[tuple[float, float, float]]] = {"topic": [], "like": []}
            spent = 0.0
            for case in group_cases:
                subs, relevant, history = subscribers_for(case, pool)
                t = time.perf_counter()
                ranked = method(case.papers, subs, history)
                spent += time.perf_counter() - t
                for email, keys in ranked.items():
                    rel = relevant[email]
                    per[email.split(":")[0]].append(
                        (ndcg(keys, rel), precision(keys, rel), recall(keys, rel))
                    )
            for kind, rows in per.items():
                if rows:
                    a = np.array(rows).mean(axis=0)
                    print(
                        f"{name:34} {kind:6} {len(rows):>4} {a[0]:8.3f} {a[1]:6.3f} {a[2]:6.3f} "
                        f"{spent / len(group_cases):7.2f}"
                    )


# --- the simulated reader: feedback day after day ----------------------------------------


@dataclass(frozen=True)
class Stream:
    """Days in the order a reader sees them; `scored` says which days count and `after`
    how many days of feedback must come first for the summary."""

    name: str
    days: list[Case]
    after: int
    scored: str = ""  # only days whose name starts with this count ("" = all)


def streams(split: str) -> list[Stream]:
    cases, _, _ = load_cases()
    hf = [c for c in cases if c.name.startswith("hf") and c.split == split]
    listing = [c for c in cases if c.name.startswith("listing") and c.split == split]
    # On a date, arXiv's listing comes out before that day's Hugging Face list fills up.
    mixed = sorted(hf + listing, key=lambda c: (c.name.split()[1], c.name.startswith("hf")))
    everything = sorted(
        [c for c in cases if c.name.startswith(("hf", "listing"))],
        key=lambda c: (c.name.split()[1], c.name.startswith("hf")),
    )
    if split == "test":
        return [
            Stream(
                "arXiv listing days 2016-01-28..02-12 (OAI-PMH, 12 in a row)",
                oai_listing_days(OAI / "ListRecords_set-cs_chunk092.xml", split),
                5,
            ),
            Stream(f"HF days 2026 ({len(hf)})", hf, 5),
            Stream("2026 listing days, after the HF days of April 2026", mixed, 5, "listing"),
            # A reader who has seen every labelled day since May 2025 (the dev days only
            # give feedback; the scored days are the test days).
            Stream(
                "every labelled day since 2025-05: 2026 listing days", everything, 0, "listing 2026"
            ),
            Stream("every labelled day since 2025-05: 2026 HF days", everything, 0, "hf 2026"),
        ]
    return [
        Stream(
            "dev: 2007 cs submissions in 12 batches (OAI-PMH)",
            oai_batches(OAI / "ListRecords_set-cs_chunk001.xml", split, 12),
            5,
        ),
        Stream(
            "dev: 1990-2007 cs submissions in 12 batches (OAI-PMH)",
            oai_batches(OAI / "ListRecords_set-cs_chunk102.xml", split, 12),
            5,
        ),
        Stream(f"dev: HF days 2025 ({len(hf)})", hf, 1),
        Stream("dev: 2025 listing days among the 2025 HF days", mixed, 0, "listing"),
    ]


def readers(days: Sequence[Case]) -> list[str]:
    """The categories with enough papers on some day to be scored."""
    out: set[str] = set()
    for case in days:
        counts = Counter(c for p in case.papers for c in case.cats[p.key])
        out |= {c for c, n in counts.items() if n >= MIN_RELEVANT and c in CATEGORY_NAMES}
    return sorted(out)


def simulate(ranker: Engine, stream: Stream, mode: str) -> list[list[float]]:
    """nDCG@10 of every scored reader on every day (a list per day).

    Each reader starts from its category's name as its topic. Every day it reads its top
    10, says "more" to the papers of its category there and "less" to the first one that
    is not; the next day's ranking uses all its feedback so far, as `feedback` ("learn"),
    as `like` entries naming the "more" papers ("likes"), or not at all ("none").
    """
    cats = readers(stream.days)
    given: dict[str, list[Feedback]] = {c: [] for c in cats}
    named: dict[str, Paper] = {}
    out = []
    for case in stream.days:
        subs = [
            Subscriber(
                f"topic:{c}",
                topics=(CATEGORY_NAMES[c],),
                like=tuple(f.paper_key for f in given[c] if f.verdict == "more")
                if mode == "likes"
                else (),
            )
            for c in cats
        ]
        history = sorted(named.values(), key=lambda p: p.key) if mode != "none" else []
        feedback = {f"topic:{c}": given[c] for c in cats} if mode == "learn" else None
        got = ranker.rank(
            case.papers, subs, history=history, lift_thresholds=True, feedback=feedback
        )
        day: list[float] = []
        by_key = {p.key: p for p in case.papers}
        for c in cats:
            keys = [r.paper.key for r in got[f"topic:{c}"]]
            rel = {p.key for p in case.papers if c in case.cats[p.key]}
            if len(rel) >= MIN_RELEVANT and case.name.startswith(stream.scored):
                day.append(ndcg(keys, rel))
            top = keys[:10]
            more = [k for k in top if k in rel]
            less = [k for k in top if k not in rel][:1]
            given[c] += [Feedback(k, "more", by_key[k].title) for k in more]
            given[c] += [Feedback(k, "less", by_key[k].title) for k in less]
            named.update((k, by_key[k]) for k in (*more, *less))
        out.append(day)
    return out


def feedback_eval(split: str, learning: dict[str, float] | None, kinds: Sequence[str]) -> None:
    """The simulated reader over each stream: no feedback, feedback as likes, learned."""
    from digest.rank.semantic import make_semantic

    modes = ("none", "likes", "learn")
    for kind in kinds:
        ranker = make_semantic(CACHE, route=kind) if kind != "lexical" else make_ranker(kind)
        assert isinstance(ranker, Engine)
        if learning:
            ranker.learning = replace(ranker.learning, **learning)
        for stream in [
            s for part in ("dev", "test") if split in (part, "all") for s in streams(part)
        ]:
            t = time.perf_counter()
            runs = {m: simulate(ranker, stream, m) for m in modes}
            spent = time.perf_counter() - t
            print(
                f"\n## {kind}: {stream.name}: {len(readers(stream.days))} readers ({spent:.0f} s)"
            )
            print(f"{'day':34} {'readers':>7} " + " ".join(f"{m:>7}" for m in modes))
            for d, case in enumerate(stream.days):
                n = len(runs["none"][d])
                if n:
                    cells = " ".join(f"{np.mean(runs[m][d]):7.3f}" for m in modes)
                    print(f"{case.name:34} {n:>7} {cells}")
            for label, first in ((f"after {stream.after} days", stream.after), ("all days", 0)):
                rows = {m: [v for day in runs[m][first:] for v in day] for m in modes}
                if rows["none"]:
                    cells = " ".join(f"{np.mean(rows[m]):7.3f}" for m in modes)
                    print(f"{label:34} {len(rows['none']):>7} {cells}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", default="test", choices=["dev", "test", "all"])
    ap.add_argument("--minilm", help="reference vectors from tools/minilm_embed.py")
    ap.add_argument("--methods", nargs="*")
    ap.add_argument(
        "--cache",
        default=str(ROOT.parent / "rankcache" / "eval-embeddings.npz"),
        help="embeddings kept between runs ('' for none)",
    )
    ap.add_argument("--fusion", help="JSON of Fusion fields to try, e.g. '{\"alpha\": 0.8}'")
    ap.add_argument(
        "--feedback",
        action="store_true",
        help="the simulated reader: nDCG@10 per day with no feedback, as likes, learned",
    )
    ap.add_argument("--learning", help="JSON of Learning fields to try, e.g. '{\"weight\": 3}'")
    ap.add_argument("--kinds", nargs="*", default=["onnx"], help="routes for --feedback")
    args = ap.parse_args()
    global CACHE
    CACHE = DiskCache(Path(args.cache) if args.cache else None)
    if args.feedback:
        try:
            feedback_eval(args.split, json.loads(args.learning or "{}"), args.kinds)
        finally:
            CACHE.save()
        return
    methods: dict[str, Method] = {
        "random": m_random,
        "upvotes": m_upvotes,
        "keyword substring": m_keyword,
        "BM25 (plain)": m_bm25,
        "TF-IDF + SVM (arxiv-sanity-lite)": m_svm,
        "MiniLM-L6 (ONNX int8, alone)": m_onnx_alone(),
        "ours: lexical": m_ranker("lexical"),
        "ours: semantic static": m_ranker("static"),
        "ours: semantic ONNX (default)": m_ranker("onnx"),
    }
    if args.fusion:
        methods["ours: ONNX + fusion " + args.fusion] = m_ranker("onnx", json.loads(args.fusion))
    if args.minilm:
        data = np.load(args.minilm)
        vectors = dict(zip(data["keys"].tolist(), data["vecs"], strict=True))
        methods["MiniLM-L6 (torch, reference)"] = m_minilm(vectors)
    if args.methods:
        methods = {k: v for k, v in methods.items() if any(m in k for m in args.methods)}
    try:
        evaluate(methods, args.split)
    finally:
        CACHE.save()


if __name__ == "__main__":
    main()
