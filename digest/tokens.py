"""Signed tokens for a subscriber's own links: unsubscribe, feedback on a paper, their feed.

A token carries the subscriber's address and what it allows (for feedback: the verdict,
the paper and the issue date), signed with HMAC-SHA256 under `DIGEST_SECRET_KEY`
(itsdangerous). Each kind has its own salt, so an unsubscribe token is no feedback token,
and nothing in it can be changed, nor moved to another address, without the key.

Tokens hold no timestamp: the same link in the same digest is always the same string, so
a retried message is byte for byte the message it retries. Unsubscribe and feed tokens
never expire (an old email must still be able to unsubscribe); a feedback token expires
`feedback_days` after the issue date it carries. The payload is signed, not encrypted:
the address can be read from the link, as from the email that holds it.

    tokens = Tokens.from_secret("a long random string")
    link = tokens.feedback("ada@example.org", "arxiv:2401.01234", date(2026, 4, 10), "more")
    tokens.read(link, "feedback", today=date(2026, 4, 11))  # -> Token(...)

Rotating the key: set `DIGEST_SECRET_KEY` to the new key followed by the old ones,
separated by spaces; the first signs, every one verifies.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal, get_args

from itsdangerous import BadData, URLSafeSerializer

Kind = Literal["unsubscribe", "feedback", "feed"]
Verdict = Literal["more", "less"]
KINDS: tuple[Kind, ...] = get_args(Kind)
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)
FEEDBACK_DAYS = 90  # feedback links work this many days after the issue date
MIN_KEY_LENGTH = 16
# What a token looks like inside text (a mail subject or body): URL-safe base64 pieces
# joined by dots, as itsdangerous writes them (a leading dot when compressed).
TOKEN_PATTERN = re.compile(r"\.?[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{20,}")


class TokenError(ValueError):
    """Not a token of ours, or not for this use. The message is safe to show to anyone."""


class ExpiredTokenError(TokenError):
    """A genuine feedback token past its date."""


@dataclass(frozen=True, slots=True)
class Token:
    """What a verified token allows."""

    kind: Kind
    email: str
    verdict: Verdict | None = None  # feedback only
    paper_key: str = ""  # feedback only
    issue_date: date | None = None  # feedback only


class Tokens:
    """Makes and checks the tokens of one installation (one set of keys)."""

    def __init__(self, secret_keys: Sequence[str], *, feedback_days: int = FEEDBACK_DAYS) -> None:
        keys = [k for k in secret_keys if k]
        if not keys:
            raise ValueError("no secret key")
        if any(len(k) < MIN_KEY_LENGTH for k in keys):
            raise ValueError(f"a secret key must be at least {MIN_KEY_LENGTH} characters")
        self.feedback_days = feedback_days
        # itsdangerous signs with the last key and verifies with all of them.
        self._serializers = {
            kind: URLSafeSerializer(
                list(reversed(keys)),
                salt=f"paper-digest.{kind}",
                signer_kwargs={"digest_method": hashlib.sha256},
            )
            for kind in KINDS
        }

    @classmethod
    def from_secret(cls, secret: str, *, feedback_days: int = FEEDBACK_DAYS) -> Tokens:
        """From `DIGEST_SECRET_KEY`: one key, or the current one then older ones."""
        return cls(secret.split(), feedback_days=feedback_days)

    # -- making ---------------------------------------------------------------------------

    def unsubscribe(self, email: str) -> str:
        return self._dump("unsubscribe", [email])

    def feed(self, email: str) -> str:
        return self._dump("feed", [email])

    def feedback(self, email: str, paper_key: str, issue_date: date, verdict: Verdict) -> str:
        if verdict not in VERDICTS:
            raise ValueError(f"verdict {verdict!r} is not one of {VERDICTS}")
        return self._dump("feedback", [email, verdict, paper_key, issue_date.isoformat()])

    def _dump(self, kind: Kind, payload: list[str]) -> str:
        token = self._serializers[kind].dumps(payload)
        assert isinstance(token, str)
        return token

    # -- reading --------------------------------------------------------------------------

    def read(self, text: str, kind: Kind, *, today: date) -> Token:
        """The token `text` of this kind, verified; TokenError if forged, altered, of
        another kind or (feedback) expired."""
        try:
            payload: Any = self._serializers[kind].loads(text)
        except BadData:
            raise TokenError("this link is not valid: it was changed or cut short") from None
        if not _strings(payload) or not payload or "@" not in payload[0]:
            raise TokenError("this link is not valid")
        email = payload[0]
        if kind != "feedback":
            if len(payload) != 1:
                raise TokenError("this link is not valid")
            return Token(kind, email)
        if len(payload) != 4 or payload[1] not in VERDICTS:
            raise TokenError("this link is not valid")
        try:
            issued = date.fromisoformat(payload[3])
        except ValueError:
            raise TokenError("this link is not valid") from None
        if today > issued + timedelta(days=self.feedback_days):
            raise ExpiredTokenError(
                f"this link has expired: feedback links work for {self.feedback_days} days "
                "after the digest that holds them"
            )
        verdict: Verdict = "more" if payload[1] == "more" else "less"
        return Token(kind, email, verdict, payload[2], issued)

    def find(self, text: str, kind: Kind, *, today: date) -> Token | None:
        """The first valid token of this kind inside `text` (a subject, a body), or None."""
        for match in TOKEN_PATTERN.finditer(text):
            try:
                return self.read(match.group(0), kind, today=today)
            except TokenError:
                continue
        return None


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)
