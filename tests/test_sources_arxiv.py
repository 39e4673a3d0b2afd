"""arXiv as a source: the RSS parser, the source over a real HTTP server, revisions in the
store (SQLite and PostgreSQL), one paper across arXiv and Hugging Face, and subscribers'
category filters end to end through `digest send-now --force`.

The feeds in tests/fixtures/arxiv-rss are built from arXiv's RSS specification with the
metadata of real papers, beside the recorded (empty) holiday feed; see its README.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from cli_runner import run_digest
from fuzzing import FUZZ, damaged
from http_server import (
    API_DAYS,
    FIXTURES,
    FakeClock,
    RecordedServer,
    Reply,
    fetch_remembering,
    shared_data,
)
from http_server import http_server as http_server  # fixture
from http_server import recorded_server as recorded_server  # fixture
from hypothesis import given
from hypothesis import strategies as st

from digest.config import load_config
from digest.errors import ConfigError, SourceError
from digest.models import Paper, Subscriber
from digest.pipeline import fetch_sources
from digest.rank.filters import filter_by_categories, on_hugging_face
from digest.sources import (
    FetchContext,
    HttpClient,
    MemoryState,
    PartialPageError,
    Source,
    build_source,
    parse_saved_page,
)
from digest.sources.arxiv import FEED_LIMIT, is_arxiv_category, parse_arxiv_feed
from digest.sources.hf_api import parse_daily_papers
from digest.store import Store

FEEDS = FIXTURES / "arxiv-rss"
DAY1 = FEEDS / "cs.CL+cs.CV_2026-04-02.xml"  # new 2604.01220, cross 2604.01221, a revision
DAY2 = FEEDS / "cs.CL+cs.CV_2026-04-09.xml"  # 5 new, 1 cross, 3 revisions
HOLIDAY = FEEDS / "physics_2025-12-31_empty-holiday-feed.xml"
API = FIXTURES / "arxiv-api-atom"  # two real answers of export.arxiv.org/api/query
API_QUERY = API / "query_cat-cs.RO_AND_neural_max2_2025-10-17.xml"
API_ID = API / "id_list_1601.00001_2020-09-04.xml"
HF_DAY = API_DAYS / "2026-04-02.json"  # lists 2604.01220 (10 upvotes) and 2603.28407
NOW = datetime(2026, 4, 9, 8, 0, tzinfo=UTC)
TARGET = "/rss/cs.CL+cs.CV"


def _feed(path: Path) -> list[Paper]:
    return parse_arxiv_feed(path.read_bytes(), str(path))


def _hf_day() -> list[Paper]:
    return parse_daily_papers(HF_DAY.read_bytes(), str(HF_DAY), list_date=date(2026, 4, 2))


def _item(ident: str, kind: str | None = "new", version: int = 1, **extra: str) -> str:
    announce = f"<arxiv:announce_type>{kind}</arxiv:announce_type>" if kind else ""
    description = f"arXiv:{ident}v{version} Announce Type: {kind} \nAbstract: About {ident}."
    if kind is None:
        description = f"About {ident}."
    categories = "".join(f"<category>{c}</category>" for c in extra.get("cats", "cs.CL").split())
    return (
        f"<item><title>{extra.get('title', 'Paper ' + ident)}</title>"
        f"<link>https://arxiv.org/abs/{ident}</link><description>{description}</description>"
        f'<guid isPermaLink="false">oai:arXiv.org:{ident}v{version}</guid>{categories}'
        f"<pubDate>Thu, 09 Apr 2026 00:00:00 -0400</pubDate>{announce}"
        f"<dc:creator>{extra.get('authors', 'Ada Lovelace, Alan Turing')}</dc:creator></item>"
    )


def _rss(*items: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss xmlns:arxiv="http://arxiv.org/schemas/atom" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" version="2.0"><channel>'
        "<title>cs.CL updates on arXiv.org</title>"
        "<pubDate>Thu, 09 Apr 2026 00:00:00 -0400</pubDate>\n"
        + "\n".join(items)
        + "\n</channel></rss>\n"
    ).encode()


# --- the parser ---------------------------------------------------------------------------


def test_a_day_of_announcements() -> None:
    papers = _feed(DAY2)
    assert [(p.arxiv_id, p.announce) for p in papers] == [
        ("2604.06543", "new"),
        ("2604.06356", "new"),
        ("2604.06825", "new"),
        ("2604.06988", "new"),
        ("2604.06662", "new"),
        ("2604.06401", "cross"),
        ("2604.01220", "replace"),
        ("2604.01221", "replace-cross"),
        ("2505.15277", "replace"),
    ]
    first = papers[0]
    assert first.title == "The Illusion of Stochasticity in LLMs"
    assert first.abstract.startswith("In this work, we demonstrate")
    assert "Announce Type" not in first.abstract and "\n" not in first.abstract
    assert first.categories == ("cs.CL", "cs.LG")  # primary first
    assert first.authors[0] == "Xiangming Gu" and first.author_count == len(first.authors)
    assert first.published == date(2026, 4, 9) and first.list_date is None
    assert papers[5].categories == ("cs.AI", "cs.CE", "cs.CV", "cs.LG")
    # A revision's date is when the new version was announced, not the paper's date.
    assert all(p.published is None for p in papers[6:])
    assert all(p.source == str(DAY2) for p in papers)


def test_the_recorded_holiday_feed_has_nothing_and_is_no_error() -> None:
    assert _feed(HOLIDAY) == []
    assert parse_saved_page(HOLIDAY) == []


def test_the_holiday_fixture_is_a_copy_of_the_shared_one() -> None:
    shared = shared_data("data/arxiv-rss") / HOLIDAY.name
    assert HOLIDAY.read_bytes() == shared.read_bytes()


def test_saved_feeds_are_read_by_suffix(tmp_path: Path) -> None:
    rss = tmp_path / "today.rss"
    rss.write_bytes(DAY1.read_bytes())
    assert [p.arxiv_id for p in parse_saved_page(rss)] == ["2604.01220", "2604.01221", "2603.28407"]
    assert [p.arxiv_id for p in parse_saved_page(DAY1)] == [p.arxiv_id for p in _feed(DAY1)]
    atom = tmp_path / "backfill.atom"
    atom.write_bytes(API_QUERY.read_bytes())
    assert [p.arxiv_id for p in parse_saved_page(atom)] == ["2510.14968", "2510.14827"]


def test_a_folder_of_saved_feeds_and_api_answers_backfills_once(tmp_path: Path) -> None:
    for path in (DAY1, API_QUERY, API_ID):
        shutil.copy(path, tmp_path)
    (tmp_path / "README.md").write_text("not a feed")
    source = _build(path=str(tmp_path))
    with HttpClient() as http:
        ctx = FetchContext(today=NOW.date(), http=http, state=MemoryState())
        pages = fetch_remembering(source, ctx)
        assert sorted(len(p.papers) for p in pages) == [1, 2, 3]
        assert all(p.error is None for p in pages)
        assert fetch_remembering(source, ctx) == []  # an inbox: each file is read once


def test_the_apis_atom_answers_read_as_papers_of_their_range() -> None:
    papers = _feed(API_QUERY)
    assert [p.arxiv_id for p in papers] == ["2510.14968", "2510.14827"]
    first = papers[0]
    assert first.title == (
        "RDD: Retrieval-Based Demonstration Decomposer for Planner Alignment in Long-Horizon Tasks"
    )
    assert first.abstract.startswith("To tackle long-horizon tasks, recent hierarchical")
    assert first.authors == ("Mingxuan Yan", "Yuping Wang", "Zechun Liu", "Jiachen Li")
    assert first.categories == ("cs.RO", "cs.AI", "cs.CV", "cs.LG", "cs.SY", "eess.SY")
    assert (first.announce, first.published) == ("new", date(2025, 10, 16))
    (old,) = parse_saved_page(API_ID)
    assert (old.arxiv_id, old.categories, old.published) == (
        "1601.00001",
        ("cond-mat.mes-hall",),
        date(2015, 12, 26),
    )


def test_the_api_fixtures_are_copies_of_the_shared_ones() -> None:
    shared = shared_data("data/arxiv-api-atom")
    for path in sorted(API.iterdir()):
        assert path.read_bytes() == (shared / path.name).read_bytes(), path.name


ATOM_FEED = b"""<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:arxiv="http://arxiv.org/schemas/atom">
  <title>q-bio.NC updates on arXiv.org</title>
  <updated>2026-09-15T04:02:32+00:00</updated>
  <entry>
    <id>oai:arXiv.org:2609.13219v1</id>
    <title>Planning as Dynamics Relaxation</title>
    <updated>2026-09-15T04:02:32+00:00</updated>
    <link href="https://arxiv.org/abs/2609.13219" rel="alternate" type="text/html"/>
    <summary>arXiv:2609.13219v1 Announce Type: new
