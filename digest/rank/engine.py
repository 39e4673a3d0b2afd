"""Turns per-phrase and per-liked-paper relevance into each subscriber's digest.

Work is split so that nothing is done per (subscriber, paper) in Python:
1. the relevance model scores each *distinct* topic phrase and liked paper against the
   day's papers (shared by all subscribers who name them);
2. subscribers are processed in blocks; a block's relevance is one sparse-by-dense matrix
   product (a power mean over the subscriber's phrases and likes), then popularity,
   exclusions, followed authors, eligibility and the threshold are array operations;
3. Python only loops over the few papers that are actually selected, to write the "why".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from digest.models import Paper, RankedPaper, Subscriber
from digest.rank.text import (
    LikeResolver,
    matches_phrase,
    name_matches,
    normalise_name,
    upvotes_of,
    words,
)

# Relevance is on a 0..1 scale (see RANKING.md): below this a paper is not sent unless
# the subscriber sets their own `min_score`.
DEFAULT_MIN_SCORE = 0.45
# Power means: p=1 is the average, large p approaches the maximum. Topics are several
# separate interests (a paper needs to match one); likes describe one taste together.
TOPIC_POWER = 8.0
LIKE_POWER = 1.0
# A why-line names a phrase or liked paper only when it carries at least this relevance.
WHY_MIN = 0.25
BLOCK = 4096


class RelevanceModel(Protocol):
    """Scores distinct profile items against one day's papers, each in 0..1."""

    name: str

    def prepare(self, papers: Sequence[Paper], history: Sequence[Paper]) -> object: ...

    def phrase_scores(self, day: object, phrases: Sequence[str]) -> np.ndarray: ...

    def like_scores(self, day: object, liked: Sequence[Paper]) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class _Items:
    """The distinct phrases, liked papers, exclusions and authors of all subscribers."""

    phrases: list[str]
    likes: list[Paper]
    excludes: list[str]
    authors: list[str]
    sub_phrases: list[list[int]]
    sub_likes: list[list[int]]
    sub_excludes: list[list[int]]
    sub_authors: list[list[int]]


def dedupe(papers: Sequence[Paper]) -> list[Paper]:
    """One paper per key, sorted by key: the ranking must not depend on input order.

    When a key repeats (the same paper from two sources), the fuller record wins.
    """
    best: dict[str, Paper] = {}
    for p in papers:
        cur = best.get(p.key)
        if cur is None or _fullness(p) > _fullness(cur):
            best[p.key] = p
    return [best[k] for k in sorted(best)]


def _fullness(p: Paper) -> tuple[int, int, int, str, str]:
    return (upvotes_of(p), len(p.abstract), len(p.ai_keywords), p.title, p.source)


def popularity_vector(papers: Sequence[Paper]) -> np.ndarray:
    """0..1, log-scaled upvotes relative to the day's most upvoted paper."""
    ups = np.array([upvotes_of(p) for p in papers], dtype=np.float64)
    top = float(ups.max()) if len(ups) else 0.0
    if top <= 0:
        return np.zeros(len(papers), dtype=np.float32)
    return (np.log1p(ups) / math.log1p(top)).astype(np.float32)


