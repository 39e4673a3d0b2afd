"""What the email says and how its HTML is made, over real recorded papers.

Digests are built from the recorded API days in `tests/fixtures` (and every day of
`../shared/data/hf-daily-papers-api/`, skipped with the reason when absent, failed under
CI): titles with `<` and `&`, non-ASCII titles and names, a 533-author paper. Each
rendering is checked as HTML (well formed for lxml's XML parser once the doctype goes,
no external CSS, no script, every link absolute https: or the unsubscribe mailto:) and
as MIME (text first, charsets, lines under 998 octets, the headers).

The other email tests import the digest builders from here.
"""

from __future__ import annotations

import html
import re
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from functools import cache
from pathlib import Path

import pytest
from http_server import API_DAYS, shared_data
from lxml import etree
from lxml import html as lxml_html

from digest.errors import DigestError
from digest.models import (
    Digest,
    DigestLinks,
    Paper,
    PaperLinks,
    RankedPaper,
    Reason,
    Subscriber,
)
from digest.render import MessageWriter, make_environment, render_message, subject_for
from digest.sources.hf_api import parse_daily_papers

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 8, 22, 6, 30, tzinfo=UTC)
DAY = date(2026, 8, 22)
SENDER = "Paper digest <digest@example.org>"
POSTAL = "Paper digest · 12 Example Street · 75001 Paris"
ENV = make_environment(postal_address=POSTAL)
GMAIL_CLIP = 102 * 1024  # Gmail cuts the HTML of a message beyond this


def papers_of(folder: Path) -> list[Paper]:
    papers: list[Paper] = []
    for path in sorted(folder.glob("*.json")):
        papers += parse_daily_papers(path.read_bytes(), str(path))
    return papers


@cache
def fixture_papers() -> tuple[Paper, ...]:
    return tuple(papers_of(API_DAYS))


def links_for(email: str, papers: Iterable[Paper]) -> DigestLinks:
    """What the web app gives a subscriber: every link present."""
    base = "https://digest.example.org"
    return DigestLinks(
        unsubscribe=f"{base}/u/{email}?t=abc",
        unsubscribe_mailto="mailto:digest@example.org?subject=unsubscribe",
        manage=f"{base}/m/{email}?t=abc",
        feed=f"{base}/f/{email}.atom?t=abc",
        papers={p.key: PaperLinks(f"{base}/more/{p.key}", f"{base}/less/{p.key}") for p in papers},
    )


def pick(papers: Sequence[Paper], *needles: str) -> list[Paper]:
    return [next(p for p in papers if n in p.title) for n in needles]


def example_digest(count: int = 20, *, links: bool = True) -> Digest:
    """A 20-paper digest of recorded papers with every feature: `&`, non-ASCII, 533
    authors, code and project links, AI summaries, reasons of every kind."""
    papers = fixture_papers()
    special = pick(papers, "Llama 3 Herd", "MEME", "FürElise", "δ-mem")
    rest = [p for p in papers if p not in special and p.github_repo][: count - len(special)]
    chosen = (special + rest)[:count]
    sub = Subscriber(
        "zoe.muller@example.org",
        "Zoë Müller",
        topics=("agents", "video generation", "memory for language models"),
        authors=("Abhimanyu Dubey",),
        like=("2407.21783",),
        popularity=0.2,
    )
    kinds = [
        (Reason("author", "Abhimanyu Dubey"), Reason("upvotes", "49")),
        (Reason("topic", "agents"), Reason("topic", "memory for language models")),
        (Reason("like", "The Llama 3 Herd of Models"),),
        (Reason("topic", "video generation"), Reason("upvotes", "12")),
    ]
    ranked = tuple(
        RankedPaper(p, 1.0 - i / 100, kinds[i % len(kinds)]) for i, p in enumerate(chosen)
    )
    return Digest(
        sub,
        ranked,
        DAY,
        considered=183,
        period_start=date(2026, 8, 20),
        links=links_for(sub.email, chosen) if links else DigestLinks(),
    )


def digest_of(
    papers: Sequence[Paper], subscriber: Subscriber, *reasons: Reason, considered: int = 0
) -> Digest:
    ranked = tuple(RankedPaper(p, 1.0, tuple(reasons)) for p in papers)
    return Digest(subscriber, ranked, DAY, considered=considered or len(papers))