Abstract: We plan.</summary>
    <category term="q-bio.NC" scheme="http://arxiv.org/schemas/atom/"/>
    <category term="cs.AI" scheme="http://arxiv.org/schemas/atom/"/>
    <arxiv:announce_type>new</arxiv:announce_type>
    <author><name>Ada Lovelace</name></author>
  </entry>
  <entry>
    <id>oai:arXiv.org:2501.00002v4</id>
    <title>Older</title>
    <summary>arXiv:2501.00002v4 Announce Type: replace-cross
Abstract: Still.</summary>
    <category term="cs.LG"/>
  </entry>
</feed>"""


def test_an_atom_feed_of_rss_arxiv_org_keeps_its_announce_types() -> None:
    new, revised = parse_arxiv_feed(ATOM_FEED, "atom")
    assert (new.arxiv_id, new.announce, new.abstract) == ("2609.13219", "new", "We plan.")
    assert new.categories == ("q-bio.NC", "cs.AI") and new.authors == ("Ada Lovelace",)
    assert new.published == date(2026, 9, 15)
    assert (revised.arxiv_id, revised.announce, revised.published) == (
        "2501.00002",
        "replace-cross",
        None,
    )
    assert parse_arxiv_feed(b'<feed xmlns="http://www.w3.org/2005/Atom"/>', "atom") == []


def test_an_api_error_answer_is_one_error() -> None:
    error = b"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>ArXiv Query: id_list=1234</title>
<entry><id>http://arxiv.org/api/errors#incorrect_id_format_for_1234</id><title>Error</title>
<summary>incorrect id format for 1234</summary></entry></feed>"""
    with pytest.raises(SourceError, match="no readable paper in 1 items; item 0: no arXiv id"):
        parse_arxiv_feed(error, "api")