class Engine:
    """The Ranker implementation shared by every relevance model."""

    def __init__(
        self,
        model: RelevanceModel,
        *,
        default_min_score: float = DEFAULT_MIN_SCORE,
        topic_power: float = TOPIC_POWER,
        like_power: float = LIKE_POWER,
    ) -> None:
        self.model = model
        self.name = model.name
        self.default_min_score = getattr(model, "default_min_score", default_min_score)
        self.topic_power = topic_power
        self.like_power = like_power

    def rank(
        self,
        papers: Sequence[Paper],
        subscribers: Sequence[Subscriber],
        *,
        history: Sequence[Paper] = (),
        eligible: Mapping[str, Collection[str]] | None = None,
        lift_thresholds: bool = False,
    ) -> RankedLists:
        day = dedupe(papers)
        if not day or not subscribers:
            return RankedLists(self, None, subscribers)
        resolver = LikeResolver([*history, *day])
        items = _collect(subscribers, resolver)
        prepared = self.model.prepare(day, dedupe(history))
        topic = self.model.phrase_scores(prepared, items.phrases)
        like = self.model.like_scores(prepared, items.likes)
        day_words = [words(" ".join((p.title, p.abstract, " ; ".join(p.ai_keywords)))) for p in day]
        excl = _phrase_mask(day_words, items.excludes)
        index = {p.key: i for i, p in enumerate(day)}
        auth = _author_mask(day, items.authors)
        like_self = np.zeros((len(items.likes), len(day)), dtype=np.float32)
        for k, liked in enumerate(items.likes):
            if liked.key in index:
                like_self[k, index[liked.key]] = 1.0
        pop = popularity_vector(day)
        ctx = _DayContext(
            day,
            index,
            items,
            topic,
            like,
            excl,
            auth,
            like_self,
            pop,
            _powered(topic, self.topic_power),
            _powered(like, self.like_power),
            sp.csr_matrix(excl),
            sp.csr_matrix(like_self),
            sp.csr_matrix(auth),
        )
        result = RankedLists(self, ctx, subscribers)
        for start in range(0, len(subscribers), BLOCK):
            block = list(range(start, min(start + BLOCK, len(subscribers))))
            self._rank_block(ctx, subscribers, block, eligible, lift_thresholds, result)
        return result

    def relevance(self, ctx: _DayContext, block: Sequence[int]) -> np.ndarray:
        """(len(block), N) relevance in 0..1: the larger of the topic and like power means."""
        rel_t = _power_mean(
            ctx.topic_powered, [ctx.items.sub_phrases[i] for i in block], self.topic_power
        )
        rel_l = _power_mean(
            ctx.like_powered, [ctx.items.sub_likes[i] for i in block], self.like_power
        )
        lift = float(getattr(self.model, "like_lift", 1.0))
        if lift == 2.0:  # a monotone recalibration of like relevance (see semantic.Fusion)
            rel_l *= 2.0 - rel_l  # = 1 - (1 - x) ** 2, without a slow power
        elif lift != 1.0:
            rel_l = 1.0 - np.power(1.0 - rel_l, lift, dtype=np.float32)
        out: np.ndarray = np.maximum(rel_t, rel_l, out=rel_t)
        return out

    def _rank_block(
        self,
        ctx: _DayContext,
        subscribers: Sequence[Subscriber],
        block: list[int],
        eligible: Mapping[str, Collection[str]] | None,
        lift: bool,
        result: RankedLists,
    ) -> None:
        n = len(ctx.day)
        subs = [subscribers[i] for i in block]
        rel = self.relevance(ctx, block)
        has_profile = np.array([bool(s.topics or s.like) for s in subs])
        w = np.array([min(max(s.popularity, 0.0), 1.0) for s in subs], dtype=np.float32)
        w = np.where(has_profile, w, 1.0).astype(np.float32)
        if w.any():
            score = rel * (1.0 - w)[:, None]
            score += w[:, None] * ctx.pop[None, :]
        else:
            score = rel
        excluded = _any(ctx.excl_sparse, [ctx.items.sub_excludes[i] for i in block], n)
        excluded |= _any(ctx.like_self_sparse, [ctx.items.sub_likes[i] for i in block], n)
        followed = _any(ctx.auth_sparse, [ctx.items.sub_authors[i] for i in block], n)
        if lift:
            passing = np.ones_like(excluded)
        else:
            thr = np.array(
                [self.default_min_score if s.min_score is None else s.min_score for s in subs],
                dtype=np.float32,
            )
            passing = (rel >= thr[:, None]) | ~has_profile[:, None]
        passing = (passing | followed) & ~excluded
        if eligible is not None:
            passing &= _eligible_mask(subs, eligible, ctx.index, n)
        # Followed authors sort first: lift them by more than any score can reach.
        order_key = score.copy()
        order_key[followed] += np.float32(2.0)
        order_key[~passing] = -np.inf
        limit = n if lift else max(1, max(s.max_papers for s in subs))
        limit = min(limit, n)
        if limit < n:
            top = np.argpartition(-order_key, limit - 1, axis=1)[:, :limit]
        else:
            top = np.tile(np.arange(n), (len(subs), 1))
        top_vals = np.take_along_axis(order_key, top, axis=1)
        # Ties break by key: papers are sorted by key, so by index.
        order = np.lexsort((top, -top_vals), axis=1)
        top = np.take_along_axis(top, order, axis=1)
        top_scores = np.take_along_axis(score, top, axis=1).round(4)
        top_pass = np.take_along_axis(passing, top, axis=1)
        top_followed = np.take_along_axis(followed, top, axis=1)
        cap = np.array([n if lift else max(s.max_papers, 0) for s in subs], dtype=np.int64)
        keep = top_pass & (np.arange(top.shape[1])[None, :] < cap[:, None])
        # The list is the leading run of kept papers (sorted, so the first miss ends it).
        counts = np.cumprod(keep, axis=1).sum(axis=1)
        width = int(counts.max()) if len(counts) else 0
        result.add_block(
            block,
            top[:, :width].astype(np.int32),
            top_scores[:, :width],
            top_followed[:, :width],
            counts.astype(np.int32),
            w,
        )

    def why(
        self, ctx: _DayContext, i: int, j: int, followed: bool, weight: float
    ) -> tuple[str, ...]:
        reasons: list[str] = []
        items = ctx.items
        if followed:
            reasons += [
                f"followed author {items.authors[a]}"
                for a in items.sub_authors[i]
                if ctx.auth[a, j]
            ]
        phrases = items.sub_phrases[i]
        if phrases:
            values = ctx.topic[phrases, j].tolist()
            hits = sorted(
                zip(values, phrases, strict=True), key=lambda t: (-t[0], items.phrases[t[1]])
            )
            # The best phrase, and others only when nearly as strong: a why-line must be true.
            floor = max(WHY_MIN, 0.8 * hits[0][0])
            reasons += [f"topic: {items.phrases[k]}" for v, k in hits[:3] if v >= floor]
        likes = items.sub_likes[i]
        if likes:
            values = ctx.like[likes, j].tolist()
            v, k = min(
                zip(values, likes, strict=True), key=lambda t: (-t[0], items.likes[t[1]].key)
            )
            if v >= WHY_MIN:
                reasons.append(f"like {_short(items.likes[k].title)}")
        upvotes = ctx.day[j].upvotes
        if upvotes and (weight > 0 or not reasons):
            reasons.append(f"{upvotes} upvotes")
        return tuple(reasons)


