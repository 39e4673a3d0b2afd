"""Every subscriber once, whatever fails: real `digest worker` processes, a real SMTP server,
SQLite and PostgreSQL. Killed, stopped and concurrent workers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from smtp_server import RecordingHandler, ScriptedHandler, free_port, serve

from digest.models import Paper
from digest.store import PlannedDigest, Store
from digest.store.outbox import NEW_SUBSCRIBER

NOW = datetime(2026, 11, 29, 6, 30, tzinfo=UTC)
_MESSAGE_ID = re.compile(rb"^Message-ID: (\S+)", re.M | re.I)


class SlowHandler(RecordingHandler):
    """Accepts every message after a short pause, so a test can act mid-run."""

    def __init__(self, pause: float) -> None:
        super().__init__()
        self.pause = pause

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(self.pause)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def sink() -> Iterator[tuple[Controller, SlowHandler]]:
    handler = SlowHandler(0.002)
    with serve(handler) as controller:
        yield controller, handler


def seed_outbox(url: str, count: int) -> None:
    """`count` planned digests, one per subscriber, each holding the same two papers."""
    store = Store.open(url)
    try:
        store.ingest([Paper("Alpha", "A.", "2611.00001"), Paper("Beta", "B.", "2611.00002")], NOW)
        ids = tuple(store.candidates(["x@example.org"], NOW, 7).ids.values())
        papers = [{"id": i, "score": 0.9, "why": ["topic: test"]} for i in ids]
        digests = [
            PlannedDigest(
                f"s{n:05d}@example.org",
                NOW.date(),
                ids,
                {"considered": 2, "papers": papers},
                0,
                NEW_SUBSCRIBER,
            )
            for n in range(count)
        ]
        store.plan(digests, now=NOW, domain="example.org")
    finally:
        store.close()


def worker_env(folder: Path, url: str, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    (folder / "digest.toml").write_text('[[subscribers]]\nemail = "x@example.org"\n')
    env.update(
        DIGEST_DATABASE_URL=url,
        DIGEST_CONFIG=str(folder / "digest.toml"),
        DIGEST_SMTP_HOST="127.0.0.1",
        DIGEST_SMTP_PORT=str(port),
        DIGEST_SMTP_SECURITY="none",
        DIGEST_FROM="Digest <digest@example.org>",
        **extra,
    )
    return env


def start_worker(folder: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "worker", "--once"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def received_ids(handler: RecordingHandler) -> Counter[bytes]:
    found = Counter()
    for raw in list(handler.raw):
        match = _MESSAGE_ID.search(raw)
        assert match is not None
        found[match.group(1)] += 1
    return found


def wait_for(handler: RecordingHandler, count: int, process: subprocess.Popen[bytes]) -> None:
    """Until the server has `count` messages (or the worker ended): polls, asserts nothing."""
    deadline = time.monotonic() + 120  # a bound on the wait, not an assertion on time
    while len(handler.raw) < count and process.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.01)


def messages_by_status(url: str) -> dict[str, int]:
    store = Store.open(url)
    try:
        return store.message_counts()
    finally:
        store.close()


def test_two_workers_on_postgresql_share_the_outbox_exactly_once(
    postgres_url: str, tmp_path: Path, sink: tuple[Controller, SlowHandler]
) -> None:
    controller, handler = sink
    seed_outbox(postgres_url, 1000)
    env = worker_env(tmp_path, postgres_url, controller.port, DIGEST_DELIVERY_BATCH="16")
    workers = [start_worker(tmp_path, env) for _ in range(2)]
    outputs = [w.communicate(timeout=240) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    counts = received_ids(handler)
    assert len(counts) == 1000 and max(counts.values()) == 1
    # Both took part: each worker's summary line says how many it sent.
    sent = [int(re.search(rb"sent (\d+)", out).group(1)) for out, _ in outputs]  # type: ignore[union-attr]
    assert sum(sent) == 1000 and min(sent) > 0, sent
    assert messages_by_status(postgres_url) == {"sent": 1000}


def test_a_killed_worker_loses_nothing_and_duplicates_at_most_its_pool(
    database_url: str, tmp_path: Path, sink: tuple[Controller, SlowHandler]
) -> None:
    controller, handler = sink
    url = database_url
    seed_outbox(url, 300)
    # A lease far shorter than the run: the next worker may take over at once.
    env = worker_env(tmp_path, url, controller.port, DIGEST_DELIVERY_LEASE="0.05")
    first = start_worker(tmp_path, env)
    wait_for(handler, 60, first)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    second = start_worker(tmp_path, env)
    out, err = second.communicate(timeout=240)
    assert second.returncode == 0, (out, err)
    counts = received_ids(handler)
    assert len(counts) == 300  # nothing lost
    duplicates = sum(n - 1 for n in counts.values())
    assert duplicates <= 4  # at most the messages in the server's hands at the kill
    assert messages_by_status(url) == {"sent": 300}


def test_a_worker_sent_sigterm_finishes_in_flight_and_sends_nothing_twice(
    tmp_path: Path, sink: tuple[Controller, SlowHandler]
) -> None:
    controller, handler = sink
    url = f"sqlite:///{tmp_path / 'digest.db'}"
    seed_outbox(url, 300)
    env = worker_env(tmp_path, url, controller.port)
    first = start_worker(tmp_path, env)
    wait_for(handler, 60, first)
    first.send_signal(signal.SIGTERM)
    out, err = first.communicate(timeout=30)
    assert first.returncode in (0, 1) and b"Traceback" not in err, err
    assert b"sent " in out
    left = messages_by_status(url)
    assert left.get("sending", 0) == 0  # in-flight finished, the rest given back
    second = start_worker(tmp_path, env)
    second.communicate(timeout=240)
    counts = received_ids(handler)
    assert len(counts) == 300 and max(counts.values()) == 1


def test_a_permanent_refusal_fails_once_and_releases_the_papers(tmp_path: Path) -> None:
    handler = ScriptedHandler({"s00001@example.org": ("RCPT", "550 5.1.1 No such user")})
    with serve(handler) as controller:
        url = f"sqlite:///{tmp_path / 'digest.db'}"
        seed_outbox(url, 3)
        env = worker_env(tmp_path, url, controller.port)
        worker = start_worker(tmp_path, env)
        _out, err = worker.communicate(timeout=60)
    assert worker.returncode == 1
    assert b"s00001@example.org: failed" in err and b"550" in err
    assert len(handler.raw) == 2
    assert messages_by_status(url) == {"sent": 2, "failed": 1}
    store = Store.open(url)
    try:
        # The refused digest's papers are offered again; the others' are not.
        cands = store.candidates(["s00001@example.org", "s00002@example.org"], NOW, 7)
        assert len(cands.eligible["s00001@example.org"]) == 2
        assert cands.eligible["s00002@example.org"] == set()
    finally:
        store.close()


def test_a_dead_server_pauses_delivery_instead_of_burning_the_list(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'digest.db'}"
    seed_outbox(url, 200)
    env = worker_env(tmp_path, url, free_port(), DIGEST_STORM_LIMIT="5")  # nobody listens
    worker = start_worker(tmp_path, env)
    _out, err = worker.communicate(timeout=120)
    assert worker.returncode == 1 and b"delivery paused" in err, err
    left = messages_by_status(url)
    # Only the first few were tried; the rest wait in the outbox, untouched.
    assert left.get("retry", 0) <= 5 + 4 and left.get("pending", 0) >= 190
    assert left.get("sending", 0) == 0


def test_status_counts_runs_and_exits_non_zero_after_failures(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'digest.db'}"
    seed_outbox(url, 1)
    store = Store.open(url)
    try:
        run = store.start_run("send-now", NOW)
        store.finish_run(
            run,
            NOW + timedelta(minutes=1),
            {"planned": 1, "sent": 0, "retrying": 0, "failed": 1, "suppressed": 0},
            ["x: SMTP 550"],
        )
    finally:
        store.close()
    env = worker_env(tmp_path, url, free_port())
    status = subprocess.run(
        [sys.executable, "-m", "digest", "status"], cwd=tmp_path, env=env, capture_output=True
    )
    assert status.returncode == 1, status.stderr
    assert b"send-now" in status.stdout and b"1 pending" in status.stdout


def test_two_overlapping_send_now_runs_never_send_twice(
    database_url: str, tmp_path: Path, sink: tuple[Controller, SlowHandler]
) -> None:
    controller, handler = sink
    url = database_url
    pages = Path(__file__).resolve().parents[1] / "examples" / "pages"
    subscribers = "".join(
        f'[[subscribers]]\nemail = "u{n:02d}@example.org"\ntopics = ["language models"]\n'
        for n in range(20)
    )
    env = worker_env(tmp_path, url, controller.port, DIGEST_RANKER="lexical")
    Path(env["DIGEST_CONFIG"]).write_text(
        f'[[sources]]\nkind = "text-dump"\npath = "{pages}"\n\n{subscribers}'
    )
    Store.open(url).close()  # migrate once, so both runs start on equal terms
    command = [sys.executable, "-m", "digest", "send-now", "--force"]
    runs = [
        subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    outputs = [r.communicate(timeout=240) for r in runs]
    for run, (out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, (out, err)
        assert b"Traceback" not in err
    recipients = Counter(address for envelope in handler.envelopes for address in envelope.rcpt_tos)
    assert len(recipients) == 20 and max(recipients.values()) == 1
    both = b"".join(out for out, _ in outputs)
    assert both.count(b"planned by another run") + both.count(b"sent to") >= 20