def test_ids_lose_their_version_and_old_style_ids_are_kept() -> None:
    feed = _rss(_item("2604.00001", "replace", version=3), _item("hep-th/9901001", "replace", 2))
    assert [p.arxiv_id for p in parse_arxiv_feed(feed, "f")] == ["2604.00001", "hep-th/9901001"]


def test_an_item_without_announce_type_is_new_in_version_1_else_a_revision() -> None:
    feed = _rss(_item("2604.00001", None), _item("2604.00002", None, version=2))
    assert [p.announce for p in parse_arxiv_feed(feed, "f")] == ["new", "replace"]


def test_an_unknown_announce_type_skips_that_item_only() -> None:
    feed = _rss(_item("2604.00001"), _item("2604.00002", "withdrawn"))
    with pytest.raises(PartialPageError, match="unknown announce type 'withdrawn'") as caught:
        parse_arxiv_feed(feed, "f")
    assert [p.arxiv_id for p in caught.value.papers] == ["2604.00001"]
    assert str(caught.value).startswith("f: 1 of 2 items skipped; item 1:")


def test_entities_are_never_expanded() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "boom"><!ENTITY b "&a;&a;&a;&a;">]>'
        b"<rss><channel><item><title>x &b; y</title><link>https://arxiv.org/abs/2604.00001</link>"
        b"</item></channel></rss>"
    )
    try:
        papers = parse_arxiv_feed(bomb, "f")
    except SourceError as exc:
        assert exc.where == "f"
    else:
        assert all("boom" not in p.title for p in papers)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty: no XML at all"),
        (
            b"<html><body>Service unavailable</body></html>",
            "not an arXiv feed (RSS or Atom): the document is <html>",
        ),
        (b'<rss version="2.0"></rss>', "RSS without a <channel>"),
        (b'{"papers": []}', "not well-formed XML at line 1"),
    ],
)
def test_what_is_not_a_feed_is_one_error_naming_the_place(data: bytes, reason: str) -> None:
    with pytest.raises(SourceError, match=re.escape(reason)) as caught:
        parse_arxiv_feed(data, "https://rss.arxiv.org/rss/cs.CL")
    assert caught.value.where == "https://rss.arxiv.org/rss/cs.CL"
    assert "\n" not in str(caught.value)


