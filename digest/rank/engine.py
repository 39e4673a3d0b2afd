"""Turns per-phrase and per-liked-paper relevance into each subscriber's digest.

Work is split so that nothing is done per (subscriber, paper) in Python:
1. the relevance model scores each *distinct* topic phrase and liked paper against the
   day's papers (shared by all subscribers who name them);
2. subscribers are processed in blocks; a block's relevance is one sparse-by-dense matrix
   product (a power mean over the subscriber's phrases and likes), then popularity,
   exclusions, followed authors, eligibility and the threshold are array operations;
3. Python only loops over the few papers that are actually selected, to write the "why".
Subscribers with feedback ("more / less like this") have their interests re-ordered by
the models of learn.py, fitted and applied a block of profiles at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from digest.models import Feedback, Paper, RankedPaper, Reason, Subscriber
from digest.rank.learn import (
    LIKES,
    TOPIC,
    Interest,
    Learner,
    Learning,
    Signals,
    signal,
    unpack,
)
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
# Feedback is named in a why-line ("you liked <title>") when the interest's learned score
# puts the paper at least this many standard deviations above the day's mean.
WHY_LEARNED_Z = 1.0
# ... and the paper stands out this much among the day's papers as like the one it names.
WHY_SIMILAR_Z = 1.5
# A subscriber with neither topics nor likes who says "more like this": their list is
# ranked half by upvotes (as before) and half by what they said "more" of, with no
# threshold, so one click tilts their trending digest rather than shrinking it.
TRENDING_TILT = 0.5
BLOCK = 4096


class RelevanceModel(Protocol):
    """Scores distinct profile items against one day's papers, each in 0..1."""

    name: str

    def prepare(self, papers: Sequence[Paper], history: Sequence[Paper]) -> object: ...

    def phrase_scores(self, day: object, phrases: Sequence[str]) -> np.ndarray: ...

    def like_scores(self, day: object, liked: Sequence[Paper]) -> np.ndarray: ...

    # Features for learning from feedback (rows comparable by cosine): the day's papers,
    # other papers, and topic phrases.
    def features(self, day: object) -> np.ndarray: ...

    def paper_features(self, day: object, papers: Sequence[Paper]) -> np.ndarray: ...

    def phrase_features(self, day: object, phrases: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class _Items:
    """The distinct phrases, liked papers, exclusions and authors of all subscribers,
    and the distinct profiles that name them."""

    phrases: list[str]
    likes: list[Paper]
    excludes: list[str]
    authors: list[str]
    sub_phrases: list[list[int]]
    sub_likes: list[list[int]]
    sub_excludes: list[list[int]]
    sub_authors: list[list[int]]
    feedback: list[Paper]  # the papers any feedback names, sorted by key
    sub_feedback: list[Signals]  # per profile: (index in `feedback`, "more"?)
    # Per distinct profile (the lists above are per profile too).
    has_profile: np.ndarray  # bool: topics or likes given
    weight: np.ndarray  # float32 popularity weight (1 without a profile)
    threshold: np.ndarray  # float32 minimum relevance
    cap: np.ndarray  # int64 most papers sent
    eligible_cols: list[np.ndarray] | None  # paper indices of each distinct eligible set
    eligible_of: np.ndarray  # int64 index into eligible_cols
    limit: int  # candidates taken per row before the exact sort: the largest cap, >= 1


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
        learning: Learning | None = None,
    ) -> None:
        self.model = model
        self.learning = learning or Learning()
        self.name = model.name
        self.default_min_score = getattr(model, "default_min_score", default_min_score)
        self.topic_power = topic_power
        self.like_power = like_power

    def index(self, papers: Sequence[Paper]) -> int:
        """Do the per-paper work every digest shares (embeddings) now; returns how many
        papers needed it. Ranking later finds it in the cache."""
        index = getattr(self.model, "index", None)
        return int(index(papers)) if index is not None else 0

    def rank(
        self,
        papers: Sequence[Paper],
        subscribers: Sequence[Subscriber],
        *,
        history: Sequence[Paper] = (),
        eligible: Mapping[str, Collection[str]] | None = None,
        lift_thresholds: bool = False,
        feedback: Mapping[str, Sequence[Feedback]] | None = None,
    ) -> RankedLists:
        """`feedback`: each subscriber's "more / less like this", by email; the papers it
        names must be in `history` (or among `papers`), others are ignored."""
        day = dedupe(papers)
        if not day or not subscribers:
            return RankedLists(self, None, subscribers, np.zeros(len(subscribers), np.int32))
        earlier = dedupe(history)
        resolver = LikeResolver([*history, *day])
        index = {p.key: i for i, p in enumerate(day)}
        fb_papers, signals = _signals(feedback, subscribers, [*earlier, *day])
        items, profile_of = _collect(
            subscribers,
            resolver,
            eligible,
            index,
            self.default_min_score,
            lift_thresholds,
            fb_papers,
            signals,
        )
        prepared = self.model.prepare(day, earlier)
        topic = self.model.phrase_scores(prepared, items.phrases)
        like = self.model.like_scores(prepared, items.likes)
        day_words = [words(" ".join((p.title, p.abstract, " ; ".join(p.ai_keywords)))) for p in day]
        excl = _phrase_mask(day_words, items.excludes)
        auth = _author_mask(day, items.authors)
        like_self = np.zeros((len(items.likes), len(day)), dtype=np.float32)
        for k, liked in enumerate(items.likes):
            if liked.key in index:
                like_self[k, index[liked.key]] = 1.0
        pop = popularity_vector(day)
        learner, orphan_row, orphan_scores = self._learn(prepared, items, index)
        ctx = _DayContext(
            day,
            index,
            items,
            topic,
            like,
            auth,
            pop,
            _powered(topic, self.topic_power),
            _powered(like, self.like_power),
            _membership(items.sub_phrases, len(items.phrases), normalise=True),
            _membership(items.sub_likes, len(items.likes), normalise=True),
            _membership(items.sub_excludes, len(items.excludes), normalise=False),
            _membership(items.sub_authors, len(items.authors), normalise=False),
            sp.csr_matrix(excl),
            sp.csr_matrix(like_self),
            sp.csr_matrix(auth),
            learner,
            orphan_row,
            orphan_scores,
            [p.key for p in items.likes] if learner is not None else [],
        )
        result = RankedLists(self, ctx, subscribers, profile_of)
        n_profiles = len(items.sub_phrases)
        for start in range(0, n_profiles, BLOCK):
            self._rank_block(ctx, start, min(start + BLOCK, n_profiles), lift_thresholds, result)
        return result

    def _learn(
        self, prepared: object, items: _Items, index: Mapping[str, int]
    ) -> tuple[Learner | None, dict[int, int], np.ndarray]:
        """Every feedback profile's interests (see learn.py), and the like scores of the
        "more" papers that are liked papers of their own (by feedback index)."""
        profiles = [p for p, sig in enumerate(items.sub_feedback) if sig]
        if not profiles:
            return None, {}, np.zeros((0, 0), dtype=np.float32)
        model = self.model
        learner = Learner(
            self.learning,
            model.features(prepared),
            model.phrase_features(prepared, items.phrases),
            model.paper_features(prepared, items.likes),
            model.paper_features(prepared, items.feedback),
            [index.get(p.key, -1) for p in items.feedback],
        )
        for p in profiles:
            learner.add_profile(p, items.sub_phrases[p], items.sub_likes[p], items.sub_feedback[p])
        # The "more" papers of a profile with neither topics nor likes are its liked papers.
        orphans = sorted({f for its in learner.profiles.values() for it in its for f in it.orphans})
        scores = model.like_scores(prepared, [items.feedback[f] for f in orphans])
        return learner, {f: r for r, f in enumerate(orphans)}, scores

    def _interest_priors(self, ctx: _DayContext, interests: Sequence[Interest]) -> np.ndarray:
        """(len(interests), N): each interest's own score without feedback, in 0..1 (a
        topic's phrase score; the mean of the liked papers' scores)."""
        out = np.empty((len(interests), len(ctx.day)), dtype=np.float32)
        topics = [r for r, it in enumerate(interests) if it.kind == TOPIC]
        out[topics] = ctx.topic[[interests[r].item for r in topics]]
        likes = [r for r, it in enumerate(interests) if it.kind == LIKES]
        if likes:
            # The mean over each interest's liked papers, as one sparse product.
            members = [
                [
                    *interests[r].likes,
                    *(len(ctx.like) + ctx.orphan_row[f] for f in interests[r].orphans),
                ]
                for r in likes
            ]
            table = np.vstack([ctx.like, ctx.orphan_scores]) if len(ctx.orphan_scores) else ctx.like
            m = _membership(members, len(table), normalise=True)
            out[likes] = np.asarray(m @ np.clip(table, 0.0, 1.0), dtype=np.float32)
        clipped: np.ndarray = np.clip(out, 0.0, 1.0)
        return clipped

    def _learned_relevance(
        self, ctx: _DayContext, fed: Sequence[int]
    ) -> tuple[np.ndarray, list[tuple[int, int]], np.ndarray, np.ndarray, np.ndarray]:
        """Feedback profiles' relevance (len(fed), N): their interests after learning,
        combined as without feedback (the power mean of the topics; the larger of that
        and the likes). Also each profile's slice of the interest rows, the rows' values
        and how far the learned score puts each paper above the day's mean (for the why)."""
        learner = ctx.learner
        assert learner is not None
        interests = [it for p in fed for it in learner.profiles[p]]
        spans: list[tuple[int, int]] = []
        for p in fed:
            start = spans[-1][1] if spans else 0
            spans.append((start, start + len(learner.profiles[p])))
        gains = np.array([learner.gain(it) for it in interests], dtype=np.float64)
        priors = self._interest_priors(ctx, interests)
        values, z = learner.blend(learner.fit(interests), gains, priors)
        topic_rows = [[r for r in range(a, b) if interests[r].kind == TOPIC] for a, b in spans]
        n = len(ctx.day)
        out = np.zeros((len(fed), n), dtype=np.float32)
        member = _membership(topic_rows, len(interests), normalise=True)
        pm = _power_mean(_powered(values, self.topic_power), member, self.topic_power, n)
        if pm is not None:
            out = pm
        for r, (a, b) in enumerate(spans):
            for i in range(a, b):
                if interests[i].kind == LIKES:
                    np.maximum(out[r], values[i], out=out[r])
        return out, spans, values, z, priors

    def relevance(self, ctx: _DayContext, start: int, stop: int) -> np.ndarray:
        """(stop - start, N) relevance in 0..1 of profiles start..stop: the larger of the
        topic and like power means."""
        n = len(ctx.day)
        rel_t = _power_mean(ctx.topic_powered, ctx.m_phrases[start:stop], self.topic_power, n)
        rel_l = _power_mean(ctx.like_powered, ctx.m_likes[start:stop], self.like_power, n)
        lift = float(getattr(self.model, "like_lift", 1.0))
        if rel_l is not None:
            if lift == 2.0:  # a monotone recalibration of like relevance (see semantic.Fusion)
                rel_l *= 2.0 - rel_l  # = 1 - (1 - x) ** 2, without a slow power
            elif lift != 1.0:
                rel_l = 1.0 - np.power(1.0 - rel_l, lift, dtype=np.float32)
        # A block without topics (or likes) skips that half: both are >= 0, 0 when empty.
        if rel_t is None:
            return np.zeros((stop - start, n), dtype=np.float32) if rel_l is None else rel_l
        if rel_l is None:
            return rel_t
        out: np.ndarray = np.maximum(rel_t, rel_l, out=rel_t)
        return out

    def _rank_block(
        self, ctx: _DayContext, start: int, stop: int, lift: bool, result: RankedLists
    ) -> None:
        """Ranks the distinct profiles start..stop (subscribers who share every setting
        share one profile, so this is done once for all of them)."""
        n = len(ctx.day)
        items = ctx.items
        rows = stop - start
        rel = self.relevance(ctx, start, stop)
        learner = ctx.learner
        fed = [p for p in range(start, stop) if p in learner.profiles] if learner else []
        if fed:
            fed_rel, spans, fed_values, fed_z, fed_priors = self._learned_relevance(ctx, fed)
            rel[[p - start for p in fed]] = fed_rel
        has_profile = items.has_profile[start:stop]
        if lift:
            passing = np.ones((rows, n), dtype=bool)
        else:
            passing = rel >= items.threshold[start:stop, None]
            passing[~has_profile] = True
        # Exclusions, liked papers and followed authors touch few (row, paper) cells.
        fr, fc = _hits(ctx.m_authors[start:stop], ctx.auth_sparse)
        passing[fr, fc] = True
        for m, mask in ((ctx.m_excludes, ctx.excl_sparse), (ctx.m_likes, ctx.like_self_sparse)):
            er, ec = _hits(m[start:stop], mask)
            passing[er, ec] = False
        # Papers a subscriber gave feedback on are not sent back.
        if learner is not None:
            for p in fed:
                on_day = learner.day_index
                gone = [on_day[f] for f, _ in unpack(items.sub_feedback[p]) if on_day[f] >= 0]
                passing[p - start, gone] = False
        if items.eligible_cols is not None:
            elig = np.zeros((len(items.eligible_cols), n), dtype=bool)
            for e, cols in enumerate(items.eligible_cols):
                elig[e, cols] = True
            passing &= elig[items.eligible_of[start:stop]]
        # score = (1 - w) * relevance + w * popularity, in place (w = 0 leaves it exact).
        w = items.weight[start:stop]
        score = rel
        wr = np.flatnonzero(w)
        if len(wr):
            score[wr] = rel[wr] * (1.0 - w[wr])[:, None] + w[wr][:, None] * ctx.pop[None, :]
        # Followed authors sort first: lift them by more than any score (<= 1) can reach.
        # The order key is kept negated (-(score + 2) == -score - 2 exactly), so that the
        # top-k needs no negated copy.
        neg_key = np.where(passing, np.negative(score), np.float32(np.inf))
        neg_key[fr, fc] -= np.float32(2.0)
        cap = items.cap[start:stop]
        top, neg_vals = _top(neg_key, passing, items.limit)
        # Ties break by key: papers are sorted by key, so by index.
        order = np.lexsort((top, neg_vals), axis=1)
        top = np.take_along_axis(top, order, axis=1)
        neg_vals = np.take_along_axis(neg_vals, order, axis=1)
        top_scores = np.take_along_axis(score, top, axis=1).round(4)
        keep = (neg_vals < np.inf) & (np.arange(top.shape[1])[None, :] < cap[:, None])
        # The list is the leading run of kept papers (sorted, so the first miss ends it).
        counts = np.cumprod(keep, axis=1).sum(axis=1)
        width = int(counts.max()) if len(counts) else 0
        if fed:
            # For the why-lines of feedback profiles: their interests at the papers they
            # get, kept per block (a row per interest) rather than per profile.
            cols = top[[p - start for p in fed], :width]
            owner = np.repeat(np.arange(len(fed)), [b - a for a, b in spans])
            at = cols[owner]
            values_at, z_at, priors_at = (
                np.take_along_axis(m, at, axis=1).astype(np.float32)
                for m in (fed_values, fed_z, fed_priors)
            )
            ctx.why_blocks.append((cols.astype(np.int32), values_at, z_at, priors_at))
            for r, p in enumerate(fed):
                ctx.why[p] = (len(ctx.why_blocks) - 1, r, *spans[r])
        result.add_block(
            start,
            stop,
            top[:, :width].astype(np.int32),
            top_scores[:, :width],
            neg_vals[:, :width] <= -1.5,
            counts.astype(np.int32),
            w,
        )

    def why(
        self, ctx: _DayContext, i: int, j: int, followed: bool, weight: float
    ) -> tuple[Reason, ...]:
        reasons: list[Reason] = []
        items = ctx.items
        if followed:
            reasons += [
                Reason("author", items.authors[a]) for a in items.sub_authors[i] if ctx.auth[a, j]
            ]
        if ctx.learner is not None and i in ctx.learner.profiles:
            reasons += self._learned_why(ctx, ctx.learner, i, j)
            upvotes = ctx.day[j].upvotes
            if upvotes and (weight > 0 or not reasons):
                reasons.append(Reason("upvotes", str(upvotes)))
            return tuple(reasons)
        phrases = items.sub_phrases[i]
        if phrases:
            values = ctx.topic[phrases, j].tolist()
            hits = sorted(
                zip(values, phrases, strict=True), key=lambda t: (-t[0], items.phrases[t[1]])
            )
            # The best phrase, and others only when nearly as strong: a why-line must be true.
            floor = max(WHY_MIN, 0.8 * hits[0][0])
            reasons += [Reason("topic", items.phrases[k]) for v, k in hits[:3] if v >= floor]
        likes = items.sub_likes[i]
        if likes:
            values = ctx.like[likes, j].tolist()
            v, k = min(
                zip(values, likes, strict=True), key=lambda t: (-t[0], items.likes[t[1]].key)
            )
            if v >= WHY_MIN:
                reasons.append(Reason("like", _short(items.likes[k].title)))
        upvotes = ctx.day[j].upvotes
        if upvotes and (weight > 0 or not reasons):
            reasons.append(Reason("upvotes", str(upvotes)))
        return tuple(reasons)

    def _learned_why(self, ctx: _DayContext, learner: Learner, i: int, j: int) -> list[Reason]:
        """The why of a feedback profile's paper: the topics it matches on its own (as
        without feedback), "you liked <title>" naming the "more" paper most like it when
        feedback lifted it, and the liked paper it is most like."""
        items = ctx.items
        interests = learner.profiles[i]
        block, r, a, b = ctx.why[i]
        cols, values_at, z_at, priors_at = ctx.why_blocks[block]
        c = cols[r].tolist().index(j)
        rows, z_learned, priors = values_at[a:b], z_at[a:b], priors_at[a:b]
        prior = priors[:, c].tolist()
        reasons: list[Reason] = []
        topics = sorted(
            (
                (v, items.phrases[it.item])
                for v, it in zip(prior, interests, strict=True)
                if it.kind == TOPIC
            ),
            key=lambda t: (-t[0], t[1]),
        )
        if topics:
            floor = max(WHY_MIN, 0.8 * topics[0][0])
            reasons += [Reason("topic", phrase) for v, phrase in topics[:3] if v >= floor]
        values = rows[:, c].tolist()
        best = max(range(len(interests)), key=lambda r: (values[r], -r), default=None)
        if best is not None and z_learned[best, c] >= WHY_LEARNED_Z:
            f = learner.nearest_positive(interests[best], j, WHY_SIMILAR_Z)
            if f is not None:
                reasons.append(Reason("feedback", _short(items.feedback[f].title)))
        for it in interests:
            if it.kind != LIKES or not it.likes:
                continue
            v, k = min(
                ((float(ctx.like[k, j]), k) for k in it.likes),
                key=lambda t: (-t[0], ctx.like_keys[t[1]]),
            )
            if v >= WHY_MIN:
                reasons.append(Reason("like", _short(items.likes[k].title)))
        return reasons


