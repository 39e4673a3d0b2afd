"""Ranking: which of the day's papers each subscriber gets, in what order, and why.

`make_ranker()` picks the best ranker this installation can run: semantic (sentence
embeddings fused with BM25) when its model is available, else lexical (BM25 alone).
Its `name` says which one is active. Scores and thresholds are on a 0..1 scale.
`rank(..., feedback=)` takes subscribers' "more / less like this" (see learn.py).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from digest.errors import ConfigError
from digest.models import Feedback, Paper, RankedPaper, Subscriber
from digest.rank.engine import DEFAULT_MIN_SCORE, Engine
from digest.rank.learn import hashed
from digest.rank.lexical import LexicalIndex

log = logging.getLogger(__name__)


class EmbeddingCache(Protocol):
    """Stores one vector per (paper key or profile item, model name); the store implements it."""

    def get(self, keys: Sequence[str], model: str) -> dict[str, np.ndarray]: ...

    def put(self, vectors: Mapping[str, np.ndarray], model: str) -> None: ...


class MemoryEmbeddingCache:
    """An EmbeddingCache in a dict: for tests and `digest rank`."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], np.ndarray] = {}

    def get(self, keys: Sequence[str], model: str) -> dict[str, np.ndarray]:
        return {k: self._data[(model, k)] for k in keys if (model, k) in self._data}

    def put(self, vectors: Mapping[str, np.ndarray], model: str) -> None:
        for k, v in vectors.items():
            self._data[(model, k)] = np.asarray(v, dtype=np.float32).copy()

    def __len__(self) -> int:
        return len(self._data)


@runtime_checkable
class Ranker(Protocol):
    name: str
    default_min_score: float  # the relevance a paper needs, unless a subscriber sets min_score

    def index(self, papers: Sequence[Paper]) -> int:
        """Per-paper work shared by every digest, done once when papers are stored."""
        ...

    def rank(
        self,
        papers: Sequence[Paper],
        subscribers: Sequence[Subscriber],
        *,
        history: Sequence[Paper] = (),
        eligible: Mapping[str, Collection[str]] | None = None,
        lift_thresholds: bool = False,
        feedback: Mapping[str, Sequence[Feedback]] | None = None,
    ) -> Mapping[str, list[RankedPaper]]:
        """Each subscriber's list, best first. `feedback`: their "more / less like this"
        by email; the earlier papers it names come in `history`, as liked papers do."""
        ...


class LexicalModel:
    """BM25 for topic phrases, TF-IDF cosine for liked papers; needs only numpy/scipy."""

    name = "lexical (BM25)"
    # Lexical scores run lower than semantic ones (no credit without shared words).
    default_min_score = 0.30

    def prepare(self, papers: Sequence[Paper], history: Sequence[Paper]) -> LexicalIndex:
        return LexicalIndex.build(papers, history)

    def phrase_scores(self, day: object, phrases: Sequence[str]) -> np.ndarray:
        assert isinstance(day, LexicalIndex)
        return day.phrase_scores(phrases)

    def like_scores(self, day: object, liked: Sequence[Paper]) -> np.ndarray:
        assert isinstance(day, LexicalIndex)
        return day.like_scores(liked)

    # Learning from feedback: TF-IDF vectors hashed into a small dense space.
    def features(self, day: object) -> np.ndarray:
        assert isinstance(day, LexicalIndex)
        return hashed(day.vocab, day.tfidf)

    def paper_features(self, day: object, papers: Sequence[Paper]) -> np.ndarray:
        assert isinstance(day, LexicalIndex)
        return hashed(day.vocab, day.vectorise(papers))

    def phrase_features(self, day: object, phrases: Sequence[str]) -> np.ndarray:
        assert isinstance(day, LexicalIndex)
        return hashed(day.vocab, day.vectorise([Paper(title=p) for p in phrases]))


KINDS = ("auto", "semantic", "lexical", "onnx", "static")


def make_ranker(kind: str = "auto", cache: EmbeddingCache | None = None) -> Ranker:
    """Pick a ranker; raises ConfigError if `kind` can't run here.

    "auto": the full MiniLM-L6 encoder (ONNX), else the static table, else BM25 alone.
    "semantic": the same, but ConfigError instead of falling back to BM25.
    "onnx" / "static": that semantic route only. "lexical": BM25 alone.
    """
    if kind not in KINDS:
        raise ConfigError(f"ranker {kind!r}: unknown kind (use auto, semantic or lexical)")
    if kind == "lexical":
        return Engine(LexicalModel())
    from digest.rank.semantic import make_semantic

    try:
        semantic: Ranker = make_semantic(
            cache if cache is not None else MemoryEmbeddingCache(),
            route="auto" if kind in ("auto", "semantic") else kind,
        )
        return semantic
    except ConfigError as exc:
        if kind != "auto":
            raise
        log.warning("event=ranker_fallback route=lexical error=%s", exc)
        return Engine(LexicalModel())


__all__ = [
    "DEFAULT_MIN_SCORE",
    "EmbeddingCache",
    "LexicalModel",
    "MemoryEmbeddingCache",
    "Ranker",
    "make_ranker",
]
