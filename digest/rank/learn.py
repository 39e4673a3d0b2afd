"""Learning from feedback: a subscriber's "more / less like this" re-orders their interests.

A subscriber's interests are each of their topic phrases, and their liked papers taken
together. Every "more" or "less" is given to the interest it is closest to (for a
subscriber with neither topics nor likes, the "more" papers are their liked papers, an
interest of their own). Each interest that got
feedback has its own L2-regularised logistic regression over the papers' features (the
stored embedding; hashed TF-IDF on the lexical route), centred on the day's mean paper:

  positives    the papers it was told "more" of,
  pseudo       the interest itself: the topic phrase's vector, or each liked paper,
  negatives    the papers it was told "less" of,
  background   every paper of the day, as weak negatives (the unlabelled rest).

The regression takes one Newton step from zero, which for this loss is a weighted
least-squares fit. Its background half is the same for every subscriber, so it is
computed and inverted once per day; a subscriber's own part is a few rows, solved with
the Woodbury identity in O(k^2 d) for k labelled papers. Nothing is done per paper but
scoring, one dot product per (interest, paper), as for any profile item.

The learned score re-orders the interest's papers, by

  z(the interest's own score) + gain * z(learned score)

(z standardises over the day; the gain grows with the feedback: weight * n / (n + half),
n = "more" count + less_count * "less" count), and the papers take the interest's own
scores of the day in that new order. So an interest sends as many papers as before, at
the same scores, only better chosen; and one interest's feedback cannot lift its papers
above another interest's best, so a strong interest does not drown a second one. With
no feedback nothing here runs and the ranking is exactly as before.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

# Feedback of one distinct profile, sorted: 2 * (index of the paper among the call's
# feedback papers) + 1 for "more", + 0 for "less" (plain ints: 100,000 profiles of ten
# signals each are held at once).
Signals = tuple[int, ...]


def signal(index: int, more: bool) -> int:
    return 2 * index + int(more)


def unpack(signals: Signals) -> list[tuple[int, bool]]:
    """(feedback index, "more"?) of each signal."""
    return [(s >> 1, bool(s & 1)) for s in signals]


# Re-ordered scores are moved by at most this much, so that they have no ties.
EVEN_OUT = 1e-3
FIT_BATCH = 512  # interests fitted together (memory: FIT_BATCH x rows x dims floats)
BLEND_ROWS = 1024  # interests blended together (memory: BLEND_ROWS x papers floats)

TOPIC = 0
LIKES = 1


@dataclass(frozen=True, slots=True)
class Learning:
    """Tuned on the dev days only (bench/rank_eval.py --feedback, RANKING.md)."""

    weight: float = 2.0  # the learned score's gain once feedback is plentiful ...
    half: float = 3.0  # ... and the feedback count at which it is half of that
    less_count: float = 1.0  # a "less" counts this much in that feedback count
    ridge: float = 1.0  # L2 penalty on the weights (not the intercept)
    background: float = 10.0  # total weight of the day's papers as negatives
    pseudo: float = 1.0  # weight of the topic phrase (or each liked paper) as a positive
    less_weight: float = 1.0  # weight of each "less" paper as a negative


@dataclass(slots=True)
class Interest:
    """One interest of one profile, and the feedback given to it."""

    kind: int  # TOPIC or LIKES
    item: int  # phrase index (TOPIC); -1 (LIKES)
    likes: list[int]  # LIKES: like item indices (the profile's `like` entries)
    orphans: list[int]  # LIKES: "more" papers of a profile with no other interest
    positives: list[int] = field(default_factory=list)  # feedback indices, "more"
    negatives: list[int] = field(default_factory=list)  # feedback indices, "less"


class Learner:
    """Every feedback profile's interests, and their models, for one day's papers."""

    def __init__(
        self,
        settings: Learning,
        day_features: np.ndarray,
        phrase_features: np.ndarray,
        like_features: np.ndarray,
        feedback_features: np.ndarray,
        feedback_day_index: Sequence[int],
    ) -> None:
        self.settings = settings
        self.day_index = list(feedback_day_index)  # each feedback paper's day index, or -1
        x = np.asarray(day_features, dtype=np.float64)
        n, d = x.shape
        self.dims = d
        self.mean = x.mean(axis=0)
        self.xc = _unit(x - self.mean)
        self.xc32 = self.xc.astype(np.float32)
        # Background half of the Newton system, shared by every profile today.
        a = np.hstack([self.xc, np.ones((n, 1))])
        each = settings.background / max(n, 1)
        h0 = (each / 4.0) * (a.T @ a)
        h0[np.arange(d), np.arange(d)] += settings.ridge
        h0[d, d] += 1e-6
        factor = sla.cho_factor(h0)
        self._h0 = sla.cho_solve(factor, -(each / 2.0) * a.sum(axis=0))
        # Every labelled row anyone uses: phrases, liked papers, feedback papers (centred),
        # its H0-solved column (Woodbury), and the mean and sd over the day's papers of
        # their similarity to it (similarities become z values: how much a paper stands
        # out as like it).
        self.phrases = self.centre(phrase_features)
        self.likes = self.centre(like_features)
        self.feedback = self.centre(feedback_features)
        self._offsets = (0, len(self.phrases), len(self.phrases) + len(self.likes))
        rows = np.vstack([self.phrases, self.likes, self.feedback])
        self._rows = np.hstack([rows, np.ones((len(rows), 1))])
        self._z = sla.cho_solve(factor, self._rows.T) if len(rows) else self._rows.T
        self._xc_mean = self.xc.mean(axis=0)
        self._xc_cov = np.cov(self.xc, rowvar=False, bias=True).reshape(d, d)
        self._row_mean, self._row_sd = self._spread(rows)
        self.profiles: dict[int, list[Interest]] = {}

    def centre(self, v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=np.float64).reshape(-1, self.dims)
        return _unit(v - self.mean) if len(v) else v

    def _spread(self, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and sd over the day's papers of their similarity to each direction."""
        mean = directions @ self._xc_mean
        var = ((directions @ self._xc_cov) * directions).sum(axis=1)
        return mean, np.maximum(np.sqrt(np.maximum(var, 0.0)), 1e-9)

    def add_profile(
        self, profile: int, phrases: Sequence[int], likes: Sequence[int], signals: Signals
    ) -> None:
        """Give each signal to the interest its paper stands out most as like."""
        given = unpack(signals)
        interests = [Interest(TOPIC, k, [], []) for k in phrases]
        mean, sd = self._row_mean[list(phrases)], self._row_sd[list(phrases)]
        directions = self.phrases[list(phrases)]
        if likes:
            interests.append(Interest(LIKES, -1, list(likes), []))
            taste = _unit(self.likes[list(likes)].sum(axis=0, keepdims=True))
            taste_mean, taste_sd = self._spread(taste)
            directions = np.vstack([directions, taste])
            mean, sd = np.r_[mean, taste_mean], np.r_[sd, taste_sd]
        if interests:
            sims = directions @ self.feedback[[f for f, _ in given]].T
            best = np.argmax((sims - mean[:, None]) / sd[:, None], axis=0).tolist()
            for (f, more), k in zip(given, best, strict=True):
                (interests[k].positives if more else interests[k].negatives).append(f)
        else:
            orphans = [f for f, more in given if more]
            if orphans:
                interests.append(Interest(LIKES, -1, [], orphans, list(orphans)))
        self.profiles[profile] = interests

    def gain(self, it: Interest) -> float:
        s = self.settings
        n = len(it.positives) + s.less_count * len(it.negatives)
        return s.weight * n / (n + s.half) if n > 0 else 0.0

    def fit(self, interests: Sequence[Interest]) -> np.ndarray:
        """(len(interests), d) weights of each interest's model (zeros without feedback).

        One Newton step from zero: (H0 + U' D U) w = r0 + U' c (y - 1/2), D = c / 4, for
        the interest's labelled rows U (weights c, labels y), solved through the shared H0
        with the Woodbury identity; interests with as many rows are solved together."""
        s = self.settings
        out = np.zeros((len(interests), self.dims), dtype=np.float32)
        phrase0, like0, fb0 = self._offsets
        groups: dict[int, list[tuple[int, list[int], list[float], list[float]]]] = {}
        for i, it in enumerate(interests):
            if self.gain(it) <= 0:
                continue
            pseudo = [phrase0 + it.item] if it.kind == TOPIC else [like0 + k for k in it.likes]
            rows = [*pseudo, *(fb0 + f for f in it.positives), *(fb0 + f for f in it.negatives)]
            c = [s.pseudo] * len(pseudo) + [1.0] * len(it.positives)
            c += [s.less_weight] * len(it.negatives)
            y = [1.0] * (len(pseudo) + len(it.positives)) + [0.0] * len(it.negatives)
            groups.setdefault(len(rows), []).append((i, rows, c, y))
        for k, group in groups.items():
            for start in range(0, len(group), FIT_BATCH):
                part = group[start : start + FIT_BATCH]
                index = np.array([g[1] for g in part])
                weight = np.array([g[2] for g in part])
                e = weight * (np.array([g[3] for g in part]) - 0.5)
                u = self._rows[index]  # (B, k, d + 1)
                z = self._z[:, index].transpose(1, 0, 2)  # (B, d + 1, k)
                v = self._h0[None, :] + np.einsum("bdk,bk->bd", z, e)
                m = u @ z
                m[:, np.arange(k), np.arange(k)] += 4.0 / weight
                t = np.einsum("bkd,bd->bk", u, v)
                w = v - np.einsum("bdk,bk->bd", z, np.linalg.solve(m, t[..., None])[..., 0])
                out[[g[0] for g in part]] = w[:, : self.dims]
        return out

    def blend(
        self, weights: np.ndarray, gains: np.ndarray, prior: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(interests, N) relevance of each interest after feedback, from its own score
        `prior`, and how far above the day's mean its learned score puts each paper (in
        standard deviations; 0 for an interest without feedback).

        The papers are re-ordered by z(prior) + gain * z(learned) and take the interest's
        own scores in that order: the k-th paper gets the k-th best score of the day
        (moved by at most EVEN_OUT, so that the new order has no ties). An interest
        therefore sends as many papers, at the same scores, as without feedback."""
        out = np.array(prior, dtype=np.float32, copy=True)
        z_learned = np.zeros(out.shape, dtype=np.float32)
        learn = np.flatnonzero(gains > 0)
        n = out.shape[1]
        ramp = ((n - np.arange(n)) / n).astype(np.float32)
        even = np.float32(EVEN_OUT)
        tie_break = np.arange(n) * 1e-12
        for start in range(0, len(learn), BLEND_ROWS):  # bounded temporaries
            rows = learn[start : start + BLEND_ROWS]
            p = out[rows]
            z = _standardise(weights[rows] @ self.xc32.T)
            v = _standardise(p.astype(np.float64))
            v += gains[rows][:, None] * z
            # Best first; equal blends keep the papers' order (sorted by key): a tie-break
            # far below any real difference lets the fast (unstable) sort give that order.
            v -= tie_break
            order = np.argsort(-v, axis=1)
            del v
            ranked = np.sort(p, axis=1)[:, ::-1]
            mapped = np.empty_like(p)
            np.put_along_axis(mapped, order, (1 - even) * ranked + even * ramp, axis=1)
            out[rows] = mapped
            z_learned[rows] = z
        return out, z_learned

    def nearest_positive(self, it: Interest, j: int, min_z: float) -> int | None:
        """The interest's "more" paper that day paper j is most like, if j stands out
        among the day's papers as like it (by at least `min_z` standard deviations)."""
        if not it.positives:
            return None
        rows = [self._offsets[2] + f for f in it.positives]
        sims = self.feedback[it.positives] @ self.xc[j]
        z = (sims - self._row_mean[rows]) / self._row_sd[rows]
        best = int(np.argmax(z))
        return it.positives[best] if z[best] >= min_z else None


