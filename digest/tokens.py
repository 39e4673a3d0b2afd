"""Signed tokens for a subscriber's own links: unsubscribe, feedback on a paper, their feed.

A token carries the subscriber's address and what it allows (for feedback: the verdict,
the paper and the issue date), signed with HMAC-SHA256 under `DIGEST_SECRET_KEY`:
`base64url(payload).base64url(tag)`, the tag the first 128 bits of the HMAC under a key
derived for that kind of token, so an unsubscribe token is no feedback token, and nothing
in it can be changed, nor moved to another address, without the key. (This is what
itsdangerous does, in a few lines: its serializer costs about 100 µs a token, and a digest
carries twenty of them.)

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

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal, get_args

Kind = Literal["unsubscribe", "feedback", "feed"]
Verdict = Literal["more", "less"]
KINDS: tuple[Kind, ...] = get_args(Kind)
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)
FEEDBACK_DAYS = 90  # feedback links work this many days after the issue date
MIN_KEY_LENGTH = 16
TAG_BYTES = 16  # 128 bits of HMAC-SHA256
_B64URL = re.compile(r"[A-Za-z0-9_\-]+")
# What a token looks like inside text (a mail subject or body).
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{22}(?![A-Za-z0-9_\-])")


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
        # One MAC per kind and key, derived once; each token copies one (cheap).
        self._macs = {
            kind: [
                hmac.new(
                    hmac.new(k.encode(), f"paper-digest/{kind}".encode(), hashlib.sha256).digest(),
                    digestmod=hashlib.sha256,
                )
                for k in keys
            ]
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

    def _dump(self, kind: Kind, fields: list[str]) -> str:
        if any("\n" in f for f in fields):
            raise ValueError("a token field cannot hold a line break")
        body = _b64("\n".join(fields).encode())
        return f"{body}.{_b64(self._tag(self._macs[kind][0], body))}"

    @staticmethod
    def _tag(mac: hmac.HMAC, body: str) -> bytes:
        signer = mac.copy()
        signer.update(body.encode())
        return signer.digest()[:TAG_BYTES]

    # -- reading --------------------------------------------------------------------------

    def read(self, text: str, kind: Kind, *, today: date) -> Token:
        """The token `text` of this kind, verified; TokenError if forged, altered, of
        another kind or (feedback) expired."""
        payload = self._verified(text, kind)
        if payload is None:
            raise TokenError("this link is not valid: it was changed or cut short")
        if not payload or "@" not in payload[0]:
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

    def _verified(self, text: str, kind: Kind) -> list[str] | None:
        body, dot, tag = text.strip().partition(".")
        if not (dot and _B64URL.fullmatch(body) and _B64URL.fullmatch(tag)):
            return None
        good = [hmac.compare_digest(_b64(self._tag(mac, body)), tag) for mac in self._macs[kind]]
        if not any(good):
            return None
        try:
            return _unb64(body).decode().split("\n")
        except (binascii.Error, ValueError):
            return None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
