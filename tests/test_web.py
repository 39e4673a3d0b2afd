"""`digest serve` over real HTTP on 127.0.0.1: unsubscribe (page, button, RFC 8058
one-click), feedback and undo, the Atom feed, bad links, headers, escaping, rate limits."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import feedparser
import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from digest.cli.serve import server_config
from digest.compose import Composer
from digest.models import Feedback, Paper
from digest.render import make_environment
from digest.store import ClaimedMessage, DeliveryResult, PlannedDigest, Store
from digest.tokens import Tokens
from digest.web import SECURITY_HEADERS, create_app

KEY = "test-secret-key-0123456789abcdef"
ADA, BOB = "ada@example.org", "bob@example.org"
START = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)


class Clock:
    """The app's clock, moved by hand."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@contextmanager
def serve_app(app: object) -> Iterator[str]:
    """Run an ASGI app under uvicorn in a thread on a free port of 127.0.0.1."""
    config = server_config(app, "127.0.0.1", 0, "127.0.0.1")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started or not thread.is_alive():
                break
            threading.Event().wait(0.02)
        assert server.started, "uvicorn did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.open(database_url)
    yield opened
    opened.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tokens() -> Tokens:
    return Tokens.from_secret(KEY)


@pytest.fixture
def site(store: Store, tokens: Tokens, clock: Clock) -> Iterator[httpx.Client]:
    app = create_app(store, tokens, public_url=None, rate_limit=1000, clock=clock)
    with serve_app(app) as base, httpx.Client(base_url=base) as client:
        yield client


def test_unsubscribe_page_asks_then_the_button_unsubscribes(
    site: httpx.Client, store: Store, tokens: Tokens
) -> None:
    token = tokens.unsubscribe(ADA)
    page = site.get(f"/u/{token}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert ADA in page.text and '<form method="post">' in page.text
    assert store.suppressed([ADA]) == {}  # looking is not unsubscribing
    # What the browser sends when the button is pressed.
    done = site.post(
        f"/u/{token}",
        content=b"confirm=yes",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    assert store.suppressed([ADA]) == {ADA: "unsubscribed (web page)"}
    # Again (a double click, a retry): the same answer, nothing else changes.
    assert site.post(f"/u/{token}").status_code == 200
    assert store.suppressed([ADA]) == {ADA: "unsubscribed (web page)"}


def _composed(store: Store, public_url: str) -> bytes:
    """A digest message for ada as delivery builds it, with the signed links."""
    store.ingest([Paper("Sparse attention", "About it.", arxiv_id="2611.00001")], START)
    cands = store.candidates([ADA], START, 7)
    paper_id = cands.ids["arxiv:2611.00001"]
    contents = {"considered": 1, "papers": [{"id": paper_id, "score": 0.9, "why": []}]}
    claimed = ClaimedMessage(1, ADA, "<m1@example.org>", START.date(), START, 1, contents)
    composer = Composer(
        make_environment(),
        "Papers <digest@example.org>",
        {},
        store.papers_by_id,
        public_url=public_url,
        secret_key=SecretStr(KEY),
    )
    first = composer(claimed).data
    again = Composer(
        make_environment(),
        "Papers <digest@example.org>",
        {},
        store.papers_by_id,
        public_url=public_url,
        secret_key=SecretStr(KEY),
    )(claimed).data
    assert first == again  # a retried message is byte for byte the same
    return first


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("application/x-www-form-urlencoded", b"List-Unsubscribe=One-Click"),
        (
            "multipart/form-data; boundary=----b0undary",
            b'------b0undary\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n'
            b"\r\nOne-Click\r\n------b0undary--\r\n",
        ),
    ],
    ids=["urlencoded", "multipart"],
)
def test_one_click_unsubscribe_from_the_header_as_mail_providers_post_it(
    site: httpx.Client, store: Store, content_type: str, body: bytes
) -> None:
    data = _composed(store, "https://digest.example.org/")
    message = message_from_bytes(data, policy=policy.default)
    header = " ".join(str(message["List-Unsubscribe"]).split())
    https, mailto = re.findall(r"<([^>]+)>", header)
    assert https.startswith("https://digest.example.org/u/") and mailto.startswith("mailto:")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # The provider's POST: no cookies, no referrer, nothing but the body RFC 8058 names.
    path = https.removeprefix("https://digest.example.org")
    answer = site.post(path, content=body, headers={"content-type": content_type})
    assert answer.status_code == 200
    assert store.suppressed([ADA]) == {ADA: "unsubscribed (one-click)"}
    # The body links: the feed and "more/less like this" work on the same server.
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    links = re.findall(r'href="https://digest\.example\.org(/[^"]+)"', html)
    assert {link.split("/")[1] for link in links} == {"u", "f", "feed"}


