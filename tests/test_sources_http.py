"""HTTP retrieval and the web sources, against a real server on 127.0.0.1 (no mocks)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from http_server import (
    API_DAYS,
    HTML_DAY,
    FakeClock,
    RecordedServer,
    Reply,
    api_target,
    fetch_remembering,
)
from http_server import http_server as http_server  # fixture
from http_server import recorded_server as recorded_server  # fixture

from digest.errors import SourceError
from digest.models import UrlMemo
from digest.sources import (
    USER_AGENT,
    FetchContext,
    HttpClient,
    MemoryState,
    PageResult,
    Source,
    Validators,
    build_source,
)


class Sleeps(list[float]):
    """An injected sleep: records the wait instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def http(sleeps: Sleeps) -> Iterator[HttpClient]:
    with HttpClient(
        timeout=2.0, retries=2, backoff=0.5, min_delay=0.0, sleep=sleeps, jitter=lambda: 1.0
    ) as client:
        yield client


def _source(server: RecordedServer, **spec: object) -> Source:
    return build_source({"base_url": server.url, **spec}, config_dir=Path("."), where="t.toml")


def _fetch(source: Source, ctx: FetchContext) -> list[PageResult]:
    return list(source.fetch(ctx))


# --- the client -----------------------------------------------------------------------


def test_user_agent_names_the_project(http_server: RecordedServer, http: HttpClient) -> None:
    url = http_server.script("/ua", Reply(200, b"hi"))
    assert http.get(url).content == b"hi"
    (seen,) = http_server.hits("/ua")
    assert seen.headers["User-Agent"] == USER_AGENT
    assert (
        USER_AGENT.startswith("paper-digest/")
        and "(+https://github.com/paper-digest)" in USER_AGENT
    )


def test_500_then_200_is_retried_with_backoff(
    http_server: RecordedServer, http: HttpClient, sleeps: Sleeps
) -> None:
    url = http_server.script("/flaky", Reply(500), Reply(503), Reply(200, b"[]"))
    assert http.get(url).content == b"[]"
    assert len(http_server.hits("/flaky")) == 3
    assert sleeps == [0.5, 1.0]  # exponential: backoff, then twice that (jitter pinned)


def test_429_honours_retry_after_seconds(
    http_server: RecordedServer, http: HttpClient, sleeps: Sleeps
) -> None:
    url = http_server.script("/busy", Reply(429, headers={"Retry-After": "7"}), Reply(200, b"ok"))
    assert http.get(url).content == b"ok"
    assert sleeps == [7.0]


