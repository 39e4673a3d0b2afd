"""Shared fixtures: a real SMTP server (aiosmtpd), real SQLite and PostgreSQL databases."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from smtp_server import RecordingHandler, free_port

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
POSTGRES_URL = os.environ.get("DIGEST_TEST_POSTGRES_URL")


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, RecordingHandler]]:
    """A real SMTP server on 127.0.0.1 that records what it receives."""
    yield from _serve(RecordingHandler())


@pytest.fixture
def smtp_server_factory() -> Iterator[object]:
    controllers: list[Controller] = []

    def start(handler: RecordingHandler) -> Controller:
        controller = Controller(handler, hostname="127.0.0.1", port=free_port())
        controller.start()
        controllers.append(controller)
        return controller

    yield start
    for controller in controllers:
        controller.stop()


def _serve(handler: RecordingHandler) -> Iterator[tuple[Controller, RecordingHandler]]:
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


def _postgres_schema_url() -> Iterator[str]:
    """A fresh schema in the test database, dropped afterwards."""
    if not POSTGRES_URL:
        if os.environ.get("CI") == "true":
            pytest.fail("DIGEST_TEST_POSTGRES_URL must be set under CI")
        pytest.skip(
            "PostgreSQL tests need DIGEST_TEST_POSTGRES_URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"
        )
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.engine.make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every store test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'digest.db'}"
    else:
        yield from _postgres_schema_url()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No DIGEST_* variables from the developer's shell or .env; run in a temp folder."""
    for name in list(os.environ):
        if name.startswith("DIGEST_") and name != "DIGEST_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema on the test PostgreSQL server (skipped without one, never in CI)."""
    yield from _postgres_schema_url()
