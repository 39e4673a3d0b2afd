"""`digest bounces` on real-shaped delivery-status notifications (tests/fixtures/dsn/)."""

from __future__ import annotations

import io
import shutil
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from cli_runner import run_digest

from digest.inbound import parse_dsn
from digest.models import Paper
from digest.store import PlannedDigest, Store

DSN = Path(__file__).resolve().parent / "fixtures" / "dsn"
NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
PEOPLE = ("ada", "grace", "alan", "bob")
CONFIG = "".join(f'[[subscribers]]\nemail = "{p}@example.org"\n\n' for p in PEOPLE)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    return run_digest(capsys, *args)


def row(out: str, start: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(start))


@pytest.fixture
def world(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config of four subscribers and a database holding the digests the samples bounce."""
    (clean_env / "digest.toml").write_text(CONFIG)
    monkeypatch.setenv("DIGEST_BOUNCE_LIMIT", "2")
    store = Store.open("sqlite:///digest.db")
    store.ingest([Paper("One", arxiv_id="2611.00001"), Paper("Two", arxiv_id="2611.00002")], NOW)
    first, second = date(2026, 11, 30), date(2026, 12, 1)
    digests = [("ada", first, "1"), ("ada", second, "2"), ("grace", first, "1")]
    digests += [("alan", first, "1"), ("bob", first, "1")]
    for who, issue, paper in digests:
        email = f"{who}@example.org"
        cands = store.candidates([email], NOW, 7)
        ids = (cands.ids[f"arxiv:2611.0000{paper}"],)
        digest = PlannedDigest(email, issue, ids, {}, 0, cands.versions.get(email, -1))
        assert store.plan([digest], now=NOW, domain="papers.example.org").planned == [email]
    store.close()
    return clean_env


def test_each_sample_is_read_as_its_server_wrote_it() -> None:
    expected = {
        "postfix-user-unknown.eml": ("ada@example.org", "failed", "5.1.1", True),
        "postfix-forwarded.eml": ("a.lovelace@mailbox.example.net", "failed", "5.1.1", True),
        "postfix-delayed.eml": ("ada@example.org", "delayed", "4.4.1", False),
        "gmail-no-such-user.eml": ("grace@example.org", "failed", "5.1.1", True),
        "exchange-recipient-not-found.eml": ("alan@example.org", "failed", "5.1.10", True),
        "exim-mailbox-full.eml": ("bob@example.org", "failed", "5.2.2", False),
    }
    for name, (final, action, status, hard) in expected.items():
        report = parse_dsn((DSN / name).read_bytes())
        assert report is not None, name
        (recipient,) = report.recipients
        assert (recipient.final, recipient.action, recipient.status, recipient.hard) == (
            final,
            action,
            status,
            hard,
        ), name
        assert report.original_message_id and report.original_message_id.startswith("<digest.")
        assert len(report.report_id) == 64
    gmail = parse_dsn((DSN / "gmail-no-such-user.eml").read_bytes())
    assert gmail is not None and "does not exist" in gmail.recipients[0].diagnostic
    assert parse_dsn((DSN / "out-of-office.eml").read_bytes()) is None


def test_a_maildir_of_bounces_suppresses_after_the_limit_once_per_report(
    world: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    maildir = world / "bounces"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for sample in sorted(DSN.glob("*.eml")):
        shutil.copy(sample, maildir / "new" / sample.stem)
    code, out, err = run(capsys, "bounces", str(maildir))
    assert code == 0, err
    # ada: one hard bounce, then the forwarded one (matched by the bounced Message-ID)
    # reaches the limit of 2; the delayed warning is soft and never counted.
    assert "counted: 1 of 2" in row(out, "alan@example.org")
    assert "counted: 1 of 2" in row(out, "grace@example.org")
    assert "soft bounces are not counted" in row(out, "bob@example.org")
    assert "suppressed after 2 hard bounces" in out
    assert "out-of-office" in out and "not a delivery-status notification" in out
    # Every message was handled: moved to cur/ and marked seen.
    assert not list((maildir / "new").iterdir())
    assert all(p.name.endswith(":2,S") for p in (maildir / "cur").iterdir())

    store = Store.open("sqlite:///digest.db")
    suppressed = store.suppressed([f"{p}@example.org" for p in PEOPLE])
    store.close()
    assert list(suppressed) == ["ada@example.org"]
    assert suppressed["ada@example.org"].startswith("bounced: 2 hard bounces, last 5.1.1")

    # The same notifications again (say, the Maildir was restored): nothing counts twice.
    code, out, _ = run(capsys, "bounces", str(DSN / "gmail-no-such-user.eml"))
    assert code == 0 and "read before: not counted again" in row(out, "grace@example.org")

    # A new hard bounce for grace, from stdin, reaches her limit too.
    second = (DSN / "gmail-no-such-user.eml").read_bytes().replace(b".GMR@", b".GMS@")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(second)))
        code, out, _ = run(capsys, "bounces")
    assert code == 0 and "suppressed after 2 hard bounces" in row(out, "grace@example.org")

    # Enabled again: bounces before that no longer count.
    code, out, _ = run(capsys, "subscribers", "enable", "ada@example.org")
    assert code == 0 and "enabled (was bounced: 2 hard bounces" in out
    code, out, _ = run(capsys, "bounces", str(DSN / "postfix-user-unknown.eml"))
    assert "read before" in row(out, "ada@example.org")
    store = Store.open("sqlite:///digest.db")
    assert "ada@example.org" not in store.suppressed(["ada@example.org"])
    store.close()


def test_a_bounce_for_someone_else_changes_nothing(
    world: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stranger = (DSN / "postfix-user-unknown.eml").read_bytes()
    stranger = stranger.replace(b"ada@example.org", b"eve@example.org")
    stranger = stranger.replace(b"cfe00dde46ef9426", b"0000000000000000")
    (world / "eve.eml").write_bytes(stranger)
    code, out, _ = run(capsys, "bounces", str(world / "eve.eml"))
    assert code == 0 and "ignored: not a subscriber" in row(out, "eve@example.org")


def test_a_missing_source_is_named(world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "bounces", "no-such-folder")
    assert code == 2 and "no-such-folder: no such file or Maildir" in err