@dataclass(frozen=True, slots=True)
class _DayContext:
    day: list[Paper]
    index: dict[str, int]
    items: _Items
    topic: np.ndarray
    like: np.ndarray
    excl: np.ndarray
    auth: np.ndarray
    like_self: np.ndarray
    pop: np.ndarray
    topic_powered: np.ndarray
    like_powered: np.ndarray
    excl_sparse: sp.csr_matrix
    like_self_sparse: sp.csr_matrix
    auth_sparse: sp.csr_matrix


class RankedLists(Mapping[str, list[RankedPaper]]):
    """email -> that subscriber's digest list, built only when it is asked for.

    Ranking keeps a few arrays per subscriber (the chosen papers' indices, scores and
    followed-author flags); the RankedPaper objects and their `why` lines are made on
    lookup, so 100,000 subscribers do not cost a million Python objects up front.
    A subscriber named twice gets the list of their last entry, as with a dict.
    """

    def __init__(
        self, engine: Engine, ctx: _DayContext | None, subscribers: Sequence[Subscriber]
    ) -> None:
        self._engine = engine
        self._ctx = ctx
        self._row = {s.email: i for i, s in enumerate(subscribers)}
        n = len(subscribers)
        self._block_of = np.full(n, -1, dtype=np.int32)
        self._offset = np.zeros(n, dtype=np.int32)
        self._blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def add_block(
        self,
        rows: Sequence[int],
        top: np.ndarray,
        scores: np.ndarray,
        followed: np.ndarray,
        counts: np.ndarray,
        weights: np.ndarray,
    ) -> None:
        self._block_of[list(rows)] = len(self._blocks)
        self._offset[list(rows)] = np.arange(len(rows), dtype=np.int32)
        self._blocks.append((top, scores, followed, counts, weights))

    def __getitem__(self, email: str) -> list[RankedPaper]:
        i = self._row[email]  # KeyError for a stranger, as a dict would raise
        b = int(self._block_of[i])
        if b < 0 or self._ctx is None:
            return []
        top, scores, followed, counts, weights = self._blocks[b]
        r = int(self._offset[i])
        k = int(counts[r])
        ctx, weight = self._ctx, float(weights[r])
        return [
            RankedPaper(
                ctx.day[j],
                s,
                self._engine.why(ctx, i, j, f, weight),
            )
            for j, s, f in zip(
                top[r, :k].tolist(), scores[r, :k].tolist(), followed[r, :k].tolist(), strict=True
            )
        ]

    def __iter__(self) -> Iterator[str]:
        return iter(self._row)

    def __len__(self) -> int:
        return len(self._row)

    def __contains__(self, email: object) -> bool:
        return email in self._row