def message_of(digest: Digest, env: object = ENV) -> EmailMessage:
    return render_message(digest, ENV, sender=SENDER, now=NOW, message_id="<m1@example.org>")


def raw_of(digest: Digest) -> bytes:
    return MessageWriter(ENV, SENDER).write(digest, message_id="<m1@example.org>", date=NOW)


def report(line: str) -> None:
    """A figure for people reading the test output (`pytest -s` or `-rP`)."""
    sys.stdout.write(line + "\n")


def bodies(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    page = message.get_body(("html",))
    assert text is not None and page is not None
    return text.get_content(), page.get_content()


# -- HTML checks ------------------------------------------------------------------------


def check_html(page: str) -> None:
    """Well formed, self-contained, every link absolute https: (mailto: to unsubscribe)."""
    assert page.startswith("<!DOCTYPE html>")
    tree = etree.fromstring(
        xhtml(page.removeprefix("<!DOCTYPE html>")).encode(),
        etree.XMLParser(resolve_entities=False, no_network=True, recover=False),
    )  # well formed: every element closed and nested (XML rules, void elements aside)
    assert tree.tag == "html" and tree.get("lang") == "en"
    doc = lxml_html.fromstring(page)
    assert not doc.xpath("//script | //link | //iframe | //object | //form"), "active content"
    assert not doc.xpath("//@*[starts-with(name(), 'on')]"), "event handler attribute"
    assert not re.search(r"@import|url\(", page), "external CSS"
    for table in doc.xpath("//table"):
        assert table.get("role") == "presentation", "a layout table without role"
    for image in doc.xpath("//img"):
        assert image.get("alt") is not None
    hrefs = doc.xpath("//a/@href")
    assert hrefs
    for href in hrefs:
        assert href.startswith("https://") or href.startswith("mailto:"), href
        assert " " not in href


VOID = re.compile(r"<(area|base|br|col|hr|img|input|link|meta|source|wbr)\b([^>]*?)/?>", re.I)


def xhtml(page: str) -> str:
    """The page as XML: void elements self-closed, `&nbsp;` as a character."""
    return VOID.sub(r"<\1\2/>", page).replace("&nbsp;", "\u00a0")


# -- tests ------------------------------------------------------------------------------


def test_the_example_digest_is_valid_self_contained_html_under_gmails_limit() -> None:
    message = message_of(example_digest())
    text, page = bodies(message)
    check_html(page)
    size = len(page.encode())
    assert size < GMAIL_CLIP, size
    report(f"20-paper digest: HTML {size / 1024:.1f} KiB, text {len(text.encode()) / 1024:.1f} KiB")


def test_each_paper_shows_what_the_issue_asks_for() -> None:
    digest = example_digest()
    text, source = bodies(message_of(digest))
    assert source.isascii()  # non-ASCII as character references: a 7-bit part
    page = html.unescape(source).replace("&", "&amp;")  # as a reader sees it, & re-escaped
    llama, meme, elise, delta = digest.papers[0].paper, *(r.paper for r in digest.papers[1:4])
    # Titles: escaped in HTML, as they are in text; linked to Hugging Face.
    assert "MEME: Multi-entity &amp; Evolving Memory Evaluation" in page
    assert "MEME: Multi-entity & Evolving Memory Evaluation" in text
    assert "FürElise" in page and "FürElise" in text and "δ-mem" in page
    assert f'href="https://huggingface.co/papers/{llama.arxiv_id}"' in page
    # Authors: the first three, et al., the count.
    assert "Abhimanyu Dubey, Abhinav Jauhri, Abhinav Pandey et al. (533 authors)" in page
    assert "(533 authors)" in text
    # arXiv date, upvotes, comments.
    assert "arXiv 31 Jul 2024" in page and f"{llama.upvotes} upvotes" in page
    # arXiv, PDF, code and project links; stars when known.
    assert f"https://arxiv.org/abs/{llama.arxiv_id}" in page
    assert f"https://arxiv.org/pdf/{llama.arxiv_id}" in text
    coded = next(r.paper for r in digest.papers if r.paper.github_stars)
    assert coded.github_repo and coded.github_repo in page
    # Reasons in words, per kind.
    assert "by Abhimanyu Dubey, whom you follow" in page
    assert "matches “agents” and “memory for language models”" in page
    assert "like “The Llama 3 Herd of Models”, which you liked" in text
    # Header: the period and the count; footer: topics, links, postal line.
    assert "20–22 August 2026" in page and "20 of 183 new papers matched" in page
    assert "Your topics: agents, video generation, memory for language models." in page
    for label in ("Unsubscribe", "Change your topics", "Atom feed", "More like this"):
        assert label in page and label in text
    assert POSTAL in page and POSTAL in text
    del meme, elise, delta


def test_the_summary_is_the_ai_line_or_the_abstracts_first_sentences() -> None:
    papers = fixture_papers()
    with_ai = next(p for p in papers if p.ai_summary)
    without = next(p for p in papers if not p.ai_summary and len(p.abstract) > 600)
    text, _ = bodies(message_of(digest_of([with_ai, without], Subscriber("a@example.org"))))
    flat = " ".join(text.split())
    assert " ".join(with_ai.ai_summary.split()) in flat  # type: ignore[union-attr]
    first = without.abstract.split(". ")[0]
    assert " ".join(first.split()) in flat
    assert " ".join(without.abstract.split()) not in flat


def test_a_long_abstract_without_sentences_is_cut_at_a_word_with_dots() -> None:
    paper = Paper("T", "word " * 400)
    text, page = bodies(message_of(digest_of([paper], Subscriber("a@example.org"))))
    assert "word word..." in page and "wordw" not in page
    assert len(text) < 3000


def test_a_paper_known_only_to_arxiv_links_there_and_one_without_id_to_a_search() -> None:
    arxiv_only = Paper("From arXiv", arxiv_id="2601.00001", source="arxiv-listing")
    nowhere = Paper('Attention & "Transformers"?')
    _, page = bodies(message_of(digest_of([arxiv_only, nowhere], Subscriber("a@example.org"))))
    assert '<a class="paper-link" href="https://arxiv.org/abs/2601.00001"' in page
    assert 'href="https://huggingface.co/papers?q=Attention+%26+%22Transformers%22%3F"' in page


def test_the_plain_text_is_numbered_wrapped_dated_with_links_on_their_own_lines() -> None:
    text, _ = bodies(message_of(example_digest()))
    lines = text.splitlines()
    assert re.match(r"^ 1\. ", next(line for line in lines if line.startswith(" 1.")))
    assert any(line.startswith("20. ") for line in lines)
    long = [line for line in lines if len(line) > 72 and "://" not in line]
    assert not long, long
    for line in lines:
        if "https://" in line:  # a link alone on its line, or after a short label
            before = line.split("https://")[0].strip()
            assert len(before) <= 20 and line.rstrip().endswith(line.split()[-1]), line
    assert "Saturday" not in text.splitlines()[1] or "20–22 August 2026" in text
    assert "arXiv 31 Jul 2024" in text


def test_the_mime_structure_and_headers_follow_the_standards() -> None:
    raw = raw_of(example_digest())
    head, _, _ = raw.partition(b"\r\n\r\n")
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
    assert all(len(line) < 998 for line in raw.split(b"\r\n"))
    names = [line.split(b":")[0] for line in head.split(b"\r\n") if not line.startswith(b" ")]
    for name in (b"Date", b"From", b"To", b"Subject", b"Message-ID", b"MIME-Version"):
        assert names.count(name) == 1, name
    assert head.isascii()  # encoded-words for the names and subject
    message = message_from_bytes(raw, policy=policy.default)
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert message["To"].addresses[0].display_name == "Zoë Müller"
    assert message["From"].addresses[0].addr_spec == "digest@example.org"
    assert str(message["Subject"]) == subject_for(example_digest())
    unsubscribe = str(message["List-Unsubscribe"])
    assert unsubscribe.startswith("<https://digest.example.org/u/") and "<mailto:" in unsubscribe
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Id"] == "Paper digest <digest.example.org>"


def test_the_same_digest_gives_the_same_bytes_cold_or_warm() -> None:
    digest = example_digest()
    warm = raw_of(digest)
    assert raw_of(digest) == warm
    cold = MessageWriter(make_environment(postal_address=POSTAL), SENDER)
    assert cold.write(digest, message_id="<m1@example.org>", date=NOW) == warm


def test_a_line_over_998_octets_makes_the_part_quoted_printable() -> None:
    name = "x" * 3000  # a name with no space cannot be folded
    sub = Subscriber("a@example.org", topics=(name,))
    raw = raw_of(digest_of([Paper("T")], sub, Reason("topic", name)))
    assert all(len(line) < 998 for line in raw.split(b"\r\n"))
    message = message_from_bytes(raw, policy=policy.default)
    text, _ = bodies(message)
    assert name in text
    assert b"Content-Transfer-Encoding: quoted-printable" in raw


SUBJECTS = [
    # (topics, likes, authors, popularity, reasons per paper, upvotes, subject)
    (("robotics",), (), (), 0.0, [("topic", "robotics")] * 3, 5, "3 new papers on robotics"),
    (
        ("robotics", "agents"),
        (),
        (),
        0.0,
        [("topic", "robotics"), ("topic", "agents"), ("topic", "robotics")],
        5,
        "3 new papers on robotics and agents",
    ),
    (
        (),
        ("2401.00001",),
        (),
        0.5,
        [("like", "A liked paper")] * 2,
        0,
        "2 new papers like the ones you liked",
    ),
    ((), ("2401.00001",), (), 0.5, [], 0, "2 new papers for you, 22 Aug 2026"),
    ((), (), (), 1.0, [("upvotes", "5")] * 2, 5, "2 trending papers on Hugging Face, 22 Aug 2026"),
    ((), (), (), 1.0, [], 0, "2 new papers for you, 22 Aug 2026"),
    (
        (),
        (),
        ("Ada Lovelace",),
        0.0,
        [("author", "Ada Lovelace")] * 2,
        0,
        "2 new papers by Ada Lovelace",
    ),
]


@pytest.mark.parametrize(
    ("topics", "like", "authors", "popularity", "why", "votes", "subject"), SUBJECTS
)
def test_the_subject_is_true_for_every_kind_of_subscriber(
    topics: tuple[str, ...],
    like: tuple[str, ...],
    authors: tuple[str, ...],
    popularity: float,
    why: list[tuple[str, str]],
    votes: int,
    subject: str,
) -> None:
    sub = Subscriber(
        "s@example.org", topics=topics, like=like, authors=authors, popularity=popularity
    )
    count = len(why) or 2
    ranked = tuple(
        RankedPaper(Paper(f"P{i}", upvotes=votes), 1.0, (Reason(*why[i]),) if why else ())
        for i in range(count)
    )
    assert subject_for(Digest(sub, ranked, DAY)) == subject


def test_a_likes_only_subscriber_on_a_day_without_upvotes_is_never_told_trending() -> None:
    sub = Subscriber("l@example.org", like=("2401.00001",), popularity=0.5)
    for why in [(), (Reason("like", "X"),), (Reason("upvotes", "0"),)]:
        ranked = tuple(RankedPaper(Paper(f"P{i}", upvotes=0), 0.5, why) for i in range(10))
        assert "trending" not in subject_for(Digest(sub, ranked, DAY)).lower()


def test_shared_days_render_valid_html_for_every_day() -> None:
    """Every recorded API day, as one digest per day of all its papers (up to 50)."""
    days = shared_data("data/hf-daily-papers-api/days")
    writer = MessageWriter(ENV, SENDER)
    sub = Subscriber("all@example.org", "Everyone & <Co>", topics=("everything",))
    count = 0
    for path in sorted(days.glob("*.json")):
        try:
            papers = parse_daily_papers(path.read_bytes(), str(path))
        except DigestError:  # the known broken files are tested elsewhere
            continue
        ranked = digest_of(papers[:50], sub, Reason("topic", "everything")).papers
        links = links_for(sub.email, papers)
        digest = Digest(sub, ranked, DAY, considered=len(papers), links=links)
        raw = writer.write(digest, message_id=f"<{path.stem}@example.org>", date=NOW)
        assert all(len(line) < 998 for line in raw.split(b"\r\n")), path
        message = message_from_bytes(raw, policy=policy.default)
        _, page = bodies(message)  # type: ignore[arg-type]
        check_html(page)
        for ranked in digest.papers:
            assert ranked.paper.url in page or "arxiv.org/abs" in page
        count += 1
    assert count > 40
