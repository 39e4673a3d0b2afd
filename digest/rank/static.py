"""A static sentence encoder: WordPiece tokens looked up in a table distilled from MiniLM.

The table (digest/data/static-minilm.npz, made by tools/distill_static.py) holds one
int8 vector per token of MiniLM's uncased WordPiece vocabulary; a text's embedding is
the mean of its tokens' vectors. No torch and no tokenizer library: the BERT basic
tokenizer and greedy WordPiece are re-implemented here (they are short), so the
semantic ranker installs with numpy alone.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from digest.errors import ConfigError

DEFAULT_MODEL = "static-minilm.npz"
_MAX_WORD = 100


def _is_punct(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def basic_tokens(text: str) -> list[str]:
    """BERT's uncased basic tokenizer: lower-case, strip accents, split off punctuation."""
    out: list[str] = []
    for raw in text.lower().split():
        word = "".join(
            c for c in unicodedata.normalize("NFD", raw) if unicodedata.category(c) != "Mn"
        )
        current: list[str] = []
        for ch in word:
            cat = unicodedata.category(ch)
            if ch == "\ufffd" or cat in ("Cc", "Cf"):
                continue
            if _is_punct(ch) or _is_cjk(ord(ch)):
                if current:
                    out.append("".join(current))
                    current = []
                out.append(ch)
            else:
                current.append(ch)
        if current:
            out.append("".join(current))
    return out


class WordPiece:
    """Greedy longest-match-first WordPiece over a fixed vocabulary, cached per word."""

    def __init__(self, vocab: Sequence[str]) -> None:
        self.index = {tok: i for i, tok in enumerate(vocab)}
        self.unk = self.index.get("[UNK]", 0)
        self._word = lru_cache(maxsize=200_000)(self._pieces)

    def _pieces(self, word: str) -> tuple[int, ...]:
        if len(word) > _MAX_WORD:
            return (self.unk,)
        ids: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.index:
                    found = self.index[piece]
                    break
                end -= 1
            if found is None:
                return (self.unk,)
            ids.append(found)
            start = end
        return tuple(ids)

    def ids(self, text: str) -> list[int]:
        out: list[int] = []
        for word in basic_tokens(text):
            out.extend(self._word(word))
        return out


class StaticEncoder:
    """Texts to unit vectors: the mean of the texts' token vectors."""

    def __init__(self, path: Path | None = None) -> None:
        try:
            if path is None:
                ref = resources.files("digest") / "data" / DEFAULT_MODEL
                with resources.as_file(ref) as p, np.load(p) as data:
                    tokens, vectors, scales = data["tokens"], data["vectors"], data["scales"]
                    center = data["center"] if "center" in data.files else None
            else:
                with np.load(path) as data:
                    tokens, vectors, scales = data["tokens"], data["vectors"], data["scales"]
                    center = data["center"] if "center" in data.files else None
        except (OSError, KeyError, ValueError) as exc:
            raise ConfigError(
                f"semantic model {path or DEFAULT_MODEL}: cannot load: {exc}"
            ) from exc
        self.table = (vectors.astype(np.float32) * scales[:, None]).astype(np.float32)
        self.wordpiece = WordPiece([str(t) for t in tokens])
        self.dims = int(self.table.shape[1])
        # The mean paper vector of the distillation corpus: every text's mean of tokens
        # shares it, so it is removed before normalising (cosines then spread over -1..1).
        self.center = None if center is None else np.asarray(center, dtype=np.float32)
        self.model = f"static-minilm-{self.dims}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        for i, text in enumerate(texts):
            ids = self.wordpiece.ids(text)
            if ids:
                out[i] = self.table[ids].mean(axis=0)
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
        if self.center is not None:
            out -= self.center
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
        return out