def _short(title: str, limit: int = 80) -> str:
    title = " ".join(title.split())
    return f'"{title}"' if len(title) <= limit else f'"{title[: limit - 1].rstrip()}…"'


def _collect(subscribers: Sequence[Subscriber], resolver: LikeResolver) -> _Items:
    """Distinct items, and each subscriber's item indices (profiles that repeat are
    looked up once: many subscribers share the same topics, exclusions or authors)."""
    like_papers: list[Paper] = []
    likes: dict[str, int] = {}
    resolved: dict[str, int] = {}  # like entry -> index in like_papers, -1 if unknown

    def like_index(entry: str) -> int:
        k = resolved.get(entry)
        if k is None:
            paper = resolver.resolve(entry)
            k = -1
            if paper is not None:
                if paper.key not in likes:
                    likes[paper.key] = len(like_papers)
                    like_papers.append(paper)
                k = likes[paper.key]
            resolved[entry] = k
        return k

    def strings(seen: dict[str, int]) -> Callable[[tuple[str, ...]], list[int]]:
        def index(values: tuple[str, ...]) -> list[int]:
            return sorted({seen.setdefault(v.strip(), len(seen)) for v in values if v.strip()})

        return index

    phrases: dict[str, int] = {}
    excludes: dict[str, int] = {}
    authors: dict[str, int] = {}
    kinds: list[tuple[Callable[[tuple[str, ...]], list[int]], list[list[int]]]] = [
        (strings(phrases), []),
        (lambda entries: sorted({k for k in map(like_index, entries) if k >= 0}), []),
        (strings(excludes), []),
        (strings(authors), []),
    ]
    memo: list[dict[tuple[str, ...], list[int]]] = [{}, {}, {}, {}]
    for s in subscribers:
        for (index, out), cache, values in zip(
            kinds, memo, (s.topics, s.like, s.exclude, s.authors), strict=True
        ):
            got = cache.get(values)
            if got is None:
                got = cache[values] = index(values)
            out.append(got)
    sp_, sl, se, sa = (out for _, out in kinds)
    return _Items(list(phrases), like_papers, list(excludes), list(authors), sp_, sl, se, sa)


def _membership(rows: Sequence[Sequence[int]], n_items: int, normalise: bool) -> sp.csr_matrix:
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(r) for r in rows])
    indices = np.fromiter((k for r in rows for k in r), dtype=np.int64, count=int(indptr[-1]))
    if normalise:
        data = np.repeat([1.0 / len(r) if r else 0.0 for r in rows], [len(r) for r in rows])
    else:
        data = np.ones(len(indices))
    return sp.csr_matrix((data.astype(np.float32), indices, indptr), shape=(len(rows), n_items))


