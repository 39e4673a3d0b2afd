"""A planned message as the mail server will see it: rendered content plus delivery headers.

Deterministic: the same planned message always gives the same bytes (Message-ID and
Date come from the plan), so a retry is the same message and receivers can drop a copy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from email import policy
from email.utils import parseaddr
from urllib.parse import quote

import jinja2

from digest.models import Digest, OutgoingMessage, Paper, RankedPaper, Reason, Subscriber
from digest.render import clean_header, render_message
from digest.store import ClaimedMessage

_SMTP = policy.SMTP.clone(max_line_length=998)


@dataclass(frozen=True, slots=True)
class Composer:
    """Builds the bytes of a claimed message."""

    templates: jinja2.Environment
    sender: str  # the From header
    subscribers: Mapping[str, Subscriber]  # by email, from the config
    papers: Callable[[list[int]], Mapping[int, Paper]]  # row ids -> papers
    unsubscribe_mailto: str | None = None
    public_url: str | None = None

    @property
    def domain(self) -> str:
        return sender_domain(self.sender)

    def __call__(self, claimed: ClaimedMessage) -> OutgoingMessage:
        return self.compose_many([claimed])[0]

    def compose_many(self, claimed: list[ClaimedMessage]) -> list[OutgoingMessage]:
        ids = [p["id"] for c in claimed for p in c.contents.get("papers", [])]
        papers = self.papers(ids)
        return [self._compose(c, papers) for c in claimed]

    def _compose(self, claimed: ClaimedMessage, papers: Mapping[int, Paper]) -> OutgoingMessage:
        subscriber = self.subscribers.get(claimed.subscriber) or Subscriber(claimed.subscriber)
        ranked = tuple(
            RankedPaper(
                papers[p["id"]],
                float(p["score"]),
                tuple(Reason.from_json(w) for w in p.get("why", ())),
            )
            for p in claimed.contents.get("papers", [])
            if p["id"] in papers
        )
        considered = int(claimed.contents.get("considered", len(ranked)))
        start = claimed.contents.get("period_start")
        digest = Digest(
            subscriber,
            ranked,
            claimed.issue_date,
            considered=considered,
            period_start=date.fromisoformat(start) if start else None,
            trending=bool(claimed.contents.get("trending")),
        )
        message = render_message(digest, self.templates, sender=self.sender, now=claimed.created_at)
        message.replace_header("Message-ID", claimed.message_id)
        message["List-Id"] = f"Paper digest <digest.{self.domain}>"
        mailto = self.unsubscribe_mailto or parseaddr(self.sender)[1] or f"digest@{self.domain}"
        links = [f"<mailto:{quote(mailto, safe='@')}?subject=unsubscribe>"]
        if self.public_url:
            address = quote(subscriber.email, safe="@")
            links.insert(0, f"<{self.public_url.rstrip('/')}/unsubscribe?email={address}>")
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message["List-Unsubscribe"] = clean_header(", ".join(links))
        return OutgoingMessage(
            message_id=claimed.message_id,
            sender=parseaddr(self.sender)[1] or f"digest@{self.domain}",
            recipient=subscriber.email,
            data=message.as_bytes(policy=_SMTP),
        )


def sender_domain(sender: str) -> str:
    return clean_header(parseaddr(sender)[1].rpartition("@")[2]) or "localhost"