@dataclass(frozen=True, slots=True)
class _DayContext:
    day: list[Paper]
    index: dict[str, int]
    items: _Items
    topic: np.ndarray
    like: np.ndarray
    auth: np.ndarray
    pop: np.ndarray
    topic_powered: np.ndarray
    like_powered: np.ndarray
    m_phrases: sp.csr_matrix  # (profiles, phrases), rows sum to 1
    m_likes: sp.csr_matrix  # (profiles, liked papers), rows sum to 1
    m_excludes: sp.csr_matrix  # (profiles, exclusions), ones
    m_authors: sp.csr_matrix  # (profiles, authors), ones
    excl_sparse: sp.csr_matrix
    like_self_sparse: sp.csr_matrix
    auth_sparse: sp.csr_matrix
    learner: Learner | None  # feedback profiles' fitted interests (None: no feedback)
    # Like scores of the "more" papers that are a profile's liked papers (no interest):
    # the row of each (by feedback index), and the rows.
    orphan_row: dict[int, int]
    orphan_scores: np.ndarray
    like_keys: list[str]  # the liked papers' keys (with feedback only)
    # Feedback profiles' interests at the papers they get. Per block: the papers (a row
    # per profile), and per interest the values, the learned score's z values and the
    # own scores without feedback at them; per profile: (block, row, its interest rows).
    why: dict[int, tuple[int, int, int, int]] = field(default_factory=dict)
    why_blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = field(
        default_factory=list
    )


