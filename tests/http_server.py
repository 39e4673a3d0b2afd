"""Test helpers for the sources: where the recorded data lives, and a real HTTP server.

The recorded pages the tests need are in the repository (`tests/fixtures/`, see its
README; the text dumps are `examples/pages/`). The larger recorded set beside the
repository (`../shared`) is reached only through `shared_data(...)`, which skips the
test with its reason when it is absent, and fails it under `CI=true`.

`RecordedServer` is a threaded `http.server` on 127.0.0.1 (port 0) that answers like
huggingface.co from the recorded files:

- `/api/daily_papers?date=D` → `D.json` in `server.api_days` (the fixtures' days unless
  a test points it at `shared_data(...)`; 404 if there is none);
  later pages (`&p=N`) are empty arrays unless a test scripts them;
- `/papers?date=2024-08-01` → the recorded HTML page;

and misbehaves on demand: `server.script(target, Reply(...), ...)` queues replies for
one path+query (the last one repeats): 429 with Retry-After, 500 then 200, a slow
reply, a body cut off before its Content-Length, an ETag honoured with 304. Every
request is logged (`server.requests`) with its headers and arrival time.

Fixtures: `recorded_server` (one per session) and `http_server` (the same server,
reset for each test). Import them into a test module or conftest.py.

`fetch_remembering(source, ctx)` reads a source as the pipeline does, applying each
page's memo to the context's `MemoryState` once the page is handled.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from digest.sources import FetchContext, MemoryState, PageResult, Source

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
PAGES = ROOT / "examples" / "pages"  # the five saved text dumps (a copy of ../shared/pages)
API_DAYS = FIXTURES / "hf-daily-papers-api" / "days"
API_MALFORMED = FIXTURES / "hf-daily-papers-api" / "malformed"
HTML_DAY = FIXTURES / "hf-papers-html" / "papers_2024-08-01.html"

# CI clones the repository with the larger shared data folder beside it.
SHARED = ROOT.parent / "shared"


def shared_data(relative: str) -> Path:
    """`../shared/<relative>`, e.g. `shared_data("data/hf-daily-papers-api/days")`.

    When it is absent (a fresh clone on its own), the calling test is skipped with the
    reason; under `CI=true` it fails instead, so CI never passes by skipping.
    """
    path = SHARED / relative
    if path.exists():
        return path
    reason = f"needs the shared data beside the repository: {path} is absent"
    if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
        pytest.fail(f"{reason} (CI=true: not skipped)")
    pytest.skip(reason)


def fetch_remembering(source: Source, ctx: FetchContext) -> list[PageResult]:
    """All pages of one run; each page's memo is remembered after it is handled."""
    assert isinstance(ctx.state, MemoryState)
    pages = []
    for page in source.fetch(ctx):
        pages.append(page)
        ctx.state.remember(page.memo)
    return pages


class FakeClock:
    """An injected monotonic clock for HttpClient: it moves only when its sleep waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass(frozen=True)
class Reply:
    """One scripted answer. `etag`: answer 304 when the request's If-None-Match matches."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (to exceed a client timeout)
    cut_after: int | None = None  # send only this many body bytes, then close
    etag: str | None = None


@dataclass(frozen=True)
class Seen:
    target: str  # path and query
    headers: dict[str, str]
    at: float  # time.monotonic() on arrival


class RecordedServer:
    def __init__(self) -> None:
        self.api_days = API_DAYS  # where `/api/daily_papers?date=D` is answered from
        self.requests: list[Seen] = []
        self._scripts: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server._handle(self)

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output clean

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def script(self, target: str, *replies: Reply) -> str:
        """Queue replies for `target` (path with query); returns its full URL."""
        with self._lock:
            self._scripts[target] = list(replies)
        return self.url + target

    def hits(self, target: str) -> list[Seen]:
        return [seen for seen in self.requests if seen.target == target]

    def reset(self) -> None:
        with self._lock:
            self._scripts.clear()
            self.requests.clear()
            self.api_days = API_DAYS

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # --- answering ------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.requests.append(Seen(handler.path, dict(handler.headers), time.monotonic()))
            queue = self._scripts.get(handler.path)
            reply = (queue.pop(0) if len(queue) > 1 else queue[0]) if queue else None
        if reply is None:
            reply = _recorded(handler.path, self.api_days)
        if reply.delay:
            time.sleep(reply.delay)
        if reply.etag is not None and handler.headers.get("If-None-Match") == reply.etag:
            reply = Reply(304, headers={"ETag": reply.etag})
        headers = dict(reply.headers)
        if reply.etag is not None:
            headers.setdefault("ETag", reply.etag)
        try:
            handler.send_response(reply.status)
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(reply.body)))
            if reply.cut_after is not None:
                handler.send_header("Connection", "close")
            handler.end_headers()
            if reply.status != 304:
                body = reply.body if reply.cut_after is None else reply.body[: reply.cut_after]
                handler.wfile.write(body)
            handler.wfile.flush()
            if reply.cut_after is not None:
                handler.close_connection = True
                handler.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # the client gave up (timeout test): nothing to answer to


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up (the timeout tests) is not a server error


def _recorded(target: str, api_days: Path) -> Reply:
    """Answer like huggingface.co from the recorded files."""
    parts = urlsplit(target)
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    day = query.get("date", "")
    if parts.path == "/api/daily_papers":
        if query.get("p", "0") != "0":
            return _json(b"[]")
        file = api_days / f"{day}.json"
        if day and "/" not in day and file.is_file():
            return _json(file.read_bytes())
        return Reply(404, b'{"error":"Not Found"}', {"Content-Type": "application/json"})
    if parts.path == "/papers" and day == "2024-08-01":
        return Reply(200, HTML_DAY.read_bytes(), {"Content-Type": "text/html; charset=utf-8"})
    return Reply(404, b"Not Found", {"Content-Type": "text/plain"})


def _json(body: bytes) -> Reply:
    return Reply(200, body, {"Content-Type": "application/json; charset=utf-8"})


def api_target(day: str, page: int = 0) -> str:
    """The path+query the hf-api source asks for: `date=D`, then `&p=N`."""
    return f"/api/daily_papers?date={day}" + (f"&p={page}" if page else "")


@pytest.fixture(scope="session")
def recorded_server() -> Iterator[RecordedServer]:
    server = RecordedServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def http_server(recorded_server: RecordedServer) -> Iterator[RecordedServer]:
    recorded_server.reset()
    yield recorded_server
    recorded_server.reset()
