"""The signed tokens behind every link: deterministic, unforgeable, bound to one use."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.tokens import ExpiredTokenError, Token, TokenError, Tokens

KEY = "test-secret-key-0123456789abcdef"
TOKENS = Tokens.from_secret(KEY)
DAY = date(2026, 11, 30)
emails = st.from_regex(r"[a-z0-9._+\-]{1,20}@[a-z0-9\-]{1,12}\.[a-z]{2,6}", fullmatch=True)
paper_keys = st.one_of(
    st.from_regex(r"arxiv:\d{4}\.\d{5}", fullmatch=True),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz ", min_size=1, max_size=80).map(
        lambda t: "title:" + t
    ),
)


@given(emails, paper_keys, st.sampled_from(["more", "less"]))
def test_every_token_reads_back_as_what_it_was_made_for(email: str, key: str, verdict: str) -> None:
    token = TOKENS.feedback(email, key, DAY, verdict)  # type: ignore[arg-type]
    assert token == TOKENS.feedback(email, key, DAY, verdict)  # type: ignore[arg-type]
    assert TOKENS.read(token, "feedback", today=DAY) == Token(
        "feedback",
        email,
        verdict,  # type: ignore[arg-type]
        key,
        DAY,
    )
    assert TOKENS.read(TOKENS.unsubscribe(email), "unsubscribe", today=DAY).email == email
    assert TOKENS.read(TOKENS.feed(email), "feed", today=DAY).email == email
    assert all(c.isalnum() or c in "-_." for c in token)  # safe in a URL path as it is


@given(emails, st.data())
def test_any_changed_character_is_refused(email: str, data: st.DataObject) -> None:
    token = TOKENS.unsubscribe(email)
    at = data.draw(st.integers(0, len(token) - 1))
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."
    new = data.draw(st.sampled_from(alphabet).filter(lambda c: c != token[at]))
    with pytest.raises(TokenError):
        TOKENS.read(token[:at] + new + token[at + 1 :], "unsubscribe", today=DAY)


def test_a_token_serves_one_kind_of_link_for_one_address() -> None:
    ada, bob = TOKENS.unsubscribe("ada@example.org"), TOKENS.unsubscribe("bob@example.org")
    with pytest.raises(TokenError):
        TOKENS.read(ada, "feed", today=DAY)
    with pytest.raises(TokenError):
        TOKENS.read(TOKENS.feed("ada@example.org"), "unsubscribe", today=DAY)
    with pytest.raises(TokenError):  # bob's payload under ada's signature
        TOKENS.read(bob.split(".")[0] + "." + ada.split(".")[1], "unsubscribe", today=DAY)
    with pytest.raises(TokenError):
        Tokens.from_secret("another-key-0123456789abcdef").read(ada, "unsubscribe", today=DAY)


def test_feedback_expires_unsubscribe_never() -> None:
    token = TOKENS.feedback("ada@example.org", "arxiv:2611.00001", DAY, "more")
    assert TOKENS.read(token, "feedback", today=DAY + timedelta(days=90)).verdict == "more"
    with pytest.raises(ExpiredTokenError):
        TOKENS.read(token, "feedback", today=DAY + timedelta(days=91))
    unsubscribe = TOKENS.unsubscribe("ada@example.org")
    assert TOKENS.read(unsubscribe, "unsubscribe", today=DAY + timedelta(days=3650))


def test_keys_rotate_without_breaking_old_links() -> None:
    old = TOKENS.unsubscribe("ada@example.org")
    rotated = Tokens.from_secret(f"new-secret-key-0123456789abcdef {KEY}")
    assert rotated.read(old, "unsubscribe", today=DAY).email == "ada@example.org"
    assert rotated.unsubscribe("ada@example.org") != old  # the new key signs
    with pytest.raises(ValueError, match="at least 16"):
        Tokens.from_secret("short")


def test_a_token_is_found_inside_a_mail_subject() -> None:
    token = TOKENS.unsubscribe("ada@example.org")
    found = TOKENS.find(f"Re: unsubscribe {token}", "unsubscribe", today=DAY)
    assert found is not None and found.email == "ada@example.org"
    assert TOKENS.find("unsubscribe me please", "unsubscribe", today=DAY) is None
