"""Semantic relevance: sentence-embedding similarity fused with BM25, tuned on dev days.

Per distinct profile item (topic phrase or liked paper) and paper:
    relevance = ALPHA * calibrated cosine + (1 - ALPHA) * lexical score   (both 0..1)
Equal weights were measured to lose to embeddings alone, so the weight and the cosine
calibration come from the development days (bench/rank_eval.py, RANKING.md). Topic
phrases are also expanded once by pseudo-relevance feedback: a short category name such
as "Computation and Language" is moved toward the day's papers that best match it,
which is what makes a two-word phrase behave like a description of a field.

Paper vectors are computed once per paper and kept in the EmbeddingCache; phrase and
liked-paper vectors too, so a subscriber's profile is recomputed only when it changes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from digest.errors import ConfigError
from digest.models import Paper
from digest.rank.categories import describe, describe_parts
from digest.rank.engine import Engine
from digest.rank.lexical import LexicalIndex
from digest.rank.static import StaticEncoder

if TYPE_CHECKING:
    from digest.rank import EmbeddingCache

log = logging.getLogger(__name__)


class Encoder(Protocol):
    """Texts to (len(texts), dims) unit vectors; `model` names it in the cache."""

    dims: int
    model: str

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(slots=True)
class Fusion:
    """Tuned on the dev days only; see RANKING.md for the search and the figures."""

    alpha: float = 0.75  # weight of the semantic score
    phrase_zero: float = -0.10  # cosine at which a phrase's semantic score is 0 ...
    phrase_full: float = 0.50  # ... and at which it is 1
    like_zero: float = 0.0
    like_full: float = 0.30
    prf_weight: float = 0.0  # pseudo-relevance feedback: weight of the top papers' centroid
    prf_k: int = 5
    title_repeat: int = 2  # the title counts this many times in a paper's text
    describe: bool = True  # embed arXiv's scope note with a topic that names a category
    describe_split: bool = False  # ... as the mean of the name's and the note's vectors
    like_alpha: float | None = None  # weight of the semantic score for likes (None: alpha)
    # A subscriber's like relevance x (the mean over their liked papers) becomes
    # 1 - (1 - x) ** like_lift: monotone, so the order is unchanged, but raised in the
    # middle so that the one min_score threshold sends a like-profile about as many
    # papers as it sends a topic profile. Applied by the Engine, after the mean.
    like_lift: float = 1.0
    center_likes: bool = True  # compare liked and new papers after removing the day's mean
    # Likes on a z scale: each liked paper's cosine (and its TF-IDF cosine) to the day's
    # papers is standardised over the day before fusing, and like_zero/like_full are then
    # z values. This makes the two similarities commensurate without a fixed calibration.
    like_z: bool = False


# The version of paper_text's recipe, part of every cached vector's model name: change it
# whenever paper_text changes, so that vectors stored from the old text are recomputed.
TEXT_RECIPE = 1


def paper_text(paper: Paper, title_repeat: int) -> str:
    parts = [paper.title] * max(title_repeat, 1)
    if paper.ai_keywords:
        parts.append(", ".join(paper.ai_keywords))
    parts.append(paper.abstract)
    return ". ".join(p for p in parts if p)


@dataclass(frozen=True, slots=True)
class SemanticDay:
    lexical: LexicalIndex
    vectors: np.ndarray  # (N, d) unit rows


STATIC_NAME = "semantic (static MiniLM distilled + BM25)"
ONNX_NAME = "semantic (MiniLM-L6 ONNX int8 + BM25)"


class SemanticModel:
    def __init__(
        self,
        encoder: Encoder,
        cache: EmbeddingCache,
        fusion: Fusion | None = None,
        model_id: str | None = None,
        name: str = STATIC_NAME,
        default_min_score: float = 0.50,
    ) -> None:
        self.encoder = encoder
        self.cache = cache
        self.fusion = fusion or Fusion()
        # Vectors are cached by (paper key, model name): the name says how the text was
        # made too, or a stored vector of another recipe would be taken for this one.
        recipe = f"text{TEXT_RECIPE}x{self.fusion.title_repeat}"
        self.model_id = f"{model_id or encoder.model}/{recipe}"
        self.name = name
        self.default_min_score = default_min_score

    @property
    def like_lift(self) -> float:
        return self.fusion.like_lift

    def embed_papers(self, papers: Sequence[Paper]) -> np.ndarray:
        """Vectors for `papers`, computed only for those the cache does not hold."""
        return self._cached([(p.key, paper_text(p, self.fusion.title_repeat)) for p in papers])

    def index(self, papers: Sequence[Paper]) -> int:
        """Embed and cache the papers the cache lacks; returns how many were embedded."""
        items = [(p.key, paper_text(p, self.fusion.title_repeat)) for p in papers]
        return self._encode_missing(items, self.cache.get([k for k, _ in items], self.model_id))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for free texts (topic phrases, scope notes), cached under "phrase:<text>"."""
        return self._cached([(f"phrase:{t}", t) for t in texts])

    def _cached(self, items: Sequence[tuple[str, str]]) -> np.ndarray:
        """Vectors for (cache key, text) pairs; only texts the cache lacks are encoded."""
        keys = [key for key, _ in items]
        found = self.cache.get(keys, self.model_id)
        self._encode_missing(items, found)
        if not items:
            return np.zeros((0, self.encoder.dims), dtype=np.float32)
        return np.stack([np.asarray(found[k], dtype=np.float32) for k in keys])

    def _encode_missing(
        self, items: Sequence[tuple[str, str]], found: dict[str, np.ndarray]
    ) -> int:
        """Encode the texts `found` lacks, cache them and add them to `found`."""
        missing = dict(sorted({key: text for key, text in items if key not in found}.items()))
        if missing:
            fresh = self.encoder.encode(list(missing.values()))
            new = dict(zip(missing, fresh, strict=True))
            self.cache.put(new, self.model_id)
            found.update(new)
        return len(missing)

    def embed_phrases(self, phrases: Sequence[str]) -> np.ndarray:
        f = self.fusion
        if not f.describe:
            return self.embed_texts(phrases)
        if not f.describe_split:
            return self.embed_texts([describe(p) for p in phrases])
        # A category's name and its scope note each give a vector; the topic is their mean.
        parts = [describe_parts(p) for p in phrases]
        flat = self.embed_texts([t for ts in parts for t in ts])
        out = np.zeros((len(phrases), self.encoder.dims), dtype=np.float32)
        start = 0
        for i, ts in enumerate(parts):
            out[i] = flat[start : start + len(ts)].mean(axis=0)
            start += len(ts)
        return _unit(out)

    def prepare(self, papers: Sequence[Paper], history: Sequence[Paper]) -> SemanticDay:
        return SemanticDay(LexicalIndex.build(papers, history), self.embed_papers(papers))

    def phrase_scores(self, day: object, phrases: Sequence[str]) -> np.ndarray:
        assert isinstance(day, SemanticDay)
        f = self.fusion
        lex = day.lexical.phrase_scores(phrases)
        if not phrases:
            return lex
        q = self.embed_phrases(phrases)
        fused = self._fuse(q @ day.vectors.T, lex, f.phrase_zero, f.phrase_full)
        if f.prf_weight > 0 and day.vectors.shape[0] > f.prf_k:
            # Move each phrase toward the centroid of its best-matching papers, then rescore.
            top = np.argpartition(-fused, f.prf_k - 1, axis=1)[:, : f.prf_k]
            centroid = day.vectors[top].mean(axis=1)
            q2 = q + f.prf_weight * centroid
            q2 /= np.maximum(np.linalg.norm(q2, axis=1, keepdims=True), 1e-9)
            fused = self._fuse(q2 @ day.vectors.T, lex, f.phrase_zero, f.phrase_full)
        return fused

    def like_scores(self, day: object, liked: Sequence[Paper]) -> np.ndarray:
        assert isinstance(day, SemanticDay)
        f = self.fusion
        lex = day.lexical.like_cosines(liked) if f.like_z else day.lexical.like_scores(liked)
        if not liked:
            return lex.astype(np.float32)
        liked_vectors, candidates = self.embed_papers(liked), day.vectors
        if f.center_likes:
            # All papers share a large common direction; what is left is what tells them apart.
            mean = candidates.mean(axis=0)
            liked_vectors = _unit(liked_vectors - mean)
            candidates = _unit(candidates - mean)
        cos = liked_vectors @ candidates.T
        alpha = f.alpha if f.like_alpha is None else f.like_alpha
        if f.like_z:
            fused = alpha * _zscore(cos) + (1.0 - alpha) * _zscore(lex)
            scaled = (fused - f.like_zero) / (f.like_full - f.like_zero)
            out: np.ndarray = np.clip(scaled, 0.0, 1.0).astype(np.float32)
            return out
        return self._fuse(cos, lex, f.like_zero, f.like_full, alpha)

    # Learning from feedback: the stored embeddings.
    def features(self, day: object) -> np.ndarray:
        assert isinstance(day, SemanticDay)
        return day.vectors

    def paper_features(self, day: object, papers: Sequence[Paper]) -> np.ndarray:
        return self.embed_papers(papers)

    def phrase_features(self, day: object, phrases: Sequence[str]) -> np.ndarray:
        return self.embed_phrases(phrases)

    def _fuse(
        self, cos: np.ndarray, lex: np.ndarray, zero: float, full: float, alpha: float | None = None
    ) -> np.ndarray:
        a = self.fusion.alpha if alpha is None else alpha
        sem = np.clip((cos - zero) / (full - zero), 0.0, 1.0)
        out: np.ndarray = (a * sem + (1.0 - a) * lex).astype(np.float32)
        return out


