"""The Composer: a planned message from the outbox becomes the same bytes every time."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from pydantic import SecretStr

from digest import pipeline
from digest.app import App, open_app
from digest.compose import Composer
from digest.config import Config, Settings
from digest.models import DigestLinks, Paper, PaperLinks, Subscriber
from digest.sources import parse_saved_page
from digest.store import ClaimedMessage

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "examples" / "pages" / "004_056f41bc6489462d.txt"
NOW = datetime(2026, 11, 22, 6, 30, tzinfo=UTC)
READERS = (
    Subscriber("ada@example.org", "Ada Lovelace", topics=("reinforcement learning",)),
    Subscriber("zoe@example.org", "Zoë", topics=("language models", "benchmark")),
)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite:///{tmp_path / 'digest.db'}",
        mailer="outbox",
        outbox_dir=tmp_path / "outbox",
        ranker="lexical",
        DIGEST_FROM="Paper digest <digest@example.org>",
    )
    with open_app(settings, Config(tmp_path / "digest.toml", READERS, ())) as opened:
        opened.store.ingest(parse_saved_page(PAGE, today=NOW.date()), NOW)
        due, _ = pipeline.due_now(opened, READERS, NOW, pipeline.RunOptions(force=True))
        pipeline.plan(opened, due, now=NOW)
        yield opened


def composer(app: App, public_url: str | None = None) -> Composer:
    key = SecretStr("a-long-random-secret-for-tests") if public_url else None
    return Composer(
        app.templates,
        app.settings.from_address,
        {s.email: s for s in READERS},
        app.store.papers_by_id,
        public_url=public_url,
        secret_key=key,
    )


def claimed(app: App) -> list[ClaimedMessage]:
    messages = app.store.claim("test", NOW, 10, timedelta(minutes=5))
    assert len(messages) == 2
    return messages


def test_the_same_planned_message_is_the_same_bytes_from_any_composer(app: App) -> None:
    messages = claimed(app)
    first = composer(app).compose_many(messages)
    again = composer(app).compose_many(list(reversed(messages)))
    assert [m.data for m in first] == [m.data for m in reversed(again)]
    for message, planned in zip(first, messages, strict=True):
        assert message.message_id == planned.message_id
        assert message.sender == "digest@example.org"
        assert message.recipient == planned.subscriber


def test_without_a_web_app_unsubscribe_is_by_mail(app: App) -> None:
    (out, _) = composer(app).compose_many(claimed(app))
    parsed = message_from_bytes(out.data, policy=policy.default)
    assert parsed["List-Unsubscribe"] == "<mailto:digest@example.org?subject=unsubscribe>"
    assert parsed["List-Unsubscribe-Post"] is None
    assert parsed["Message-ID"] == out.message_id
    assert parsed["Date"].datetime == NOW.replace(tzinfo=parsed["Date"].datetime.tzinfo)
    page = parsed.get_body(("html",))
    assert page is not None and 'href="mailto:digest@example.org?subject=unsubscribe"' in (
        page.get_content()
    )


def test_with_a_web_app_unsubscribe_is_one_click_and_every_link_is_there(app: App) -> None:
    (out, _) = composer(app, "https://digest.example.org/").compose_many(claimed(app))
    parsed = message_from_bytes(out.data, policy=policy.default)
    web, mail = str(parsed["List-Unsubscribe"]).split(", ")
    assert web.startswith("<https://digest.example.org/u/")
    assert mail.startswith("<mailto:digest@example.org?subject=unsubscribe%20")
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = parsed.get_body(("plain",))
    assert text is not None
    content = text.get_content()
    assert web.strip("<>") in content and "https://digest.example.org/feed/" in content
    assert content.count("More like this: https://digest.example.org/f/") == len(
        claimed_papers(out.data)
    )


def claimed_papers(data: bytes) -> list[str]:
    """The numbered paper lines of a message's plain text."""
    text = message_from_bytes(data, policy=policy.default).get_body(("plain",))
    assert text is not None
    return [line for line in text.get_content().splitlines() if line[:4].strip().endswith(".")]


def test_links_for_is_the_place_for_a_subscribers_own_links(app: App) -> None:
    """What the web app will fill in: every link it gives is rendered, and only those."""

    class Linked(Composer):
        def links_for(
            self, subscriber: Subscriber, claimed: ClaimedMessage, papers: Sequence[Paper] = ()
        ) -> DigestLinks:
            more = {p.key: PaperLinks(more=f"https://w.example/more/{p.key}") for p in papers}
            return DigestLinks(manage=f"https://w.example/m/{subscriber.email}", papers=more)

    base = composer(app)
    linked = Linked(base.templates, base.sender, base.subscribers, base.papers)
    (out, _) = linked.compose_many(claimed(app))
    parsed = message_from_bytes(out.data, policy=policy.default)
    text = parsed.get_body(("plain",))
    assert text is not None
    content = text.get_content()
    assert "https://w.example/m/ada@example.org" in content
    assert "More like this: https://w.example/more/" in content
    assert "Less like this" not in content and "Unsubscribe" not in content
    assert parsed["List-Unsubscribe"] is None
