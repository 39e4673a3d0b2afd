"""The genuine all-MiniLM-L6-v2 as an int8 ONNX graph: onnxruntime + tokenizers, no torch.

The graph (digest/data/minilm-l6-int8.onnx, made by tools/export_onnx.py) already ends
with sentence-transformers' mean pooling and L2 normalisation, so a text's embedding is
exactly what `SentenceTransformer("all-MiniLM-L6-v2").encode(..., normalize_embeddings=True)`
returns, up to int8 rounding (mean cosine 0.994 to the torch model on real abstracts).
Texts are cut at 256 WordPiece tokens, as the model's max_seq_length is. Each text runs
on its own (BATCH = 1): the int8 graph quantises activations with one scale per tensor,
so padding a text into a batch would change its vector (cosine 0.99 to itself alone) and
the ranking would depend on which papers arrived together. On 2 cores a batch of one is
no slower than a padded batch of 16 for abstracts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from digest.errors import ConfigError

DEFAULT_ONNX = "minilm-l6-int8.onnx"
DEFAULT_TOKENIZER = "minilm-tokenizer.json"
MAX_TOKENS = 256
BATCH = 1
THREADS = 2


def _data_file(name: str) -> Path:
    ref = resources.files("digest") / "data" / name
    return Path(str(ref))


class OnnxEncoder:
    """Texts to unit vectors (384 dims) with the int8 MiniLM-L6 graph."""

    def __init__(
        self,
        model: Path | None = None,
        tokenizer: Path | None = None,
        threads: int = THREADS,
    ) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ConfigError(f"semantic model (ONNX): {exc}") from exc
        model = model or _data_file(DEFAULT_ONNX)
        tokenizer = tokenizer or _data_file(DEFAULT_TOKENIZER)
        try:
            raw = model.read_bytes()
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            self.session: Any = ort.InferenceSession(
                raw, options, providers=["CPUExecutionProvider"]
            )
            self.tokenizer: Any = Tokenizer.from_file(str(tokenizer))
        except Exception as exc:  # onnxruntime and tokenizers raise their own types
            raise ConfigError(f"semantic model {model.name}: cannot load: {exc}") from exc
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.dims = int(self.session.get_outputs()[0].shape[-1])
        # The cache key changes whenever the model file does.
        self.model = f"minilm-l6-onnx-int8@{hashlib.sha256(raw).hexdigest()[:12]}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch(list(texts))
        lengths = [len(e.ids) for e in encodings]
        order = sorted(range(len(texts)), key=lambda i: (lengths[i], i))
        for start in range(0, len(order), BATCH):
            rows = order[start : start + BATCH]
            width = max(lengths[i] for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                ids[r, : lengths[i]] = encodings[i].ids
                mask[r, : lengths[i]] = 1
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            feed = {k: v for k, v in feed.items() if k in self.inputs}
            out[rows] = self.session.run(None, feed)[0]
        return out