def test_a_cut_off_feed_keeps_its_whole_items() -> None:
    data = DAY2.read_bytes()
    cut = data[: data.index(b"<item>", data.index(b"2604.06825")) + 40]
    with pytest.raises(PartialPageError, match=r"feed ends mid-way \(cut off\?\)") as caught:
        parse_arxiv_feed(cut, "saved.xml")
    assert [p.arxiv_id for p in caught.value.papers] == ["2604.06543", "2604.06356", "2604.06825"]
    assert "3 whole item(s) before it kept" in str(caught.value)


def test_a_feed_broken_mid_way_keeps_the_items_before_the_break() -> None:
    feed = _rss(_item("2604.00001"), _item("2604.00002", title="Tom & Jerry"), _item("2604.00003"))
    with pytest.raises(PartialPageError, match="not well-formed XML at line 5") as caught:
        parse_arxiv_feed(feed, "f")
    assert [p.arxiv_id for p in caught.value.papers] == ["2604.00001"]


def test_a_feed_at_arxivs_item_limit_says_papers_may_be_missing() -> None:
    feed = _rss(*(_item(f"2604.{n:05d}") for n in range(1, FEED_LIMIT + 1)))
    with pytest.raises(PartialPageError, match="arXiv's limit for one feed") as caught:
        parse_arxiv_feed(feed, "f")
    assert len(caught.value.papers) == FEED_LIMIT


def _check(data: bytes) -> None:
    try:
        papers = parse_arxiv_feed(data, "fuzz-input")
    except SourceError as exc:
        assert exc.where == "fuzz-input"
        return
    assert all(isinstance(p, Paper) and p.title and p.arxiv_id for p in papers)
    assert all(p.announce in {"new", "cross", "replace", "replace-cross"} for p in papers)


@FUZZ
@given(data=st.binary(max_size=2000))
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    _check(data)


@FUZZ
@given(text=st.text(max_size=1000))
def test_fuzz_arbitrary_text(text: str) -> None:
    _check(text.encode("utf-8", "surrogatepass"))


# What a damaged feed gains: markup and entities cut loose.
XML_SPLICES = (b"<", b"&", b"</item>", b"<item>", b"]]>", b"\x00", b"&amp;")


@FUZZ
@given(data=damaged(DAY1.read_bytes(), XML_SPLICES, longest_copy=600))
def test_fuzz_damaged_rss_feed(data: bytes) -> None:
    _check(data)


@FUZZ
@given(data=damaged(API_QUERY.read_bytes(), XML_SPLICES, longest_copy=600))
def test_fuzz_damaged_api_answer(data: bytes) -> None:
    _check(data)


# --- configuration ----------------------------------------------------------------------


def _build(**spec: object) -> Source:
    return build_source(
        {"kind": "arxiv", **spec}, config_dir=FEEDS, where="digest.toml: sources[1]"
    )


def test_an_arxiv_source_reads_one_combined_feed_from_rss_arxiv_org() -> None:
    source = _build(categories=["cs.CL", "cs.CV", "cs.CL"])
    assert source.name == "arxiv cs.CL+cs.CV+cs.CL"
    assert source.url == "https://rss.arxiv.org/rss/cs.CL+cs.CV"  # type: ignore[attr-defined]
    assert source.min_delay == 3.0  # type: ignore[attr-defined]
    saved = _build(path=".", name="saved arXiv")
    assert saved.name == "saved arXiv"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "kind 'arxiv' needs 'categories'"),
        ({"categories": []}, "kind 'arxiv' needs 'categories'"),
        ({"categories": "cs.CL"}, "categories must be a list of strings, not 'cs.CL'"),
        ({"categories": ["cs.CL", "computation and language"]}, "'computation and language'"),
        ({"categories": ["cs.CL"], "lookback_days": 2}, "'lookback_days' does not apply to"),
        ({"categories": ["cs.CL"], "min_delay": -1}, "min_delay must be 0..600 seconds"),
        ({"categories": ["cs.CL"], "min_delay": "3"}, "min_delay must be a number"),
        ({"categories": ["cs.CL"], "path": "."}, "'categories' has no effect with 'path'"),
        ({"categories": ["cs.CL"], "base_url": "ftp://x"}, "is not an http(s) URL"),
    ],
)
def test_a_bad_arxiv_source_is_one_line_naming_it(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        _build(**spec)
    assert str(caught.value).startswith("digest.toml: sources[1]: ")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "text", ["cs.CL", "math.AG", "astro-ph.GA", "hep-th", "cond-mat.mes-hall", "q-bio.NC", "cs"]
)
def test_arxiv_category_syntax_accepts(text: str) -> None:
    assert is_arxiv_category(text)


