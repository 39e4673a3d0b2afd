"""The full-encoder route: the shipped int8 MiniLM-L6 graph, and which route is active."""

from __future__ import annotations

import numpy as np
import pytest

from digest.rank import MemoryEmbeddingCache, make_ranker

pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")


def test_paraphrase_is_closer_than_an_unrelated_sentence() -> None:
    from digest.rank.onnx import OnnxEncoder

    enc = OnnxEncoder()
    v = enc.encode(
        [
            "A neural network learns to translate English sentences into French.",
            "Machine translation from English to French with deep learning.",
            "The Southern Ocean absorbs carbon dioxide in winter.",
        ]
    )
    assert v.shape == (3, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    para, unrelated = float(v[0] @ v[1]), float(v[0] @ v[2])
    assert para > 0.5 > unrelated + 0.3
    # Batching and padding must not change a text's vector.
    alone = enc.encode(["Machine translation from English to French with deep learning."])
    assert float(alone[0] @ v[1]) > 0.9999


def test_auto_reports_the_active_route() -> None:
    assert make_ranker("auto", MemoryEmbeddingCache()).name == (
        "semantic (MiniLM-L6 ONNX int8 + BM25)"
    )
    assert make_ranker("static", MemoryEmbeddingCache()).name == (
        "semantic (static MiniLM distilled + BM25)"
    )
    assert make_ranker("lexical").name == "lexical (BM25)"


def test_auto_falls_back_to_static_without_onnxruntime(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    ranker = make_ranker("auto", MemoryEmbeddingCache())
    assert ranker.name == "semantic (static MiniLM distilled + BM25)"
