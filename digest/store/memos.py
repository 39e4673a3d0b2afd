"""What the sources remember between runs: saved files already read, URLs' validators."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.models import FileFingerprint, SourceMemo, UrlMemo, Validators
from digest.store.db import upsert
from digest.store.schema import http_cache_table, source_files_table


def file_fingerprint(conn: Connection, path: str) -> FileFingerprint | None:
    t = source_files_table
    row = conn.execute(sa.select(t).where(t.c.path == path)).first()
    return FileFingerprint(row.path, row.size, row.mtime_ns, row.sha256) if row else None


def http_validators(conn: Connection, url: str) -> Validators | None:
    t = http_cache_table
    row = conn.execute(sa.select(t).where(t.c.url == url)).first()
    return Validators(row.etag, row.last_modified) if row else None


def remember(conn: Connection, memo: SourceMemo, now: datetime) -> None:
    if isinstance(memo, UrlMemo):
        values = {
            "etag": memo.validators.etag,
            "last_modified": memo.validators.last_modified,
            "checked_at": now,
        }
        upsert(conn, http_cache_table, {"url": memo.url}, values)
    else:
        fingerprint = {"size": memo.size, "mtime_ns": memo.mtime_ns, "sha256": memo.sha256}
        upsert(conn, source_files_table, {"path": memo.path}, {**fingerprint, "read_at": now})
