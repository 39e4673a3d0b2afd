"""`digest subscribers ...` and `digest unsubscribe-mail`: the config file edited in place,
comments kept; problems named by line; the suppression list wins until `enable`."""

from __future__ import annotations

import email.message
import io
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cli_runner import run_digest

from digest.store import Store
from digest.tokens import Tokens

ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / "examples" / "pages"
KEY = "test-secret-key-0123456789abcdef"
NOW = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)

CONFIG = f"""# Our digest. Sources first.
[[sources]]
kind = "text-dump"   # saved pages
path = "{PAGES}"

# Ada works on transfer learning.
[[subscribers]]
email = "ada@example.org"   # work address
name = "Ada"
topics = [
  "transfer learning",  # her main topic
  "domain adaptation",
]

# Bob: speech.
[[subscribers]]
email = "bob@example.org"
topics = ["speech recognition"]
# max_papers = 3   (not yet)

# Trailing notes stay at the end.
"""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    return run_digest(capsys, *args)


@pytest.fixture
def config(clean_env: Path) -> Path:
    path = clean_env / "digest.toml"
    path.write_text(CONFIG)
    return path


def test_validate_names_each_problem_by_line(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        run(capsys, "subscribers", "validate")[1].strip().endswith("2 subscribers, 1 source: valid")
    )
    broken = CONFIG.replace('name = "Ada"', 'name = "Ada"\ntopic = ["typo"]')
    broken += '\n[[subscribers]]\nemail = "Bob@example.org"\n'
    config.write_text(broken)
    code, _, err = run(capsys, "subscribers", "validate")
    assert code == 2
    lines = broken.splitlines()
    typo = lines.index('topic = ["typo"]') + 1
    duplicate = lines.index('email = "Bob@example.org"') + 1
    first_bob = lines.index('email = "bob@example.org"') + 1
    assert f"digest.toml:{typo}: subscribers[1] (ada@example.org): unknown key 'topic'" in err
    assert (
        f"digest.toml:{duplicate}: subscribers[3] (Bob@example.org): duplicate subscriber "
        f"Bob@example.org (also subscribers[2], line {first_bob})"
    ) in err
    config.write_text(CONFIG.replace('topics = ["speech', 'topics = ["speech"\nx = ['))
    code, _, err = run(capsys, "subscribers", "validate")
    assert code == 2 and "not valid TOML" in err


def test_add_appends_a_table_and_keeps_every_comment(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys,
        "subscribers",
        "add",
        "Carol@Example.org",
        "--name",
        'Carol "CJ" Jones',
        "--topic",
        "graph neural networks",
        "--topic",
        "message passing",
        "--max-papers",
        "4",
    )
    assert code == 0, err
    text = config.read_text()
    # Everything that was there is there, in order; the new table follows Bob's.
    assert text.startswith(CONFIG.split("\n# Trailing notes")[0])
    assert text.endswith(
        "\n[[subscribers]]\n"
        'email = "Carol@example.org"\n'
        'name = "Carol \\"CJ\\" Jones"\n'
        'topics = ["graph neural networks", "message passing"]\n'
        "max_papers = 4\n"
        "\n# Trailing notes stay at the end.\n"
    )
    line = text.splitlines().index("email = " + '"Carol@example.org"')
    assert out.strip() == f"digest.toml:{line}: added Carol@example.org"
    assert run(capsys, "subscribers", "validate")[0] == 0

    # A second time, in another spelling: refused, naming the line of the first.
    code, _, err = run(capsys, "subscribers", "add", "carol@example.org")
    assert code == 2 and f"digest.toml:{line}: carol@example.org is already a subscriber" in err
    code, _, err = run(
        capsys, "subscribers", "add", "dan@example.org", "--category", "not a category"
    )
    assert code == 2 and "'not a category' is not an arXiv category" in err
    code, _, err = run(capsys, "subscribers", "add", "not an address")
    assert code == 2 and "is not an email address" in err


def test_remove_takes_the_table_and_the_comment_about_it_only(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "subscribers", "remove", "ADA@example.org")
    assert code == 0, err
    assert config.read_text() == CONFIG.replace(
        "# Ada works on transfer learning.\n"
        "[[subscribers]]\n"
        'email = "ada@example.org"   # work address\n'
        'name = "Ada"\n'
        "topics = [\n"
        '  "transfer learning",  # her main topic\n'
        '  "domain adaptation",\n'
        "]\n\n",
        "",
    )
    assert "removed ada@example.org" in out
    # Bob's trailing commented-out option goes with him; the file's last notes stay.
    assert run(capsys, "subscribers", "remove", "bob@example.org")[0] == 0
    assert config.read_text() == (
        CONFIG.split("# Ada works")[0] + "# Trailing notes stay at the end.\n"
    )
    code, _, err = run(capsys, "subscribers", "remove", "bob@example.org")
    assert code == 2 and "no subscriber 'bob@example.org'" in err