def test_bad_links_get_one_400_page_that_tells_nothing(
    site: httpx.Client, store: Store, tokens: Tokens
) -> None:
    good = tokens.unsubscribe(ADA)
    body, tag = good.split(".")
    bob_body = tokens.unsubscribe(BOB).split(".")[0]
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    bad = {
        "forged": Tokens.from_secret("another-key-0123456789abcdef").unsubscribe(ADA),
        "tampered": f"{flipped}.{tag}",
        "cross-subscriber": f"{bob_body}.{tag}",
        "cut short": good[:-5],
        "another kind": tokens.feed(ADA),
        "garbage": "not-a-token",
    }
    pages = set()
    for name, token in bad.items():
        for response in (site.get(f"/u/{token}"), site.post(f"/u/{token}")):
            assert response.status_code == 400, name
            pages.add(response.text)
    feedback = tokens.feedback(ADA, "arxiv:2611.00001", START.date(), "more")
    assert site.get(f"/feed/{feedback}.atom").status_code == 400
    assert site.get(f"/f/{tokens.unsubscribe(ADA)}").status_code == 400
    assert len(pages) == 1 and ADA not in pages.pop()
    assert store.suppressed([ADA, BOB]) == {}


def test_every_response_carries_the_security_headers(site: httpx.Client, tokens: Tokens) -> None:
    responses = [
        site.get("/healthz"),
        site.get(f"/u/{tokens.unsubscribe(ADA)}"),
        site.get("/u/forged"),
        site.get("/nothing/here"),
        site.put(f"/u/{tokens.unsubscribe(ADA)}"),
        site.get(f"/feed/{tokens.feed(ADA)}.atom"),
    ]
    assert [r.status_code for r in responses] == [200, 200, 400, 404, 405, 200]
    for response in responses:
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert "server" not in response.headers
    assert responses[1].headers["cache-control"] == "no-store"
    assert responses[0].json() == {"status": "ok"}


def test_pages_escape_what_they_show(site: httpx.Client, store: Store, tokens: Tokens) -> None:
    evil = '"<script>alert(1)</script>"@example.org'
    page = site.get(f"/u/{tokens.unsubscribe(evil)}")
    assert page.status_code == 200
    assert "<script>" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    title = "Attention <img src=x onerror=alert(1)> & more"
    store.ingest([Paper(title, "About it.", arxiv_id="2611.00002")], START)
    thanks = site.get(f"/f/{tokens.feedback(ADA, 'arxiv:2611.00002', START.date(), 'more')}")
    assert (
        "<img" not in thanks.text and "&lt;img src=x onerror=alert(1)&gt; &amp; more" in thanks.text
    )


def test_the_page_is_the_same_whatever_the_address_state(
    site: httpx.Client, store: Store, tokens: Tokens
) -> None:
    store.unsubscribe(BOB, "web page", START)
    texts = {
        who: site.get(f"/u/{tokens.unsubscribe(who)}").text.replace(who, "WHO")
        for who in (ADA, BOB, "nobody@example.org")
    }
    assert len(set(texts.values())) == 1


def test_feedback_is_recorded_and_undone(
    site: httpx.Client, store: Store, tokens: Tokens, clock: Clock
) -> None:
    store.ingest([Paper("Sparse attention", "About it.", arxiv_id="2611.00001")], START)
    issue = START.date()
    more = tokens.feedback(ADA, "arxiv:2611.00001", issue, "more")
    assert site.head(f"/f/{more}").status_code == 200  # a link checker's probe
    assert store.feedback_for([ADA]) == {}
    page = site.get(f"/f/{more}")
    assert page.status_code == 200 and "Sparse attention" in page.text
    assert store.feedback_for([ADA]) == {
        ADA: [Feedback("arxiv:2611.00001", "more", "Sparse attention")]
    }
    (undo,) = re.findall(r'href="([^"]+)">Undo', page.text)
    undone = site.get(httpx.URL(str(page.url)).join(undo))
    assert undone.status_code == 200 and store.feedback_for([ADA]) == {}
    (redo,) = re.findall(r'href="([^"]+)">Redo', undone.text)
    assert site.get(httpx.URL(str(undone.url)).join(redo)).status_code == 200
    assert store.feedback_for([ADA])[ADA][0].verdict == "more"
    # "Less" replaces "more"; the undo of the old "more" no longer touches it.
    less = tokens.feedback(ADA, "arxiv:2611.00001", issue, "less")
    assert "fewer papers like" in site.get(f"/f/{less}").text
    site.get(f"/f/{more}/undo")
    assert store.feedback_for([ADA])[ADA][0].verdict == "less"
    # Feedback links expire; unsubscribe links never do.
    clock.now = START + timedelta(days=91)
    assert site.get(f"/f/{more}").status_code == 410
    assert site.get(f"/u/{tokens.unsubscribe(ADA)}").status_code == 200