@pytest.mark.parametrize("text", ["", "cs CL", "CS.CL", "cs.", ".CL", "cs.CL.x", "cs/CL", "cs-"])
def test_arxiv_category_syntax_refuses(text: str) -> None:
    assert not is_arxiv_category(text)


def test_subscriber_categories_are_validated_one_line(tmp_path: Path) -> None:
    config = tmp_path / "digest.toml"
    config.write_text(
        '[[subscribers]]\nemail = "ada@example.org"\ncategories = ["cs.CL", "huggingface"]\n'
        'exclude_categories = ["cs.CV"]\n\n'
        '[[subscribers]]\nemail = "bob@example.org"\nexclude_categories = ["cs.CL", "NLP"]\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert str(caught.value) == (
        f"{config}: subscribers[2] (bob@example.org): exclude_categories: 'NLP' is not an arXiv "
        "category (e.g. 'cs.CL', 'math.AG', 'astro-ph.GA', 'hep-th', or 'huggingface')"
    )
    config.write_text(config.read_text().replace(', "NLP"', ""))
    ada, bob = load_config(config).subscribers
    assert (ada.categories, ada.exclude_categories) == (("cs.CL", "huggingface"), ("cs.CV",))
    assert (bob.categories, bob.exclude_categories) == ((), ("cs.CL",))


# --- the source over HTTP --------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def http(clock: FakeClock) -> Iterator[HttpClient]:
    with HttpClient(
        timeout=2.0,
        retries=2,
        backoff=0.5,
        min_delay=0.0,
        sleep=clock.sleep,
        clock=clock,
        jitter=lambda: 1.0,
    ) as client:
        yield client


def _web(server: RecordedServer, *categories: str, **spec: object) -> Source:
    return _build(base_url=server.url, categories=list(categories or ("cs.CL", "cs.CV")), **spec)


def _ctx(http: HttpClient, state: MemoryState | Store | None = None) -> FetchContext:
    return FetchContext(today=NOW.date(), http=http, state=state or MemoryState(), now=NOW)


def test_one_conditional_request_per_fetch(
    http_server: RecordedServer, http: HttpClient, clock: FakeClock
) -> None:
    http_server.script(TARGET, Reply(200, DAY2.read_bytes(), etag='"day2"'))
    source, ctx = _web(http_server), _ctx(http)
    (page,) = fetch_remembering(source, ctx)
    assert page.error is None and len(page.papers) == 9
    (again,) = fetch_remembering(source, ctx)
    assert again.not_modified and not again.papers and again.error is None
    first, second = http_server.hits(TARGET)
    assert "If-None-Match" not in first.headers and second.headers["If-None-Match"] == '"day2"'
    # arXiv's pacing: the second request to the same host waited 3 s, then the client's own
    # delay (0 here) is back for the other sources.
    assert clock.sleeps == [3.0]
    assert http.min_delay == 0.0