class RankedLists(Mapping[str, list[RankedPaper]]):
    """email -> that subscriber's digest list, built only when it is asked for.

    Ranking keeps a few arrays per distinct profile (the chosen papers' indices, scores
    and followed-author flags); the RankedPaper objects and their `why` lines are made on
    lookup, so 100,000 subscribers do not cost a million Python objects up front.
    A subscriber named twice gets the list of their last entry, as with a dict.
    """

    def __init__(
        self,
        engine: Engine,
        ctx: _DayContext | None,
        subscribers: Sequence[Subscriber],
        profile_of: np.ndarray,
    ) -> None:
        self._engine = engine
        self._ctx = ctx
        self._row = {s.email: i for i, s in enumerate(subscribers)}
        self._profile_of = profile_of
        n = int(profile_of.max()) + 1 if len(profile_of) else 0
        self._block_of = np.full(n, -1, dtype=np.int32)
        self._offset = np.zeros(n, dtype=np.int32)
        self._blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def add_block(
        self,
        start: int,
        stop: int,
        top: np.ndarray,
        scores: np.ndarray,
        followed: np.ndarray,
        counts: np.ndarray,
        weights: np.ndarray,
    ) -> None:
        self._block_of[start:stop] = len(self._blocks)
        self._offset[start:stop] = np.arange(stop - start, dtype=np.int32)
        self._blocks.append((top, scores, followed, counts, weights))

    def __getitem__(self, email: str) -> list[RankedPaper]:
        i = self._row[email]  # KeyError for a stranger, as a dict would raise
        if self._ctx is None:
            return []
        p = int(self._profile_of[i])
        b = int(self._block_of[p])
        if b < 0:
            return []
        top, scores, followed, counts, weights = self._blocks[b]
        r = int(self._offset[p])
        k = int(counts[r])
        ctx, weight = self._ctx, float(weights[r])
        return [
            RankedPaper(
                ctx.day[j],
                s,
                self._engine.why(ctx, p, j, f, weight),
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
    return title if len(title) <= limit else f"{title[: limit - 1].rstrip()}…"


def _signals(
    feedback: Mapping[str, Sequence[Feedback]] | None,
    subscribers: Sequence[Subscriber],
    known: Sequence[Paper],
) -> tuple[list[Paper], dict[str, Signals]]:
    """The papers feedback names (those known here, sorted by key) and each subscriber's
    signals on them. A later verdict on the same paper replaces an earlier one."""
    if not feedback:
        return [], {}
    by_key = {p.key: p for p in known}
    verdicts: dict[str, dict[str, bool]] = {}
    for s in subscribers:
        given = {f.paper_key: f.verdict == "more" for f in feedback.get(s.email, ())}
        given = {k: v for k, v in given.items() if k in by_key}
        if given:
            verdicts[s.email] = given
    keys = sorted({k for given in verdicts.values() for k in given})
    position = {k: i for i, k in enumerate(keys)}
    signals = {
        email: tuple(sorted(signal(position[k], more) for k, more in given.items()))
        for email, given in verdicts.items()
    }
    return [by_key[k] for k in keys], signals


def _collect(
    subscribers: Sequence[Subscriber],
    resolver: LikeResolver,
    eligible: Mapping[str, Collection[str]] | None,
    index: Mapping[str, int],
    default_min_score: float,
    lift: bool,
    feedback: list[Paper],
    signals: Mapping[str, Signals],
) -> tuple[_Items, np.ndarray]:
    """Distinct items, distinct profiles and each subscriber's profile.

    A profile is everything the ranking of one subscriber depends on: their item indices,
    popularity weight, threshold, cap and eligible papers. Subscribers who share one
    (many share topics, or have no profile at all) are ranked once. Repeated values
    (the same topics, like entries or eligible set) are looked up once.
    """
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

    def strings(seen: dict[str, int]) -> Callable[[tuple[str, ...]], tuple[int, ...]]:
        def index_of(values: tuple[str, ...]) -> tuple[int, ...]:
            return tuple(
                sorted({seen.setdefault(v.strip(), len(seen)) for v in values if v.strip()})
            )

        return index_of

    def like_indices(entries: tuple[str, ...]) -> tuple[int, ...]:
        found: set[int] = set()
        for entry in entries:
            k = resolved.get(entry)
            if k is None:
                k = like_index(entry)
            if k >= 0:
                found.add(k)
        return tuple(sorted(found))

    phrases: dict[str, int] = {}
    excludes: dict[str, int] = {}
    authors: dict[str, int] = {}
    # Per kind of item: raw value -> id of its distinct index list, and those lists.
    kinds = [strings(phrases), like_indices, strings(excludes), strings(authors)]
    raw_ids: list[dict[tuple[str, ...], int]] = [{}, {}, {}, {}]
    by_indices: list[dict[tuple[int, ...], int]] = [{}, {}, {}, {}]
    lists: list[list[list[int]]] = [[], [], [], []]

    def intern(kind: int, values: tuple[str, ...]) -> int:
        got = raw_ids[kind].get(values)
        if got is None:
            indices = kinds[kind](values)
            got = by_indices[kind].setdefault(indices, len(lists[kind]))
            if got == len(lists[kind]):
                lists[kind].append(list(indices))
            raw_ids[kind][values] = got
        return got

    t_ids, l_ids, e_ids, a_ids = raw_ids
    # Eligible sets: by object first (kept alive here so an id is never reused), then by
    # content.
    elig_by_id: dict[int, int] = {}
    elig_by_set: dict[frozenset[str], int] = {}
    elig_alive: list[Collection[str]] = []
    signal_ids: dict[Signals, int] = {(): 0}
    profiles: dict[tuple[int, int, int, int, bool, float, float, int, int, int], int] = {}
    profile_of = np.empty(len(subscribers), dtype=np.int64)
    no_keys: tuple[str, ...] = ()
    for row, s in enumerate(subscribers):
        t = t_ids.get(s.topics)
        if t is None:
            t = intern(0, s.topics)
        lk = l_ids.get(s.like)
        if lk is None:
            lk = intern(1, s.like)
        e = e_ids.get(s.exclude)
        if e is None:
            e = intern(2, s.exclude)
        a = a_ids.get(s.authors)
        if a is None:
            a = intern(3, s.authors)
        sig = signals.get(s.email, ())
        f = signal_ids.setdefault(sig, len(signal_ids))
        tilted = not (s.topics or s.like) and any(x & 1 for x in sig)
        has = bool(s.topics or s.like) or tilted
        if tilted:
            # Without topics or likes a subscriber gets the day's trending papers; their
            # "more" papers tilt that list toward them, and it stays a full digest.
            weight, threshold = TRENDING_TILT, 0.0
        elif has:
            weight = min(max(s.popularity, 0.0), 1.0)
            threshold = default_min_score if s.min_score is None else s.min_score
        else:
            weight, threshold = 1.0, 0.0
        eid = -1
        if eligible is not None:
            keys = eligible.get(s.email, no_keys)
            got = elig_by_id.get(id(keys))
            if got is None:
                elig_alive.append(keys)
                got = elig_by_id[id(keys)] = elig_by_set.setdefault(
                    frozenset(keys), len(elig_by_set)
                )
            eid = got
        key = (t, lk, e, a, has, weight, threshold, s.max_papers, eid, f)
        p = profiles.get(key)
        if p is None:
            p = profiles[key] = len(profiles)
        profile_of[row] = p
    # Profiles with the same kinds of items go together, so that a block of them can skip
    # whole steps (no topics, no likes); the order of profiles does not change any list.
    topics_, likes_ = lists[0], lists[1]
    keys_ = sorted(profiles, key=lambda k: (not topics_[k[0]], not likes_[k[1]]))
    new_of = np.empty(len(keys_), dtype=np.int64)
    new_of[[profiles[k] for k in keys_]] = np.arange(len(keys_))
    profile_of = new_of[profile_of]
    eligible_cols = (
        None
        if eligible is None
        else [np.array([index[k] for k in ks if k in index], dtype=np.int64) for ks in elig_by_set]
    )
    n = len(index)
    by_signal = list(signal_ids)
    caps = [n if lift else max(k[7], 0) for k in keys_]
    items = _Items(
        list(phrases),
        like_papers,
        list(excludes),
        list(authors),
        [topics_[k[0]] for k in keys_],
        [likes_[k[1]] for k in keys_],
        [lists[2][k[2]] for k in keys_],
        [lists[3][k[3]] for k in keys_],
        feedback,
        [by_signal[k[9]] for k in keys_],
        np.array([k[4] for k in keys_], dtype=bool),
        np.array([k[5] for k in keys_], dtype=np.float32),
        np.array([k[6] for k in keys_], dtype=np.float32),
        np.array(caps, dtype=np.int64),
        eligible_cols,
        np.array([k[8] for k in keys_], dtype=np.int64),
        n if lift else min(n, max([1, *caps])),
    )
    return items, profile_of


def _membership(rows: Sequence[Sequence[int]], n_items: int, normalise: bool) -> sp.csr_matrix:
    lens = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(lens)
    indices = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=int(indptr[-1]))
    if normalise:
        inv = np.divide(1.0, lens, out=np.zeros(len(rows)), where=lens > 0)
        data = np.repeat(inv, lens)
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


def _power_mean(powered: np.ndarray, m: sp.csr_matrix, p: float, n: int) -> np.ndarray | None:
    """Row i: (mean over the items of m's row i of item_scores**p) ** (1/p); 0 where the
    row is empty, None when every row is. `powered` is `_powered(item_scores, p)`; only
    non-empty rows are computed."""
    if powered.shape[0] == 0 or m.nnz == 0:
        return None
    out = np.zeros((m.shape[0], n), dtype=np.float32)
    filled = np.flatnonzero(np.diff(m.indptr))
    if len(filled) == m.shape[0]:
        out = np.asarray(m @ powered, dtype=np.float32)
        return _root(out, p)
    out[filled] = _root(np.asarray(m[filled] @ powered, dtype=np.float32), p)
    return out


def _hits(m: sp.csr_matrix, item_mask: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """(rows, papers) that any item of each row of `m` marks (both sparse)."""
    if m.nnz == 0 or item_mask.nnz == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    hits = sp.coo_matrix(m @ item_mask)
    on = hits.data > 0
    return hits.row[on].astype(np.int64), hits.col[on].astype(np.int64)


def _top(neg_key: np.ndarray, passing: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's `limit` smallest negated keys, unordered, and those negated keys.

    A row with at most `limit` passing papers takes them all (the rest of the row is
    +inf, never sent); only rows with more need `argpartition`, called as before
    grouping so that equal keys at the cut are chosen the same way.
    """
    rows, n = neg_key.shape
    if limit >= n:
        top = np.tile(np.arange(n), (rows, 1))
        return top, np.take_along_axis(neg_key, top, axis=1)
    count = np.count_nonzero(passing, axis=1)
    big = np.flatnonzero(count > limit)
    if len(big) == rows:
        top = np.argpartition(neg_key, limit - 1, axis=1)[:, :limit]
        return top, np.take_along_axis(neg_key, top, axis=1)
    top = np.zeros((rows, limit), dtype=np.int64)
    vals = np.full((rows, limit), np.inf, dtype=np.float32)
    if len(big):
        key = neg_key[big]
        part = np.argpartition(key, limit - 1, axis=1)[:, :limit]
        top[big] = part
        vals[big] = np.take_along_axis(key, part, axis=1)
    small = np.flatnonzero(count <= limit)
    r, c = np.nonzero(passing[small])
    starts = np.cumsum(count[small]) - count[small]
    pos = np.arange(len(r)) - starts[r]
    rr = small[r]
    top[rr, pos] = c
    vals[rr, pos] = neg_key[rr, c]
    return top, vals


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


__all__ = [
    "DEFAULT_MIN_SCORE",
    "Engine",
    "RankedLists",
    "RelevanceModel",
    "dedupe",
    "matches_phrase",
]
