"""BM25 over title + abstract + AI keywords, with bigrams so that phrases count as phrases.

Scores are mapped to 0..1 so that a person can read them: 1.0 means every word of the
phrase (and the phrase itself) is as prominent as a title mention; 0 means nothing matched.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

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

    @classmethod
    def build(cls, papers: Sequence[Paper], background: Sequence[Paper] = ()) -> LexicalIndex:
        """Index `papers`; document frequencies also count `background` (earlier days)."""
        counts = [_field_counts(p) for p in papers]
        seen = {p.key for p in papers}
        df: Counter[str] = Counter()
        for c in counts:
            df.update(c.keys())
        n_docs = len(papers)
        for p in background:
            if p.key not in seen:
                seen.add(p.key)
                df.update(_field_counts(p).keys())
                n_docs += 1
        vocab = {t: i for i, t in enumerate(sorted(df))}
        idf = np.array(
            [math.log(1.0 + (n_docs - df[t] + 0.5) / (df[t] + 0.5)) for t in sorted(df)],
            dtype=np.float64,
        )
        lengths = np.array([sum(c.values()) for c in counts], dtype=np.float64)
        avg = float(lengths.mean()) if len(lengths) and lengths.mean() > 0 else 1.0
        rows: list[int] = []
        cols: list[int] = []
        tf: list[float] = []
        for i, c in enumerate(counts):
            for t, f in c.items():
                rows.append(i)
                cols.append(vocab[t])
                tf.append(f)
        tf_arr = np.array(tf, dtype=np.float64)
        row_arr = np.array(rows, dtype=np.int64)
        col_arr = np.array(cols, dtype=np.int64)
        norm = K1 * (1.0 - B + B * lengths[row_arr] / avg) if len(tf) else tf_arr
        sat = tf_arr * (K1 + 1.0) / (tf_arr + norm)
        shape = (len(papers), len(vocab))
        bm25 = sp.csr_matrix((sat, (row_arr, col_arr)), shape=shape)
        w = (1.0 + np.log(np.maximum(tf_arr, 1e-9))).clip(min=0.1) * idf[col_arr]
        tfidf = sp.csr_matrix((w, (row_arr, col_arr)), shape=shape)
        row_norm = np.sqrt(np.asarray(tfidf.multiply(tfidf).sum(axis=1)).ravel())
        tfidf = sp.csr_matrix(sp.diags(1.0 / np.maximum(row_norm, 1e-12)) @ tfidf)
        unseen = math.log(1.0 + (n_docs + 0.5) / 1.5)
        return cls(vocab, idf, bm25, tfidf, unseen)

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
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        for i, p in enumerate(papers):
            for t, f in _field_counts(p).items():
                j = self.vocab.get(t)
                if j is not None:
                    rows.append(i)
                    cols.append(j)
                    vals.append((1.0 + math.log(f)) * float(self.idf[j]) if f >= 1 else 0.1)
        m = sp.csr_matrix((vals, (rows, cols)), shape=(len(papers), len(self.vocab)))
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
        return sp.csr_matrix(sp.diags(1.0 / np.maximum(norms, 1e-12)) @ m)


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