def test_429_honours_retry_after_http_date(http_server: RecordedServer, sleeps: Sleeps) -> None:
    now = datetime(2026, 4, 1, 7, 45, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    url = http_server.script("/busy2", Reply(429, headers={"Retry-After": later}), Reply(200))
    client = HttpClient(min_delay=0, sleep=sleeps, wall_clock=now.timestamp)
    with client:
        client.get(url)
    assert sleeps == [30.0]


def test_retry_after_date_in_the_past_retries_at_once(
    http_server: RecordedServer, sleeps: Sleeps
) -> None:
    now = datetime(2026, 4, 1, 7, 45, tzinfo=UTC)
    earlier = format_datetime(now - timedelta(seconds=5), usegmt=True)
    url = http_server.script("/busy3", Reply(503, headers={"Retry-After": earlier}), Reply(200))
    with HttpClient(min_delay=0, sleep=sleeps, wall_clock=now.timestamp) as client:
        client.get(url)
    assert sleeps == [0.0]


def test_429_for_ever_gives_up_with_the_url(
    http_server: RecordedServer, http: HttpClient, sleeps: Sleeps
) -> None:
    url = http_server.script("/always429", Reply(429, headers={"Retry-After": "1"}))
    with pytest.raises(SourceError, match="HTTP 429") as caught:
        http.get(url)
    assert caught.value.where == url
    assert len(http_server.hits("/always429")) == 3 and sleeps == [1.0, 1.0]


def test_retry_after_beyond_the_cap_fails_at_once(
    http_server: RecordedServer, http: HttpClient, sleeps: Sleeps
) -> None:
    url = http_server.script("/later", Reply(429, headers={"Retry-After": "86400"}))
    with pytest.raises(SourceError, match="wait 86400s"):
        http.get(url)
    assert len(http_server.hits("/later")) == 1 and sleeps == []


def test_404_is_not_retried(http_server: RecordedServer, http: HttpClient) -> None:
    with pytest.raises(SourceError, match="HTTP 404"):
        http.get(http_server.url + "/nothing-here")
    assert len(http_server.hits("/nothing-here")) == 1


def test_conditional_get_with_etag_and_last_modified(
    http_server: RecordedServer, http: HttpClient
) -> None:
    stamp = "Wed, 21 Oct 2015 07:28:00 GMT"
    url = http_server.script(
        "/etag", Reply(200, b"v1", headers={"Last-Modified": stamp}, etag='"v1"')
    )
    first = http.get(url)
    assert first.validators == Validators('"v1"', stamp) and not first.not_modified
    second = http.get(url, validators=first.validators)
    assert second.not_modified and second.content == b""
    _, again = http_server.hits("/etag")
    assert again.headers["If-None-Match"] == '"v1"'
    assert again.headers["If-Modified-Since"] == stamp


def test_slow_server_times_out_with_the_url(http_server: RecordedServer, sleeps: Sleeps) -> None:
    url = http_server.script("/slow", Reply(200, b"late", delay=1.5))
    client = HttpClient(
        timeout=0.2, retries=1, backoff=0.01, min_delay=0, sleep=sleeps, jitter=lambda: 1.0
    )
    with client, pytest.raises(SourceError, match="timed out after 2 attempt") as caught:
        client.get(url)
    assert caught.value.where == url
    # Two attempts, each given up by the client, with one backoff wait between them.
    assert len(http_server.hits("/slow")) == 2 and sleeps == [0.01]


def test_cut_off_body_is_an_error_naming_the_url(
    http_server: RecordedServer, http: HttpClient
) -> None:
    body = (API_DAYS / "2025-07-07.json").read_bytes()
    url = http_server.script("/cut", Reply(200, body, cut_after=len(body) // 3))
    with pytest.raises(SourceError, match="cut off") as caught:
        http.get(url)
    assert caught.value.where == url
    assert len(http_server.hits("/cut")) == 3  # retried, then given up


def test_cut_off_once_then_whole(http_server: RecordedServer, http: HttpClient) -> None:
    body = b"x" * 5000
    url = http_server.script("/cut1", Reply(200, body, cut_after=10), Reply(200, body))
    assert http.get(url).content == body


def test_connection_refused_is_an_error(http: HttpClient, sleeps: Sleeps) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x"
    with pytest.raises(SourceError, match="cannot connect") as caught:
        http.get(url)
    assert caught.value.where == url and len(sleeps) == 2


def test_body_over_the_size_cap_is_refused(http_server: RecordedServer, sleeps: Sleeps) -> None:
    url = http_server.script("/big", Reply(200, b"y" * 10_000))
    client = HttpClient(max_bytes=1000, min_delay=0, sleep=sleeps)
    with client, pytest.raises(SourceError, match="larger than 1000 bytes"):
        client.get(url)


def test_polite_delay_between_requests_to_one_host(http_server: RecordedServer) -> None:
    url = http_server.script("/polite", Reply(200, b"."))
    clock = FakeClock()
    with HttpClient(min_delay=2.0, sleep=clock.sleep, clock=clock) as client:
        for _ in range(3):
            client.get(url)
        assert clock.sleeps == [2.0, 2.0]  # the first request waits for nobody
        clock.now += 0.5  # time spent elsewhere counts towards the delay
        client.get(url)
        assert clock.sleeps == [2.0, 2.0, 1.5]
        clock.now += 5.0
        client.get(url)
        assert clock.sleeps == [2.0, 2.0, 1.5]
    assert len(http_server.hits("/polite")) == 5


def test_polite_delay_is_per_host(http_server: RecordedServer) -> None:
    """127.0.0.1 and localhost are two hosts to the client: no wait between them."""
    http_server.script("/host", Reply(200, b"."))
    other = http_server.url.replace("127.0.0.1", "localhost")
    clock = FakeClock()
    with HttpClient(min_delay=2.0, sleep=clock.sleep, clock=clock) as client:
        client.get(http_server.url + "/host")
        client.get(other + "/host")
        assert clock.sleeps == []
        client.get(http_server.url + "/host")
        assert clock.sleeps == [2.0]


# --- hf-api over HTTP -------------------------------------------------------------------


def _ctx(http: HttpClient, today: date, state: MemoryState | None = None) -> FetchContext:
    return FetchContext(today=today, http=http, state=state or MemoryState())


def _run(source: Source, ctx: FetchContext) -> list[PageResult]:
    """One run whose pages' memos are remembered, as the pipeline stores them."""
    return fetch_remembering(source, ctx)


def test_hf_api_reads_today_and_lookback_days_oldest_first(
    http_server: RecordedServer, http: HttpClient
) -> None:
    source = _source(http_server, kind="hf-api")  # lookback_days defaults to 3
    pages = _fetch(source, _ctx(http, date(2026, 4, 2)))
    days = ["2026-03-30", "2026-03-31", "2026-04-01", "2026-04-02"]
    assert [p.where for p in pages] == [http_server.url + api_target(d) for d in days]
    *missing, first, second = pages
    for page, day in zip(missing, days, strict=False):
        assert page.error is not None and page.papers == ()
        assert str(page.error) == f"{page.where}: no Daily Papers list for {day} (HTTP 404)"
    for page, day in zip([first, second], days[2:], strict=True):
        assert page.error is None
        assert len(page.papers) == len(json.loads((API_DAYS / f"{day}.json").read_bytes()))
        assert {p.list_date for p in page.papers} == {date.fromisoformat(day)}
        assert all(p.source == page.where for p in page.papers)


def _rest_of_day() -> bytes:
    """Three items from another day, standing in for the second page of a cut day."""
    return json.dumps(json.loads((API_DAYS / "2026-04-01.json").read_bytes())[:3]).encode()


def test_hf_api_day_of_50_items_asks_for_the_next_page(
    http_server: RecordedServer, http: HttpClient
) -> None:
    http_server.script(api_target("2026-05-13", 1), Reply(200, _rest_of_day()))
    source = _source(http_server, kind="hf-api", lookback_days=0)
    pages = _fetch(source, _ctx(http, date(2026, 5, 13)))
    assert [len(p.papers) for p in pages] == [50, 3]
    assert [p.error for p in pages] == [None, None]
    assert len(http_server.hits(api_target("2026-05-13", 2))) == 0  # short page: stop
    # A day under 50 items is one request.
    http_server.reset()
    _fetch(source, _ctx(http, date(2024, 10, 10)))
    assert [s.target for s in http_server.requests] == [api_target("2024-10-10")]


def test_hf_api_pages_numbered_from_one(http_server: RecordedServer, http: HttpClient) -> None:
    first = (API_DAYS / "2026-05-13.json").read_bytes()
    http_server.script(api_target("2026-05-13", 1), Reply(200, first))  # p=1 = first page again
    http_server.script(api_target("2026-05-13", 2), Reply(200, _rest_of_day()))
    source = _source(http_server, kind="hf-api", lookback_days=0)
    pages = _fetch(source, _ctx(http, date(2026, 5, 13)))
    assert [len(p.papers) for p in pages] == [50, 3]
    assert len({p.arxiv_id for page in pages for p in page.papers}) == 53


def test_hf_api_304_on_the_next_run_is_not_modified(
    http_server: RecordedServer, http: HttpClient
) -> None:
    body = (API_DAYS / "2025-07-07.json").read_bytes()
    http_server.script(api_target("2025-07-07"), Reply(200, body, etag='W/"day-1"'))
    source = _source(http_server, kind="hf-api", lookback_days=0)
    state = MemoryState()
    (first,) = _run(source, _ctx(http, date(2025, 7, 7), state))
    assert len(first.papers) == 1 and first.error is None
    (second,) = _run(source, _ctx(http, date(2025, 7, 7), state))
    assert second.not_modified and second.papers == () and second.error is None
    assert second.memo is None  # nothing new to remember
    assert http_server.hits(api_target("2025-07-07"))[-1].headers["If-None-Match"] == 'W/"day-1"'


def test_a_page_carries_its_validators_and_the_source_never_writes(
    http_server: RecordedServer, http: HttpClient
) -> None:
    body = (API_DAYS / "2025-07-07.json").read_bytes()
    stamp = "Mon, 07 Jul 2025 07:45:00 GMT"
    url = http_server.script(
        api_target("2025-07-07"), Reply(200, body, {"Last-Modified": stamp}, etag='"e"')
    )
    source = _source(http_server, kind="hf-api", lookback_days=0)
    state = MemoryState()
    (page,) = _fetch(source, _ctx(http, date(2025, 7, 7), state))
    assert page.memo == UrlMemo(url, Validators('"e"', stamp))
    assert state.http == {}  # the caller stores the memo with the papers, not the source


def test_a_200_without_validators_has_no_memo(
    http_server: RecordedServer, http: HttpClient
) -> None:
    source = _source(http_server, kind="hf-api", lookback_days=0)
    (page,) = _fetch(source, _ctx(http, date(2025, 7, 7)))
    assert len(page.papers) == 1 and page.memo is None


def test_hf_html_page_carries_its_validators(http_server: RecordedServer, http: HttpClient) -> None:
    target = "/papers?date=2024-08-01"
    url = http_server.script(target, Reply(200, HTML_DAY.read_bytes(), etag='"h"'))
    source = _source(http_server, kind="hf-html", lookback_days=0)
    state = MemoryState()
    (first,) = _run(source, _ctx(http, date(2024, 8, 1), state))
    assert len(first.papers) == 13 and first.memo == UrlMemo(url, Validators('"h"', None))
    (second,) = _run(source, _ctx(http, date(2024, 8, 1), state))
    assert second.not_modified and http_server.hits(target)[-1].headers["If-None-Match"] == '"h"'


def test_hf_api_garbage_body_is_an_error_and_not_remembered(
    http_server: RecordedServer, http: HttpClient
) -> None:
    url = http_server.script(api_target("2025-07-07"), Reply(200, b"<html>oops", etag='"g"'))
    source = _source(http_server, kind="hf-api", lookback_days=0)
    state = MemoryState()
    (page,) = _run(source, _ctx(http, date(2025, 7, 7), state))
    assert page.error is not None and page.error.where == url and "not JSON" in page.error.reason
    assert page.memo is None and state.http_validators(url) is None


def test_partly_readable_body_is_remembered(http_server: RecordedServer, http: HttpClient) -> None:
    items = json.loads((API_DAYS / "2025-07-07.json").read_bytes())
    body = json.dumps([*items, "{'paper': 'a repr string'}"]).encode()
    url = http_server.script(api_target("2025-07-07"), Reply(200, body, etag='"p"'))
    source = _source(http_server, kind="hf-api", lookback_days=0)
    (page,) = _fetch(source, _ctx(http, date(2025, 7, 7)))
    assert len(page.papers) == 1 and page.error is not None
    assert page.memo == UrlMemo(url, Validators('"p"', None))


def test_now_in_the_source_timezone_picks_the_list_date(
    http_server: RecordedServer, http: HttpClient
) -> None:
    source = _source(http_server, kind="hf-api", lookback_days=0, timezone="Asia/Tokyo")
    now = datetime(2025, 7, 6, 16, 30, tzinfo=UTC)  # already the 7th in Tokyo
    ctx = FetchContext(today=date(2000, 1, 1), http=http, state=MemoryState(), now=now)
    (page,) = _fetch(source, ctx)
    assert page.where.endswith("date=2025-07-07") and len(page.papers) == 1


def test_progress_hook_sees_every_page(http_server: RecordedServer, http: HttpClient) -> None:
    seen: list[tuple[str, int, int | None]] = []
    source = _source(http_server, kind="hf-api", lookback_days=1)
    ctx = FetchContext(
        today=date(2026, 4, 2),
        http=http,
        state=MemoryState(),
        progress=lambda where, done, total: seen.append((where, done, total)),
    )
    pages = _fetch(source, ctx)
    assert [(w, d, t) for w, d, t in seen] == [(p.where, i, 2) for i, p in enumerate(pages, 1)]


# --- hf-html over HTTP ------------------------------------------------------------------


def test_hf_html_day_page(http_server: RecordedServer, http: HttpClient) -> None:
    source = _source(http_server, kind="hf-html", lookback_days=0)
    (page,) = _fetch(source, _ctx(http, date(2024, 8, 1)))
    assert page.error is None and len(page.papers) == 13
    assert page.where == http_server.url + "/papers?date=2024-08-01"


def test_hf_html_query_page(http_server: RecordedServer, http: HttpClient) -> None:
    target = "/papers?q=transfer+learning"
    http_server.script(target, Reply(200, HTML_DAY.read_bytes()))
    source = _source(http_server, kind="hf-html", query="transfer learning")
    (page,) = _fetch(source, _ctx(http, date(2026, 1, 1)))
    assert len(page.papers) == 13 and len(http_server.hits(target)) == 1