def _send(store: Store, email: str, papers: list[Paper], day: date, at: datetime) -> None:
    """Plan and deliver one digest of these papers, as the pipeline does."""
    store.ingest(papers, at)
    cands = store.candidates([email], at, 30)
    ids = tuple(cands.ids[p.key] for p in papers)
    why = [["topic", "sparse attention"], ["upvotes", "12"]]
    contents = {"papers": [{"id": i, "score": 0.5, "why": why} for i in ids]}
    digest = PlannedDigest(email, day, ids, contents, 0, cands.versions.get(email, -1))
    assert store.plan([digest], now=at, domain="example.org").planned == [email]
    (claimed,) = store.claim("w", at, 10, timedelta(minutes=5))
    store.finish("w", [DeliveryResult(claimed.id, "sent", "smtp://test")], at, 3)


def test_the_feed_is_valid_atom_of_the_papers_sent(
    site: httpx.Client, store: Store, tokens: Tokens
) -> None:
    empty = feedparser.parse(site.get(f"/feed/{tokens.feed(ADA)}.atom").content)
    assert empty.bozo == 0 and empty.version == "atom10" and empty.entries == []
    first = [
        Paper(
            "Sparse <attention>",
            "We study\x0b sparse attention.",
            arxiv_id="2611.00001",
            authors=("A One", "B Two"),
            categories=("cs.CL",),
        ),
        Paper("Dense retrieval", "About retrieval.", arxiv_id="2611.00002", upvotes=12),
    ]
    _send(store, ADA, first, date(2026, 11, 30), START)
    _send(
        store,
        ADA,
        [Paper("Mixture of experts", "About MoE.")],
        date(2026, 12, 1),
        START + timedelta(days=1),
    )
    _send(
        store,
        BOB,
        [Paper("Bob's paper", "Not for ada.", arxiv_id="2611.00009")],
        date(2026, 12, 1),
        START + timedelta(days=1),
    )
    response = site.get(f"/feed/{tokens.feed(ADA)}.atom")
    assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
    feed = feedparser.parse(response.content)
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.version == "atom10"
    titles = [e.title for e in feed.entries]
    assert titles == ["Mixture of experts", "Sparse <attention>", "Dense retrieval"]
    sparse = feed.entries[1]
    assert "Why: matches “sparse attention”" in sparse.summary and "We study" in sparse.summary
    assert [a.name for a in sparse.authors] == ["A One", "B Two"]
    assert sparse.link == "https://arxiv.org/abs/2611.00001"
    assert [t.term for t in sparse.tags] == ["cs.CL"]
    assert len({e.id for e in feed.entries}) == 3
    assert feed.feed.updated == "2026-12-01T07:00:00Z"
    assert ADA not in response.text and "Bob's paper" not in response.text
    # A feed reader's conditional request: nothing new, nothing sent.
    again = site.get(response.request.url, headers={"if-none-match": response.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_requests_are_rate_limited_per_address_but_never_one_click(
    store: Store, tokens: Tokens, clock: Clock
) -> None:
    app = create_app(store, tokens, rate_limit=3, clock=clock)
    with serve_app(app) as base, httpx.Client(base_url=base) as site:
        page = f"/u/{tokens.unsubscribe(ADA)}"
        assert [site.get(page).status_code for _ in range(4)] == [200, 200, 200, 429]
        limited = site.get(page)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert limited.headers["x-frame-options"] == "DENY"
        assert site.get("/healthz").status_code == 200  # monitors are not counted
        one_click = site.post(page, content=b"List-Unsubscribe=One-Click")
        assert one_click.status_code == 200 and store.suppressed([ADA])
        assert site.post("/u/forged-token").status_code == 429  # a bad one is counted
        clock.now += timedelta(seconds=20)  # 3 a minute: one more after 20 s
        assert [site.get(page).status_code for _ in range(2)] == [200, 429]


def test_healthz_says_when_the_database_is_gone(tokens: Tokens, tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'digest.db'}")
    app = create_app(store, tokens)
    with serve_app(app) as base, httpx.Client(base_url=base) as site:
        assert site.get("/healthz").status_code == 200
        store.engine.dispose()
        (tmp_path / "digest.db").write_bytes(b"not a database" * 100)
        for extra in tmp_path.glob("digest.db-*"):
            extra.unlink()
        gone = site.get("/healthz")
        assert gone.status_code == 503 and gone.json() == {"status": "database unavailable"}
        feed = site.get(f"/feed/{tokens.feed(ADA)}.atom")
        assert feed.status_code == 503 and feed.headers["retry-after"] == "60"
    store.close()
