"""A planned message as the mail server will see it: rendered content plus delivery headers.

Deterministic: the same planned message always gives the same bytes (Message-ID and
Date come from the plan), so a retry is the same message and receivers can drop a copy.

Fast, because delivery composes every message while others are on the wire: papers are
read from the store once per Composer, the templates render once per distinct content
(see digest/render/templates.py) and the MIME bytes are written by hand.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import quote

import jinja2
from pydantic import SecretStr

from digest.models import (
    Digest,
    DigestLinks,
    OutgoingMessage,
    Paper,
    PaperLinks,
    RankedPaper,
    Reason,
    Subscriber,
)
from digest.render import MessageWriter, sender_domain
from digest.store import ClaimedMessage
from digest.tokens import Tokens

__all__ = ["Composer", "sender_domain"]

PAPER_CACHE = 20_000  # papers kept between messages (a few days' worth)
PAPER_CACHE_SECONDS = 600.0  # then read again: upvotes and comments move during a day


@dataclass(slots=True)
class _State:
    """What a Composer keeps between messages."""

    writer: MessageWriter
    papers: dict[int, Paper] = field(default_factory=dict)
    papers_read_at: float = 0.0
    reasons: dict[tuple[str, str], Reason] = field(default_factory=dict)
    tokens: Tokens | None = None  # signs the subscriber's links (DIGEST_SECRET_KEY)


@dataclass(frozen=True, slots=True)
class Composer:
    """Builds the bytes of a claimed message."""

    templates: jinja2.Environment
    sender: str  # the From header
    subscribers: Mapping[str, Subscriber]  # by email, from the config
    papers: Callable[[list[int]], Mapping[int, Paper]]  # row ids -> papers
    unsubscribe_mailto: str | None = None
    public_url: str | None = None
    secret_key: SecretStr | None = None  # with public_url: signed unsubscribe/feedback/feed
    _state: _State = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_state", _State(MessageWriter(self.templates, self.sender)))
        if self.secret_key is not None:
            self._state.tokens = Tokens.from_secret(self.secret_key.get_secret_value())

    @property
    def domain(self) -> str:
        return sender_domain(self.sender)

    def __call__(self, claimed: ClaimedMessage) -> OutgoingMessage:
        return self.compose_many([claimed])[0]

    def compose_many(self, claimed: list[ClaimedMessage]) -> list[OutgoingMessage]:
        papers = self._papers([p["id"] for c in claimed for p in c.contents.get("papers", [])])
        return [self._compose(c, papers) for c in claimed]

    def links_for(
        self, subscriber: Subscriber, claimed: ClaimedMessage, papers: Sequence[Paper] = ()
    ) -> DigestLinks:
        """The subscriber's own links in this message (unsubscribe, feed, per paper).

        With `secret_key` and `public_url` (`digest serve`): the signed unsubscribe page
        (also the RFC 8058 one-click target), their Atom feed and "more/less like this"
        per paper. The mailto address (`unsubscribe_mailto`, else the From address) is
        always there, its subject carrying the signed token when there is a key.
        Deterministic: a retried message carries the same links.
        """
        email, tokens = subscriber.email, self._state.tokens
        mailto = quote(self.unsubscribe_mailto or self._state.writer.envelope_sender, safe="@")
        if tokens is None:
            return DigestLinks(unsubscribe_mailto=f"mailto:{mailto}?subject=unsubscribe")
        token = tokens.unsubscribe(email)
        mail_link = f"mailto:{mailto}?subject=unsubscribe%20{token}"
        if not self.public_url:
            return DigestLinks(unsubscribe_mailto=mail_link)
        base = self.public_url.rstrip("/")
        day = claimed.issue_date
        return DigestLinks(
            unsubscribe=f"{base}/u/{token}",
            unsubscribe_mailto=mail_link,
            feed=f"{base}/feed/{tokens.feed(email)}.atom",
            papers={
                p.key: PaperLinks(
                    more=f"{base}/f/{tokens.feedback(email, p.key, day, 'more')}",
                    less=f"{base}/f/{tokens.feedback(email, p.key, day, 'less')}",
                )
                for p in papers
            },
        )

    def digest_of(self, claimed: ClaimedMessage, papers: Mapping[int, Paper]) -> Digest:
        """The digest a planned message holds, with the subscriber's links."""
        subscriber = self.subscribers.get(claimed.subscriber) or Subscriber(claimed.subscriber)
        contents = claimed.contents
        ranked = tuple(
            RankedPaper(papers[p["id"]], float(p["score"]), self._reasons(p.get("why", ())))
            for p in contents.get("papers", [])
            if p["id"] in papers
        )
        start = contents.get("period_start")
        return Digest(
            subscriber,
            ranked,
            claimed.issue_date,
            considered=int(contents.get("considered", len(ranked))),
            period_start=date.fromisoformat(start) if start else None,
            trending=bool(contents.get("trending")),
            links=self.links_for(subscriber, claimed, [r.paper for r in ranked]),
        )

    def _compose(self, claimed: ClaimedMessage, papers: Mapping[int, Paper]) -> OutgoingMessage:
        digest = self.digest_of(claimed, papers)
        writer = self._state.writer
        data = writer.write(digest, message_id=claimed.message_id, date=claimed.created_at)
        return OutgoingMessage(
            message_id=claimed.message_id,
            sender=writer.envelope_sender,
            recipient=digest.subscriber.email,
            data=data,
        )

    def _papers(self, ids: list[int]) -> Mapping[int, Paper]:
        """Papers by row id, read from the store only when not already known (recently)."""
        state = self._state
        now = time.monotonic()
        if now - state.papers_read_at > PAPER_CACHE_SECONDS or len(state.papers) > PAPER_CACHE:
            state.papers.clear()
            state.papers_read_at = now
        missing = sorted({i for i in ids if i not in state.papers})
        if missing:
            state.papers.update(self.papers(missing))
        return state.papers

    def _reasons(self, stored: Any) -> tuple[Reason, ...]:
        """Reasons from the plan's JSON, each built once (they repeat across subscribers)."""
        known = self._state.reasons
        if len(known) > PAPER_CACHE:
            known.clear()
        out = []
        for item in stored:
            key = (item[0], item[1]) if isinstance(item, list) and len(item) == 2 else ("", item)
            reason = known.get(key)
            if reason is None:
                reason = known[key] = Reason.from_json(item)
            out.append(reason)
        return tuple(out)