# Tuned for the full encoder on the dev days only (bench/rank_eval.py, RANKING.md): the
# paper text is "title. abstract" as MiniLM was trained on; a light pseudo-relevance
# feedback step for topics. Likes: the centred ONNX cosine and the TF-IDF cosine, each
# z-scored over the day, fused 0.75/0.25; a mean z of 1 maps to relevance 0.50 (dev
# listing days: 10 papers a day, 39 % precision at min_score 0.50). On dev this beat
# the fixed cosine calibration (listing 0.463 -> 0.486, HF 0.781 -> 0.799).
ONNX_FUSION = Fusion(
    title_repeat=1,
    like_z=True,
    like_zero=-3.0,
    like_full=5.0,
    prf_weight=0.25,
    prf_k=5,
)


def _zscore(m: np.ndarray) -> np.ndarray:
    """Each row standardised over the day's papers (a constant row becomes 0)."""
    m = np.asarray(m, dtype=np.float64)
    sd = m.std(axis=1, keepdims=True)
    out: np.ndarray = (m - m.mean(axis=1, keepdims=True)) / np.where(sd > 1e-12, sd, 1.0)
    return out


def _unit(m: np.ndarray) -> np.ndarray:
    out: np.ndarray = m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-9)
    return out


def _file_id(path: Path | None) -> str:
    """The model name in the cache changes whenever the model file does."""
    from importlib import resources

    from digest.rank.static import DEFAULT_MODEL

    ref = path if path is not None else resources.files("digest") / "data" / DEFAULT_MODEL
    digest = hashlib.sha256(ref.read_bytes()).hexdigest()[:12]
    return digest


