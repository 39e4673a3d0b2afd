"""A "more like this" click in one digest changes the next one: two subscribers with the
same profile get the same first digest; one of them clicks; their next digests differ."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from test_web import serve_app

from digest.cli import main
from digest.store import Store
from digest.tokens import Tokens
from digest.web import create_app

ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / "examples" / "pages"
KEY = "feedback-test-secret-0123456789abcdef"
TWINS = ("ada@example.org", "twin@example.org")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    try:
        main(list(args))
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr()
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return out


@pytest.fixture
def site(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    store = Store.open(f"sqlite:///{clean_env / 'digest.db'}")
    app = create_app(store, Tokens.from_secret(KEY))
    with serve_app(app) as base:
        monkeypatch.setenv("DIGEST_SECRET_KEY", KEY)
        monkeypatch.setenv("DIGEST_PUBLIC_URL", base)
        monkeypatch.setenv("DIGEST_RANKER", "lexical")
        yield base
    store.close()


def latest(outbox: Path, email: str) -> EmailMessage:
    path = sorted(outbox.glob(f"{email}-*.eml"), key=lambda p: p.stat().st_mtime_ns)[-1]
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def titles(message: EmailMessage) -> list[str]:
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    return re.findall(r"^ ?\d+\. ([^\r\n]+)", text, re.M)


def test_a_more_like_this_click_changes_the_next_digest(
    site: str, clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pages = clean_env / "pages"
    pages.mkdir()
    shutil.copy(PAGES / "001_4dfcb878200cfaa6.txt", pages)
    (clean_env / "digest.toml").write_text(
        f'[[sources]]\nkind = "text-dump"\npath = "{pages}"\n\n'
        + "".join(
            f'[[subscribers]]\nemail = "{who}"\ntopics = ["language models"]\nmax_papers = 6\n\n'
            for who in TWINS
        )
    )
    run(capsys, "send-now", "--force")
    outbox = clean_env / "outbox"
    first = {who: latest(outbox, who) for who in TWINS}
    assert titles(first[TWINS[0]]) == titles(first[TWINS[1]])

    # Ada asks for more like the last paper of her digest, from the email itself.
    html = first[TWINS[0]].get_body(("html",)).get_content()  # type: ignore[union-attr]
    more = re.findall(rf'href="({re.escape(site)}/f/[^"]+)"[^>]*>More like this', html)
    liked = titles(first[TWINS[0]])[-1]
    assert len(more) == len(titles(first[TWINS[0]]))
    answer = httpx.get(more[-1])
    assert answer.status_code == 200 and liked[:30] in answer.text

    for name in ("000_0d1b150f40e33697.txt", "003_a148c10466c9a820.txt"):
        shutil.copy(PAGES / name, pages)
    run(capsys, "send-now", "--force")
    ada, twin = (latest(outbox, who) for who in TWINS)
    assert titles(ada) != titles(twin)
    # ... and her digest says why: the paper she rated up.
    assert liked[:20] in ada.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert liked[:20] not in twin.get_body(("plain",)).get_content()  # type: ignore[union-attr]
