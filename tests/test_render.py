"""The email a subscriber receives: structure, escaping, headers, template overrides."""

from __future__ import annotations

from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.config import DEFAULT_TEMPLATES
from digest.errors import ConfigError
from digest.models import Digest, DigestLinks, Paper, RankedPaper, Reason, Subscriber
from digest.render import (
    MessageWriter,
    clean_header,
    make_environment,
    render_message,
    renderer_for,
    subject_for,
)
from digest.render.templates import fold_html

ENV = make_environment(DEFAULT_TEMPLATES)
NOW = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)
ADA = Subscriber("ada@example.org", "Ada", topics=("transfer learning", "robotics"))


def digest_of(*papers: Paper, subscriber: Subscriber = ADA) -> Digest:
    ranked = tuple(RankedPaper(p, 1.0, (Reason("topic", "transfer learning"),)) for p in papers)
    return Digest(subscriber, ranked, date(2026, 11, 22))


def bodies(digest: Digest, env: object = ENV) -> tuple[str, str]:
    msg = render_message(digest, ENV if env is ENV else env, sender="d@example.org", now=NOW)  # type: ignore[arg-type]
    text, page = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text is not None and page is not None
    return text.get_content(), page.get_content()


def test_multipart_alternative_text_first_html_last() -> None:
    paper = Paper("Scaling Laws", "We study scaling.", arxiv_id="2604.00001", upvotes=12)
    msg = render_message(digest_of(paper), ENV, sender="Digest <d@example.org>", now=NOW)
    assert msg.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in msg.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    text, html = bodies(digest_of(paper))
    assert "Scaling Laws" in text and "https://huggingface.co/papers/2604.00001" in text
    assert "Why: matches “transfer learning”" in text
    assert 'href="https://huggingface.co/papers/2604.00001"' in html
    assert msg["Subject"] == "1 new paper on transfer learning"
    assert msg["To"] == "Ada <ada@example.org>"
    assert msg["Message-ID"].endswith("@example.org>")


def test_subject_counts_papers_and_names_the_topic() -> None:
    papers = [Paper(f"P{i}") for i in range(5)]
    assert subject_for(digest_of(*papers)) == "5 new papers on transfer learning"
    plain = tuple(RankedPaper(p, 1.0, ("topic: transfer learning",)) for p in papers)
    assert (
        subject_for(Digest(ADA, plain, date(2026, 11, 22))) == "5 new papers on transfer learning"
    )


def test_script_in_title_is_escaped_in_html() -> None:
    evil = Paper("<script>alert(1)</script> & friends", "a <b>bold</b> claim")
    text, html = bodies(digest_of(evil))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; friends" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "<script>alert(1)</script> & friends" in text  # plain text is not HTML-escaped


def test_a_subscribers_own_fields_are_escaped_too() -> None:
    sub = Subscriber("x@example.org", '<img src=x onerror="y">', topics=("<b>t</b>",))
    links = DigestLinks(unsubscribe='https://e.org/u?a=1&b="2"')
    digest = Digest(sub, digest_of(Paper("T")).papers, date(2026, 11, 22), links=links)
    _, html = bodies(digest)
    assert "<img" not in html and "<b>t</b>" not in html
    assert "&lt;img src=x onerror=&#34;y&#34;&gt;" in html
    assert 'href="https://e.org/u?a=1&amp;b=&#34;2&#34;"' in html


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=80), st.text(max_size=40), st.text(max_size=60))
def test_no_header_injection_from_names_topics_or_titles(topic: str, name: str, title: str) -> None:
    sub = Subscriber("x@example.org", name, topics=(topic.strip() or "t",))
    reason = Reason("topic", topic.strip() or "t")
    digest = Digest(sub, (RankedPaper(Paper(title or "T"), 1.0, (reason,)),), date(2026, 11, 22))
    raw = MessageWriter(ENV, "d@example.org").write(digest, message_id="<m@x>", date=NOW)
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    names = [line.split(b":")[0] for line in head.split(b"\r\n") if not line[:1].isspace()]
    assert len(names) == len(set(names))  # no header twice, none added
    assert not any(n.lower() in (b"bcc", b"cc", b"x-injected") for n in names)
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert all(len(line) < 998 for line in raw.split(b"\r\n"))
    reparsed = message_from_bytes(raw, policy=policy.default)
    assert "\n" not in str(reparsed["Subject"]) and "\r" not in str(reparsed["Subject"])
    assert str(reparsed["Subject"]) == subject_for(digest)
    assert reparsed["To"].addresses[0].addr_spec == "x@example.org"


def test_clean_header_strips_line_breaks() -> None:
    assert clean_header("Hi\r\nBcc: victim@example.org") == "Hi Bcc: victim@example.org"


def test_long_abstract_is_shortened_at_a_word() -> None:
    text, _ = bodies(digest_of(Paper("T", "word " * 400)))
    assert "word..." in text and len(text) < 1500


def test_a_paper_without_an_id_links_to_a_search_for_its_title() -> None:
    _, html = bodies(digest_of(Paper('Attention & "Transformers"?')))
    assert 'href="https://huggingface.co/papers?q=Attention+%26+%22Transformers%22%3F"' in html


def test_a_cached_rendering_is_the_same_as_a_fresh_one() -> None:
    """Pieces cached for one subscriber never carry another's fields."""
    papers = [Paper(f"Paper {i}", f"About {i}.", arxiv_id=f"2604.0000{i}") for i in range(4)]
    bea = Subscriber("bea@example.org", "Bea", topics=("robotics",))
    first = Digest(ADA, digest_of(*papers).papers, date(2026, 11, 22))
    second = Digest(bea, digest_of(*papers[1:]).papers, date(2026, 11, 22))
    warm = make_environment()
    renderer_for(warm).render(first)
    cached = renderer_for(warm).render(second)
    fresh = renderer_for(make_environment()).render(second)
    assert cached == fresh
    assert "Ada" not in cached.html and "ada@example.org" not in cached.text


def test_long_html_lines_are_folded_at_spaces_outside_attributes() -> None:
    page = '<p title="a b c">' + "word " * 400 + "</p>"
    folded = fold_html(page, limit=100)
    assert all(len(line) <= 110 for line in folded.split("\n"))
    assert folded.replace("\n", " ") == page
    assert '<p title="a b c">' in folded


def test_an_override_that_reads_the_papers_is_rendered_per_message(tmp_path: Path) -> None:
    (tmp_path / "digest.txt.j2").write_text(
        "{% for r in papers %}{{ r.paper.title }} for {{ subscriber.email }}\n{% endfor %}"
    )
    env = make_environment(tmp_path)
    text, _ = bodies(digest_of(Paper("One"), Paper("Two")), env)
    assert text == "One for ada@example.org\nTwo for ada@example.org\n"
    bea = Subscriber("bea@example.org")
    text, _ = bodies(digest_of(Paper("Three"), subscriber=bea), env)
    assert text == "Three for bea@example.org\n"


def test_an_override_of_the_paper_block_is_used(tmp_path: Path) -> None:
    (tmp_path / "_paper.html.j2").write_text('<p class="x">{{ number }} {{ p.title }}</p>\n')
    _, html = bodies(digest_of(Paper("One & two")), make_environment(tmp_path))
    assert " 1. One &amp; two</p>" in html


def test_a_broken_paper_template_is_one_config_error(tmp_path: Path) -> None:
    (tmp_path / "_paper.txt.j2").write_text("{% if %}\n")
    with pytest.raises(ConfigError, match=r"_paper\.txt\.j2: line 1: "):
        make_environment(tmp_path)