def _standardise(m: np.ndarray) -> np.ndarray:
    """Each row to mean 0 and standard deviation 1 over the day, in place (a constant
    row becomes 0)."""
    m -= m.mean(axis=1, keepdims=True)
    sd = np.sqrt((m * m).mean(axis=1, keepdims=True))
    m /= np.where(sd > 1e-12, sd, 1.0)
    return m


def _unit(m: np.ndarray) -> np.ndarray:
    out: np.ndarray = m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
    return out


HASH_DIMS = 1024


def hashed(vocab: dict[str, int], tfidf: sp.csr_matrix, dims: int = HASH_DIMS) -> np.ndarray:
    """Dense features of TF-IDF rows: each term added with a sign into one of `dims`
    buckets chosen by a stable hash of the term (the lexical route's paper vectors)."""
    terms = sorted(vocab, key=vocab.__getitem__)
    codes = np.fromiter((zlib.crc32(t.encode()) for t in terms), dtype=np.int64, count=len(terms))
    sign = np.where(codes & 1, 1.0, -1.0)
    proj = sp.csr_matrix(
        (sign, ((codes >> 1) % dims, np.arange(len(terms)))), shape=(dims, len(terms))
    )
    out: np.ndarray = np.asarray((proj @ tfidf.T).T.todense(), dtype=np.float32)
    return out


__all__ = [
    "HASH_DIMS",
    "LIKES",
    "TOPIC",
    "Interest",
    "Learner",
    "Learning",
    "Signals",
    "hashed",
    "signal",
    "unpack",
]