def make_static(
    cache: EmbeddingCache, path: Path | None = None, fusion: Fusion | None = None
) -> Engine:
    """The static-table route; ConfigError when its model file is missing or unreadable."""
    encoder = StaticEncoder(path)
    model = SemanticModel(encoder, cache, fusion, model_id=f"{encoder.model}@{_file_id(path)}")
    return Engine(model)


def make_onnx(cache: EmbeddingCache, fusion: Fusion | None = None) -> Engine:
    """The full-encoder route; ConfigError when onnxruntime/tokenizers or the graph are missing."""
    from digest.rank.onnx import OnnxEncoder

    encoder = OnnxEncoder()
    model = SemanticModel(encoder, cache, fusion or ONNX_FUSION, name=ONNX_NAME)
    return Engine(model)


def make_semantic(cache: EmbeddingCache, route: str = "auto") -> Engine:
    """The best semantic route here: "onnx", then "static"; ConfigError if none can load."""
    errors: list[str] = []
    if route in ("auto", "onnx"):
        try:
            return make_onnx(cache)
        except ConfigError as exc:
            if route == "onnx":
                raise
            log.warning("event=ranker_fallback route=onnx error=%s", exc)
            errors.append(str(exc))
    try:
        return make_static(cache)
    except ConfigError as exc:
        errors.append(str(exc))
    raise ConfigError("; ".join(errors))