def _powered(item_scores: np.ndarray, p: float) -> np.ndarray:
    """clip(item_scores, 0, 1) ** p, once per day (not once per block of subscribers)."""
    clipped: np.ndarray = np.clip(item_scores, 0.0, 1.0).astype(np.float32)
    if p == 1.0:
        return clipped
    out: np.ndarray = np.power(clipped, p, dtype=np.float32)
    return out


def _root(mean: np.ndarray, p: float) -> np.ndarray:
    """mean ** (1/p) in place; repeated square roots when p is 2, 4 or 8 (much faster)."""
    np.maximum(mean, 0.0, out=mean)
    if p == 1.0:
        return mean
    if p in (2.0, 4.0, 8.0):
        for _ in range(int(math.log2(p))):
            np.sqrt(mean, out=mean)
        return mean
    np.power(mean, 1.0 / p, out=mean)
    return mean


def _power_mean(powered: np.ndarray, rows: Sequence[Sequence[int]], p: float) -> np.ndarray:
    """Row i: (mean over rows[i] of item_scores**p) ** (1/p); 0 where rows[i] is empty.

    `powered` is `_powered(item_scores, p)`.
    """
    n = powered.shape[1]
    if powered.shape[0] == 0 or not any(rows):
        return np.zeros((len(rows), n), dtype=np.float32)
    m = _membership(rows, powered.shape[0], normalise=True)
    mean = np.asarray(m @ powered, dtype=np.float32)
    return _root(mean, p)


def _any(item_mask: sp.csr_matrix, rows: Sequence[Sequence[int]], n: int) -> np.ndarray:
    """Row i: the papers that any of the items rows[i] marks (masks are sparse)."""
    out = np.zeros((len(rows), n), dtype=bool)
    if item_mask.shape[0] == 0 or item_mask.nnz == 0 or not any(rows):
        return out
    m = _membership(rows, item_mask.shape[0], normalise=False)
    hits = sp.coo_matrix(m @ item_mask)
    out[hits.row, hits.col] = hits.data > 0
    return out


def _phrase_mask(day_words: Sequence[Sequence[str]], phrases: Sequence[str]) -> np.ndarray:
    """(len(phrases), N): the phrase occurs (as words, in order) in the paper's text."""
    joined = [f" {' '.join(w)} " for w in day_words]
    mask = np.zeros((len(phrases), len(day_words)), dtype=np.float32)
    for k, phrase in enumerate(phrases):
        needle = f" {' '.join(words(phrase))} "
        if needle.strip():
            mask[k] = [needle in text for text in joined]
    return mask


def _author_mask(day: Sequence[Paper], followed: Sequence[str]) -> np.ndarray:
    """(len(followed), N): the paper lists the followed author. Indexed by last name."""
    by_last: dict[str, list[tuple[int, str]]] = {}
    for j, p in enumerate(day):
        for name in p.authors:
            parts = normalise_name(name).split()
            if parts:
                by_last.setdefault(parts[-1], []).append((j, name))
    mask = np.zeros((len(followed), len(day)), dtype=np.float32)
    for k, name in enumerate(followed):
        parts = normalise_name(name).split()
        for j, author in by_last.get(parts[-1] if parts else "", ()):
            if name_matches(name, author):
                mask[k, j] = 1.0
    return mask


def _eligible_mask(
    subs: Sequence[Subscriber],
    eligible: Mapping[str, Collection[str]],
    index: Mapping[str, int],
    n: int,
) -> np.ndarray:
    """A subscriber missing from `eligible` may receive nothing (never resend by mistake)."""
    mask = np.zeros((len(subs), n), dtype=bool)
    for row, s in enumerate(subs):
        cols = [index[k] for k in eligible.get(s.email, ()) if k in index]
        mask[row, cols] = True
    return mask


__all__ = [
    "DEFAULT_MIN_SCORE",
    "Engine",
    "RankedLists",
    "RelevanceModel",
    "dedupe",
    "matches_phrase",
]