def test_the_bundled_example_is_never_edited(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "subscribers", "add", "x@example.org")
    assert code == 2 and "bundled example" in err


def test_an_unsubscribed_address_is_not_mailed_until_enabled(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_RANKER", "lexical")
    store = Store.open("sqlite:///digest.db")
    store.unsubscribe("ada@example.org", "one-click", NOW)
    store.close()
    code, out, _ = run(capsys, "send-now", "--force")
    assert code == 0
    assert "suppressed: unsubscribed (one-click)" in out
    sent = sorted(p.name.split("-")[0] for p in (config.parent / "outbox").glob("*.eml"))
    assert sent == ["bob@example.org"]
    assert "not mailed: unsubscribed (one-click)" in run(capsys, "subscribers", "list")[1]
    code, out, _ = run(capsys, "subscribers", "enable", "Ada@example.org")
    assert code == 0 and "ada@example.org: enabled (was unsubscribed (one-click))" in out
    code, out, _ = run(capsys, "send-now", "--force")
    assert code == 0 and "suppressed" not in out
    assert any(p.name.startswith("ada@") for p in (config.parent / "outbox").glob("*.eml"))


def _request(sender: str, subject: str, **headers: str) -> bytes:
    message = email.message.EmailMessage()
    message["From"] = sender
    message["To"] = "digest@papers.example.org"
    message["Subject"] = subject
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("Sent from my phone\n")
    return message.as_bytes()


def test_unsubscribe_mail_applies_requests_from_the_subscriber_only(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_SECRET_KEY", KEY)
    token = Tokens.from_secret(KEY).unsubscribe("ada@example.org")
    maildir = config.parent / "unsubscribe"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    requests = {
        "1-mallory": _request("mallory@example.net", f"unsubscribe {token}"),
        "2-auto": _request(
            "Ada <ada@example.org>",
            f"Automatic reply: unsubscribe {token}",
            Auto_Submitted="auto-replied",
        ),
        "3-chatty": _request("bob@example.org", "Thanks for the digest!"),
        "4-stranger": _request("eve@example.net", "unsubscribe"),
        "5-ada": _request("Ada Lovelace <ADA@example.org>", f"unsubscribe {token}"),
    }
    for name, data in requests.items():
        (maildir / "new" / name).write_bytes(data)
    code, out, err = run(capsys, "unsubscribe-mail", str(maildir))
    assert code == 0, err
    results = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert "refused: the request's link is for another address" in results["1-mallory"]
    assert "ignored: automatic (Auto-Submitted: auto-replied)" in results["2-auto"]
    assert "ignored: does not ask to unsubscribe" in results["3-chatty"]
    assert "ignored: not a subscriber" in results["4-stranger"]
    assert "unsubscribed" in results["5-ada"]
    assert not list((maildir / "new").iterdir()) and len(list((maildir / "cur").iterdir())) == 5

    # Bob writes "unsubscribe" by hand, without the link's token: his own From is enough.
    with pytest.MonkeyPatch.context() as patch:
        data = _request("bob@example.org", "Unsubscribe")
        patch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
        code, out, _ = run(capsys, "unsubscribe-mail")
    assert code == 0 and "unsubscribed" in out
    store = Store.open("sqlite:///digest.db")
    assert store.suppressed(["ada@example.org", "bob@example.org"]) == {
        "ada@example.org": "unsubscribed (by mail)",
        "bob@example.org": "unsubscribed (by mail)",
    }
    store.close()


def test_the_edits_survive_a_copy_of_the_real_example(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The bundled example's documentation block stays above the first subscriber."""
    path = clean_env / "digest.toml"
    shutil.copy(ROOT / "digest.example.toml", path)
    path.write_text(path.read_text().replace('"examples/pages"', f'"{PAGES}"'))
    original = path.read_text()
    assert run(capsys, "subscribers", "remove", "ada@example.org")[0] == 0
    text = path.read_text()
    assert "# One table per subscriber." in text and "ada@example.org" not in text
    assert text.index("#   min_score") < text.index('email = "grace@example.org"')
    assert run(capsys, "subscribers", "add", "ada@example.org", "--name", "Ada")[0] == 0
    assert run(capsys, "subscribers", "validate")[0] == 0
    assert path.read_text().count("\n#") == original.count("\n#")