def test_two_arxiv_sources_are_paced_and_retried_like_the_others(
    http_server: RecordedServer, http: HttpClient, clock: FakeClock
) -> None:
    http_server.script(TARGET, Reply(503), Reply(200, DAY2.read_bytes()))
    http_server.script("/rss/math.AG", Reply(200, HOLIDAY.read_bytes()))
    pages = [
        page
        for source in (_web(http_server), _web(http_server, "math.AG", min_delay=5))
        for page in source.fetch(_ctx(http))
    ]
    assert [len(p.papers) for p in pages] == [9, 0]
    assert all(p.error is None for p in pages)
    # 503, then the retry: its backoff (0.5 s) topped up to arXiv's 3 s; then 5 s before
    # the second source's feed.
    assert clock.sleeps == [0.5, 2.5, 5.0]
    assert len(http_server.hits(TARGET)) == 2


def test_broken_feeds_are_one_line_naming_the_url_and_the_others_go_on(
    http_server: RecordedServer, http: HttpClient, database_url: str
) -> None:
    body = DAY2.read_bytes()
    http_server.script("/rss/cs.AI", Reply(200, b"<rss><channel><item><title>A & B</item>"))
    http_server.script("/rss/cs.RO", Reply(200, body, cut_after=len(body) // 2))
    http_server.script(TARGET, Reply(200, body))
    http_server.script("/rss/physics", Reply(200, HOLIDAY.read_bytes()))
    sources = [
        _web(http_server, "cs.AI"),
        _web(http_server, "cs.RO"),
        _web(http_server),
        _web(http_server, "physics"),
    ]
    store = Store.open(database_url)
    try:
        reports = fetch_sources(sources, store, _ctx(http, store), NOW)
        assert store.count_papers() == 9
    finally:
        store.close()
    malformed, cut, good, holiday = reports
    assert malformed.errors == [
        f"{http_server.url}/rss/cs.AI: not well-formed XML at line 1: "
        "xmlParseEntityRef: no name, line 1, column 31"
    ]
    (error,) = cut.errors
    assert error.startswith(f"{http_server.url}/rss/cs.RO: response cut off")
    assert "gave up after 3 attempts" in error and "\n" not in error
    assert (good.fetched, good.new, good.updated, good.failed) == (9, 6, 3, 0)
    assert (holiday.fetched, holiday.new, holiday.failed, holiday.errors) == (0, 0, 0, [])


# --- revisions and identity in the store -------------------------------------------------


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.open(database_url)
    yield opened
    opened.close()


def test_a_paper_seen_first_on_hugging_face_then_on_arxiv_is_one_paper(store: Store) -> None:
    hf = store.ingest(_hf_day(), NOW)
    assert hf.new == 22
    arxiv = store.ingest(_feed(DAY1), NOW + timedelta(hours=1))
    # 2604.01220 (new) and 2603.28407 (a revision) are Hugging Face's papers already;
    # 2604.01221 was on the list too.
    assert (arxiv.new, arxiv.updated) == (0, 3)
    assert store.count_papers() == 22
    (paper,) = store.papers_by_key(["arxiv:2604.01220"])
    assert paper.upvotes == 10 and paper.list_date == date(2026, 4, 2)  # Hugging Face's
    assert paper.categories == ("cs.CL",) and paper.announce == "new"  # arXiv's
    (revised,) = store.papers_by_key(["arxiv:2603.28407"])
    assert revised.upvotes == 43 and revised.categories == ("cs.AI", "cs.CL")
    assert revised.announce is None  # an ordinary paper: a revision never makes it one
    offered = store.candidates(["ada@example.org"], NOW + timedelta(hours=2), 7)
    assert {"arxiv:2604.01220", "arxiv:2603.28407"} <= offered.eligible["ada@example.org"]


def test_hugging_faces_later_upvotes_and_links_update_the_arxiv_paper(store: Store) -> None:
    assert store.ingest(_feed(DAY1), NOW).new == 2
    result = store.ingest(_hf_day(), NOW + timedelta(hours=1))
    # 19 papers arXiv had not announced, and 2603.28407, known only from a revision, is a
    # paper now that the list has it; 2604.01220 and 2604.01221 were arXiv's already.
    assert (result.new, result.updated) == (20, 2)
    (paper,) = store.papers_by_key(["arxiv:2604.01221"])
    assert paper.upvotes == 12 and paper.categories == ("cs.AI", "cs.CV")
    assert store.count_papers() == 22


def test_a_version_2_is_not_new(store: Store) -> None:
    assert store.ingest(_feed(DAY1), NOW).new == 2
    first = store.candidates(["ada@example.org"], NOW, 7)
    assert first.eligible["ada@example.org"] == {"arxiv:2604.01220", "arxiv:2604.01221"}
    later = NOW + timedelta(days=7)
    result = store.ingest(_feed(DAY2), later)
    # 2604.01220 v2 and 2604.01221 v2 change nothing stored; 2505.15277 is a revision.
    assert (result.new, result.updated, result.unchanged) == (6, 1, 2)
    (paper,) = store.papers_by_key(["arxiv:2604.01220"])
    assert paper.announce == "new" and paper.published == date(2026, 4, 2)
    # Version 2 updated the paper in place: a subscriber who considered it does not get
    # it again, and a new subscriber gets it once, as the paper it is.
    after = store.candidates(["new@example.org"], later, 7)
    assert "arxiv:2604.01220" in after.eligible["new@example.org"]
    assert sum(p.key == "arxiv:2604.01220" for p in after.papers) == 1


def test_a_revision_of_a_paper_never_seen_is_stored_but_never_offered(store: Store) -> None:
    result = store.ingest(_feed(DAY2), NOW)
    assert (result.new, result.updated) == (6, 3)
    assert store.count_papers() == 9
    (old,) = store.papers_by_key(["arxiv:2505.15277"])
    assert old.announce == "replace" and old.categories == ("cs.CL",)
    offered = store.candidates(["ada@example.org"], NOW, 7)
    revisions = {"arxiv:2505.15277", "arxiv:2604.01220", "arxiv:2604.01221"}
    assert not revisions & offered.eligible["ada@example.org"]
    assert not revisions & {p.key for p in offered.papers}
    # The same revision again, days later: still not new, still not offered.
    assert store.ingest(_feed(DAY2), NOW + timedelta(days=1)).new == 0
    later = store.candidates(["bob@example.org"], NOW + timedelta(days=1), 7)
    assert not revisions & later.eligible["bob@example.org"]


def test_a_revision_listed_by_hugging_face_becomes_a_paper(store: Store) -> None:
    """Hugging Face lists papers of any age: its sighting is the paper's own, not a revision."""
    store.ingest([p for p in _feed(DAY2) if p.arxiv_id == "2604.01220"], NOW)
    assert store.candidates(["ada@example.org"], NOW, 7).eligible["ada@example.org"] == set()
    result = store.ingest(_hf_day(), NOW + timedelta(minutes=1))
    assert result.new == 22
    offered = store.candidates(["ada@example.org"], NOW + timedelta(minutes=2), 7)
    assert "arxiv:2604.01220" in offered.eligible["ada@example.org"]


# --- subscribers' category filters --------------------------------------------------------


def test_category_filters_keep_and_drop_the_right_papers() -> None:
    papers = [*_hf_day(), *(p for p in _feed(DAY2) if p.announce in ("new", "cross"))]
    keys = {p.key for p in papers}
    subscribers = [
        Subscriber("all@example.org"),
        Subscriber("cl@example.org", categories=("cs.CL",)),
        Subscriber("cv@example.org", categories=("CS.cv",), exclude_categories=("cs.LG",)),
        Subscriber("cs@example.org", categories=("cs",), exclude_categories=("huggingface",)),
        Subscriber("hf@example.org", categories=("huggingface",)),
        Subscriber("both@example.org", categories=("huggingface", "cs.CL")),
        Subscriber("no-ai@example.org", exclude_categories=("cs.AI",)),
    ]
    eligible = {s.email: set(keys) for s in subscribers}
    eligible["cl@example.org"].discard("arxiv:2604.06356")  # considered before: stays out
    result = filter_by_categories(subscribers, papers, eligible)
    arxiv_new = {"2604.06543", "2604.06356", "2604.06825", "2604.06988", "2604.06662", "2604.06401"}
    hf = {p.key for p in _hf_day()}

    def ids(email: str) -> set[str]:
        return {k.removeprefix("arxiv:") for k in result[email]}

    assert result["all@example.org"] == keys
    assert ids("cl@example.org") == {"2604.06543"}
    assert ids("cv@example.org") == {"2604.06825", "2604.06988"}
    assert ids("cs@example.org") == arxiv_new
    assert result["hf@example.org"] == hf
    assert result["both@example.org"] == hf | {"arxiv:2604.06543", "arxiv:2604.06356"}
    assert ids("no-ai@example.org") == {k.removeprefix("arxiv:") for k in keys} - {
        "2604.06356",
        "2604.06401",
    }
    assert eligible["all@example.org"] == keys  # the input is left alone
    assert result["all@example.org"] is eligible["all@example.org"]  # and not copied


def test_subscribers_sharing_a_set_and_filters_share_the_result() -> None:
    papers = _feed(DAY2)
    shared = {p.key for p in papers}
    subscribers = [Subscriber(f"{n}@example.org", categories=("cs.CV",)) for n in range(3)]
    result = filter_by_categories(subscribers, papers, {s.email: shared for s in subscribers})
    first, second, third = (result[s.email] for s in subscribers)
    assert first is second is third and len(first) == 5 and len(shared) == 9


def test_on_hugging_face() -> None:
    assert all(on_hugging_face(p) for p in _hf_day())
    assert not any(on_hugging_face(p) for p in _feed(DAY2))
    assert on_hugging_face(Paper("A text dump's paper"))


# --- end to end ----------------------------------------------------------------------------

CONFIG = """
[[sources]]
kind = "hf-api"
path = "hf/"

[[sources]]
kind = "arxiv"
path = "arxiv/"

[[subscribers]]
email = "cl@example.org"
categories = ["cs.CL"]
max_papers = 50

[[subscribers]]
email = "vision@example.org"
categories = ["cs.CV"]
exclude_categories = ["cs.LG", "huggingface"]
max_papers = 50

[[subscribers]]
email = "hf@example.org"
categories = ["huggingface"]
max_papers = 50
"""


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    return run_digest(capsys, *args)


def _sent_ids(outbox: Path, email: str, seen: set[Path]) -> set[str]:
    """The arXiv ids in the plain text of the digests sent to `email` since `seen`."""
    found: set[str] = set()
    for path in sorted(outbox.glob(f"{email}-*.eml")):
        if path in seen:
            continue
        seen.add(path)
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        body = message.get_body(("plain",))
        assert body is not None
        text = body.get_content()
        found |= set(re.findall(r"(?:arxiv\.org/abs|huggingface\.co/papers)/(\d{4}\.\d{5})", text))
    return found


def test_send_now_keeps_each_subscribers_categories_and_never_sends_a_revision(
    clean_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_RANKER", "lexical")
    (clean_env / "hf").mkdir()
    (clean_env / "arxiv").mkdir()
    shutil.copy(HF_DAY, clean_env / "hf")
    shutil.copy(DAY1, clean_env / "arxiv")
    config = clean_env / "digest.toml"
    config.write_text(CONFIG)
    outbox, seen = clean_env / "outbox", set[Path]()

    code, out, err = _run(capsys, "send-now", "--force", "--config", str(config))
    assert code == 0, err
    hf = {p.arxiv_id for p in _hf_day()}
    # The list's papers that arXiv's feed put in cs.CL (2604.01221 is cs.AI, cs.CV).
    assert _sent_ids(outbox, "cl@example.org", seen) == {"2604.01220", "2603.28407"}
    # Each paper's why-line names the category it came for.
    (mail,) = outbox.glob("cl@example.org-*.eml")
    assert mail.read_text().count("in cs.CL") >= 2
    assert _sent_ids(outbox, "vision@example.org", seen) == set()  # 2604.01221 is on HF
    assert _sent_ids(outbox, "hf@example.org", seen) == hf

    shutil.copy(DAY2, clean_env / "arxiv")
    code, out, err = _run(capsys, "send-now", "--force", "--config", str(config))
    assert code == 0, err
    # Day 2: the new and cross-listed papers only; the three revisions (two of them
    # papers already sent, one announced before the database existed) never.
    assert _sent_ids(outbox, "cl@example.org", seen) == {"2604.06543", "2604.06356"}
    assert _sent_ids(outbox, "vision@example.org", seen) == {"2604.06825", "2604.06988"}
    assert _sent_ids(outbox, "hf@example.org", seen) == set()
    assert "nothing new" in out  # hf@example.org: the arXiv papers are not on its list
