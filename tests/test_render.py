"""The email a subscriber receives: structure, escaping, headers."""

from __future__ import annotations

from datetime import UTC, date, datetime
from email import message_from_bytes, policy

from hypothesis import given
from hypothesis import strategies as st

from digest.config import DEFAULT_TEMPLATES
from digest.models import Digest, Paper, RankedPaper, Subscriber
from digest.render import clean_header, make_environment, render_message, subject_for

ENV = make_environment(DEFAULT_TEMPLATES)
NOW = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)
ADA = Subscriber("ada@example.org", "Ada", topics=("transfer learning", "robotics"))


def digest_of(*papers: Paper, subscriber: Subscriber = ADA) -> Digest:
    ranked = tuple(RankedPaper(p, 1.0, ("topic: transfer learning",)) for p in papers)
    return Digest(subscriber, ranked, date(2026, 11, 22))


def test_multipart_alternative_text_first_html_last() -> None:
    paper = Paper("Scaling Laws", "We study scaling.", arxiv_id="2604.00001", upvotes=12)
    msg = render_message(digest_of(paper), ENV, sender="Digest <d@example.org>", now=NOW)
    assert msg.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in msg.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Scaling Laws" in text and "https://huggingface.co/papers/2604.00001" in text
    assert "Why: topic: transfer learning" in text
    assert 'href="https://huggingface.co/papers/2604.00001"' in html
    assert msg["Subject"] == "1 new paper on transfer learning"
    assert msg["To"] == "Ada <ada@example.org>"
    assert msg["Message-ID"].endswith("@example.org>")


def test_subject_counts_papers_and_names_the_topic() -> None:
    papers = [Paper(f"P{i}") for i in range(5)]
    assert subject_for(digest_of(*papers)) == "5 new papers on transfer learning"
    trending = Subscriber("t@example.org")
    assert subject_for(digest_of(*papers, subscriber=trending)) == "5 trending papers for Nov 22"


def test_script_in_title_is_escaped_in_html() -> None:
    evil = Paper("<script>alert(1)</script> & friends", "a <b>bold</b> claim")
    msg = render_message(digest_of(evil), ENV, sender="d@example.org", now=NOW)
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; friends" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "<script>alert(1)</script> & friends" in text  # plain text is not HTML-escaped


@given(st.text(min_size=1, max_size=80), st.text(max_size=40))
def test_no_header_injection_from_names_or_topics(topic: str, name: str) -> None:
    sub = Subscriber("x@example.org", name, topics=(topic.strip() or "t",))
    msg = render_message(
        digest_of(Paper("T"), subscriber=sub), ENV, sender="d@example.org", now=NOW
    )
    raw = msg.as_bytes()
    reparsed = message_from_bytes(raw, policy=policy.default)
    headers = raw.split(b"\n\n", 1)[0].split(b"\n")
    assert not any(h.startswith((b"Bcc", b"X-Injected")) for h in headers)
    assert "\n" not in str(reparsed["Subject"]) and "\r" not in str(reparsed["Subject"])


def test_clean_header_strips_line_breaks() -> None:
    assert clean_header("Hi\r\nBcc: victim@example.org") == "Hi Bcc: victim@example.org"


def test_long_abstract_is_shortened_at_a_word() -> None:
    long = "word " * 400
    msg = render_message(digest_of(Paper("T", long)), ENV, sender="d@example.org", now=NOW)
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "…" in text and len(text) < 1500


def test_a_paper_without_an_id_links_to_a_search_for_its_title() -> None:
    paper = Paper('Attention & "Transformers"?')
    msg = render_message(digest_of(paper), ENV, sender="d@example.org", now=NOW)
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert 'href="https://huggingface.co/papers?q=Attention+%26+%22Transformers%22%3F"' in html
