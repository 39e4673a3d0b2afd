"""BM25 over title + abstract + AI keywords, with bigrams so that phrases count as phrases.

Scores are mapped to 0..1 so that a person can read them: 1.0 means every word of the
phrase (and the phrase itself) is as prominent as a title mention; 0 means nothing matched.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from digest.models import Paper
from digest.rank.text import terms

K1 = 1.2
B = 0.75
# A word in the title counts as much as TITLE_WEIGHT mentions in the abstract.
TITLE_WEIGHT = 3.0
KEYWORD_WEIGHT = 2.0
# Cosine of TF-IDF vectors at which a paper counts as "fully like" a liked paper.
LIKE_FULL_COSINE = 0.30


@dataclass(frozen=True, slots=True)
class LexicalIndex:
    """Per-day term statistics; built once and shared by every subscriber."""

    vocab: dict[str, int]
    idf: np.ndarray  # (V,)
    bm25: sp.csr_matrix  # (N papers, V): saturated, length-normalised term weights
    tfidf: sp.csr_matrix  # (N papers, V): l2-normalised sublinear TF-IDF for "more like this"
    unseen_idf: float
    # Term ids and field-weighted counts of every indexed paper (today's and the
    # background), by key: a liked paper from an earlier day is not tokenised again.
    bags: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @classmethod
    def build(cls, papers: Sequence[Paper], background: Sequence[Paper] = ()) -> LexicalIndex:
        """Index `papers`; document frequencies also count `background` (earlier days).

        Each paper is tokenised once; the vocabulary, document frequencies and both
        matrices are then built from flat arrays of term ids (no per-term Python work).
        """
        vocab: dict[str, int] = {}
        bags: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        docs: list[Paper] = []
        for p in [*papers, *background]:
            if p.key in bags:
                continue
            counts = _field_counts(p)
            ids = np.fromiter(
                (vocab.setdefault(t, len(vocab)) for t in counts), dtype=np.int64, count=len(counts)
            )
            bags[p.key] = (ids, np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))
            docs.append(p)
        n_today = len(papers)
        n_docs = len(docs)
        all_ids = [bags[p.key][0] for p in docs]
        flat = np.concatenate(all_ids) if all_ids else np.zeros(0, dtype=np.int64)
        df = np.bincount(flat, minlength=len(vocab)).astype(np.float64)
        idf = np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
        today = [bags[p.key] for p in papers]
        lens = np.array([len(ids) for ids, _ in today], dtype=np.int64)
        indptr = np.zeros(n_today + 1, dtype=np.int64)
        indptr[1:] = np.cumsum(lens)
        col_arr = np.concatenate([ids for ids, _ in today]) if today else flat[:0]
        tf_arr = np.concatenate([tf for _, tf in today]) if today else np.zeros(0, dtype=np.float64)
        row_arr = np.repeat(np.arange(n_today), lens)
        lengths = np.array([tf.sum() for _, tf in today], dtype=np.float64)
        avg = float(lengths.mean()) if len(lengths) and lengths.mean() > 0 else 1.0
        norm = K1 * (1.0 - B + B * lengths[row_arr] / avg)
        sat = tf_arr * (K1 + 1.0) / (tf_arr + norm)
        shape = (n_today, len(vocab))
        bm25 = sp.csr_matrix((sat, col_arr, indptr), shape=shape)
        w = _sublinear(tf_arr) * idf[col_arr]
        row_norm = np.sqrt(np.bincount(row_arr, weights=w * w, minlength=n_today))
        w /= np.maximum(row_norm, 1e-12)[row_arr]
        tfidf = sp.csr_matrix((w, col_arr, indptr), shape=shape)
        unseen = math.log(1.0 + (n_docs + 0.5) / 1.5)
        return cls(vocab, idf, bm25, tfidf, unseen, bags)

    def phrase_scores(self, phrases: Sequence[str]) -> np.ndarray:
        """(len(phrases), N) BM25 of each phrase, scaled so a full title match is 1."""
        n = self.bm25.shape[0]
        if not phrases:
            return np.zeros((0, n), dtype=np.float32)
        q = sp.lil_matrix((len(phrases), len(self.vocab)), dtype=np.float64)
        full = np.zeros(len(phrases))
        title_sat = TITLE_WEIGHT * (K1 + 1.0) / (TITLE_WEIGHT + K1)
        for i, phrase in enumerate(phrases):
            for t in set(terms(phrase)):
                j = self.vocab.get(t)
                if j is None:
                    full[i] += self.unseen_idf * title_sat
                else:
                    q[i, j] = self.idf[j]
                    full[i] += self.idf[j] * title_sat
        raw = (sp.csr_matrix(q) @ self.bm25.T).toarray()
        scores = raw / np.maximum(full, 1e-12)[:, None]
        out: np.ndarray = np.clip(scores, 0.0, 1.0).astype(np.float32)
        return out

    def like_scores(self, liked: Sequence[Paper]) -> np.ndarray:
        """(len(liked), N) TF-IDF cosine between each liked paper and each candidate, 0..1."""
        raw = self.like_cosines(liked)
        out: np.ndarray = np.clip(raw / LIKE_FULL_COSINE, 0.0, 1.0).astype(np.float32)
        return out

    def like_cosines(self, liked: Sequence[Paper]) -> np.ndarray:
        """(len(liked), N) raw TF-IDF cosine between each liked paper and each candidate."""
        n = self.bm25.shape[0]
        if not liked:
            return np.zeros((0, n), dtype=np.float64)
        out: np.ndarray = (self.vectorise(liked) @ self.tfidf.T).toarray()
        return out

    def vectorise(self, papers: Sequence[Paper]) -> sp.csr_matrix:
        """TF-IDF vectors in this index's vocabulary (words unknown to it are dropped)."""
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        for i, p in enumerate(papers):
            bag = self.bags.get(p.key)
            if bag is None:
                counts = _field_counts(p)
                known = [(self.vocab[t], f) for t, f in counts.items() if t in self.vocab]
                bag = (
                    np.array([j for j, _ in known], dtype=np.int64),
                    np.array([f for _, f in known], dtype=np.float64),
                )
            ids, tf = bag
            rows.append(np.full(len(ids), i, dtype=np.int64))
            cols.append(ids)
            vals.append(_sublinear(tf) * self.idf[ids])
        shape = (len(papers), len(self.vocab))
        if not rows:
            return sp.csr_matrix(shape, dtype=np.float64)
        r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
        norms = np.sqrt(np.bincount(r, weights=v * v, minlength=len(papers)))
        v = v / np.maximum(norms, 1e-12)[r]
        return sp.csr_matrix((v, (r, c)), shape=shape)


def _sublinear(tf: np.ndarray) -> np.ndarray:
    """1 + log(tf), floored at 0.1 (field weights make counts fractional)."""
    out: np.ndarray = (1.0 + np.log(np.maximum(tf, 1e-9))).clip(min=0.1)
    return out


def _field_counts(paper: Paper) -> dict[str, float]:
    """Field-weighted term counts (BM25F-style: one bag, weighted by where words occur)."""
    counts: dict[str, float] = {}
    for t in terms(paper.title):
        counts[t] = counts.get(t, 0.0) + TITLE_WEIGHT
    for t in terms(paper.abstract):
        counts[t] = counts.get(t, 0.0) + 1.0
    for kw in paper.ai_keywords:
        for t in terms(kw):
            counts[t] = counts.get(t, 0.0) + KEYWORD_WEIGHT
    return counts
