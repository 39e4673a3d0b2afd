"""The database connection: opening, migrating, transactions and what errors mean.

Every database error leaves this package as a `StoreError` with one line that names the
database (its URL without a password), never as a SQLAlchemy traceback.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from digest.errors import StoreError

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
BATCH = 500  # rows per statement: under every database's limit on bound parameters
_MIGRATION_LOCK = 74201  # PostgreSQL advisory lock id: one process migrates at a time
T = TypeVar("T")


def create_engine(url: str) -> Engine:
    try:
        engine = sa.create_engine(url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"DIGEST_DATABASE_URL: cannot use {safe_url(url)}: {exc}") from None
    except ImportError as exc:
        raise StoreError(
            f"DIGEST_DATABASE_URL: {safe_url(url)} needs a driver that is not installed "
            f"({exc}); for PostgreSQL: pip install 'paper-digest[postgres]'"
        ) from None
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema up to date (Alembic); several workers starting at once take turns."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})"))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction; any database error becomes a one-line StoreError."""
    try:
        with engine.begin() as conn:
            yield conn
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(describe_error(engine, exc)) from exc


def describe_error(engine: Engine, exc: BaseException) -> str:
    url = engine.url
    first = first_line(exc)
    if url.get_backend_name() == "sqlite" and isinstance(exc, sa.exc.DatabaseError):
        lowered = first.lower()
        if "not a database" in lowered or "malformed" in lowered or "encrypted" in lowered:
            return (
                f"{url.database}: not a usable SQLite database ({first}); the file was left "
                "untouched: move it away or point DIGEST_DATABASE_URL elsewhere"
            )
    return f"database {safe_url(str(url))}: {first}"


def upsert(
    conn: Connection, table: sa.Table, key: Mapping[str, object], values: Mapping[str, object]
) -> None:
    """Insert the row, or update it where the key exists: one statement, race-free."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values({**key, **values})
    conn.execute(statement.on_conflict_do_update(index_elements=list(key), set_=dict(values)))


def chunks(items: Sequence[T], size: int = BATCH) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparseable URL>"


def first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc) or type(exc).__name__
    return text.strip().splitlines()[0]


def _sqlite_connect(dbapi_conn: Any, _record: object) -> None:
    # Transactions are begun by _sqlite_begin, not by the driver.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "memory":
        # WAL: readers never block the writer; NORMAL: no fsync per commit (still safe
        # against a process crash; a power cut may lose the last commits, never corrupt).
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # IMMEDIATE: take the write lock at the start, so two processes that read then
    # write (plan, claim) wait their turn instead of failing with "database is locked".
    conn.exec_driver_sql("BEGIN IMMEDIATE")
