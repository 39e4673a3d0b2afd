"""The ranker's cache: one vector per (paper key or profile phrase, model)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.store.db import chunks
from digest.store.schema import embeddings_table


def get(conn: Connection, keys: Sequence[str], model: str) -> dict[str, np.ndarray]:
    t = embeddings_table
    found: dict[str, np.ndarray] = {}
    for chunk in chunks(keys):
        query = sa.select(t.c.paper_key, t.c.vector).where(
            t.c.model == model, t.c.paper_key.in_(chunk)
        )
        for row in conn.execute(query):
            found[row.paper_key] = np.frombuffer(row.vector, dtype=np.float32)
    return found


def put(conn: Connection, vectors: Mapping[str, np.ndarray], model: str) -> None:
    t = embeddings_table
    for chunk in chunks(list(vectors.items())):
        conn.execute(t.delete().where(t.c.model == model, t.c.paper_key.in_([k for k, _ in chunk])))
        conn.execute(
            t.insert(),
            [
                {"paper_key": k, "model": model, "vector": np.asarray(v, np.float32).tobytes()}
                for k, v in chunk
            ],
        )
