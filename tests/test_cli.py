"""End to end through the `digest` command, as a user runs it: real files, SQLite, SMTP."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from cli_runner import run_digest
from smtp_server import RecordingHandler, RefusingHandler, send_through

from digest.models import Subscriber
from digest.rank import make_ranker
from digest.sources import parse_saved_page
from digest.store import Store

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_PAGES = ROOT / "examples" / "pages"

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture(scope="session")
def warm_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database holding only the embeddings of the example papers, made once.

    Embedding 455 papers takes the default ranker several seconds; tests about the
    pipeline start from this copy so they pay it once. The papers themselves are not in
    it: every run still reads, stores and ranks them for real.
    """
    path = tmp_path_factory.mktemp("warm") / "digest.db"
    store = Store.open(f"sqlite:///{path}")
    papers = [p for f in sorted(EXAMPLE_PAGES.glob("*.txt")) for p in parse_saved_page(f)]
    make_ranker("auto", cache=store).rank(papers, [Subscriber("warm@example.org", topics=("x",))])
    store.close()
    return path


@pytest.fixture
def run(
    clean_env: Path,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
    warm_database: Path,
) -> Run:
    """Run `digest ARGS...` in a clean temp folder; return (exit code, stdout, stderr).

    The folder starts with the warm embeddings database unless the test is marked `cold`.
    """
    if request.node.get_closest_marker("cold") is None:
        shutil.copy(warm_database, clean_env / "digest.db")

    def invoke(*args: str) -> tuple[int, str, str]:
        return run_digest(capsys, *args)

    return invoke


def write_config(folder: Path, pages: Path, subscribers: str) -> Path:
    config = folder / "digest.toml"
    config.write_text(f'[[sources]]\nkind = "text-dump"\npath = "{pages}"\n\n{subscribers}')
    return config


TWO_SUBSCRIBERS = """
[[subscribers]]
email = "ada@example.org"
name = "Ada"
topics = ["reinforcement learning"]
max_papers = 3

[[subscribers]]
email = "bob@example.org"
topics = ["speech recognition", "audio"]
max_papers = 2
"""


def pages_folder(folder: Path, *names: str) -> Path:
    """A folder of pages holding copies of the named example pages."""
    pages = folder / "pages"
    pages.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(EXAMPLE_PAGES / name, pages)
    return pages


def eml_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.eml")) if folder.exists() else []


@pytest.mark.cold
def test_first_run_on_the_bundled_example_then_nothing_new(run: Run, clean_env: Path) -> None:
    code, out, err = run("send-now")
    assert code == 0, err
    assert "bundled example config" in err
    files = eml_files(clean_env / "outbox")
    assert len(files) == 3  # one per example subscriber
    for path in files:
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert msg.get_content_type() == "multipart/alternative"
        assert msg["Subject"].split()[0].isdigit()
        assert str(msg["To"]).split("<")[-1].rstrip(">") in out
    assert "sent to outbox" in out

    # Again the same day: each digest of this period has gone out already.
    code, out, _ = run("send-now")
    assert code == 0 and out.count("not due (next ") == 3
    # Forced: the schedule is ignored, the ledger is not: nothing is sent twice.
    code, out, _ = run("send-now", "--force")
    assert code == 0
    assert out.count("nothing new") == 3
    assert len(eml_files(clean_env / "outbox")) == 3


def test_papers_match_the_subscriber_topics(run: Run, clean_env: Path) -> None:
    config = write_config(clean_env, EXAMPLE_PAGES, TWO_SUBSCRIBERS)
    code, _, err = run("send-now", "--config", str(config))
    assert code == 0, err
    by_person = {}
    for path in eml_files(clean_env / "outbox"):
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        by_person[msg["To"].addresses[0].addr_spec] = msg
    ada = by_person["ada@example.org"].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert ada.lower().count("reinforcement") >= 3
    assert by_person["bob@example.org"]["Subject"].startswith("2 new papers")


def test_a_paper_is_never_sent_twice_when_new_pages_arrive(run: Run, clean_env: Path) -> None:
    pages = pages_folder(clean_env, "001_4dfcb878200cfaa6.txt")
    config = write_config(clean_env, pages, TWO_SUBSCRIBERS)
    assert run("send-now", "--config", str(config))[0] == 0
    first = {p.name for p in eml_files(clean_env / "outbox")}
    # Two more pages, whose papers overlap the first page's.
    pages_folder(clean_env, "000_0d1b150f40e33697.txt", "003_a148c10466c9a820.txt")
    assert run("send-now", "--force", "--config", str(config))[0] == 0
    titles: dict[str, list[str]] = {}
    for path in eml_files(clean_env / "outbox"):
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        lines = [ln for ln in text.splitlines() if ln[:3].rstrip(".").isdigit()]
        titles.setdefault(msg["To"].addresses[0].addr_spec, []).extend(
            ln.split(". ", 1)[1] for ln in lines
        )
    assert len(eml_files(clean_env / "outbox")) > len(first)
    for sent in titles.values():
        assert len(sent) == len(set(sent)), "a paper was sent twice"


def test_delivers_over_smtp_when_configured(
    run: Run,
    clean_env: Path,
    smtp_server: tuple[Controller, RecordingHandler],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    controller, handler = smtp_server
    send_through(monkeypatch, controller)
    monkeypatch.setenv("DIGEST_FROM", "Papers <papers@example.org>")
    code, out, err = run("send-now")
    assert code == 0, err
    assert sorted(e.rcpt_tos[0] for e in handler.envelopes) == [
        "ada@example.org",
        "alan@example.org",
        "grace@example.org",
    ]
    assert all(m["From"] == "Papers <papers@example.org>" for m in handler.messages)
    assert not (clean_env / "outbox").exists()
    assert "smtp://127.0.0.1" in out


def test_failed_send_is_retried_next_run_not_lost(
    run: Run,
    clean_env: Path,
    smtp_server_factory: Callable[[RecordingHandler], Controller],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = write_config(clean_env, EXAMPLE_PAGES, TWO_SUBSCRIBERS)
    refusing = smtp_server_factory(RefusingHandler("451 4.3.0 Mailbox busy"))
    send_through(monkeypatch, refusing)
    monkeypatch.setenv("DIGEST_RETRY_DELAY", "0")  # retries are due at once
    monkeypatch.setenv("DIGEST_MAX_ATTEMPTS", "2")
    code, out, _ = run("send-now", "--config", str(config))
    assert code == 1
    assert out.count("FAILED: gave up after 2 attempts") == 2 and "SMTP 451" in out

    handler = RecordingHandler()
    working = smtp_server_factory(handler)
    monkeypatch.setenv("DIGEST_SMTP_PORT", str(working.port))
    # The failed digests released their papers into the next one (forced here: today's
    # slot was handled, and the next is tomorrow).
    code, out, _ = run("send-now", "--force", "--config", str(config))
    assert code == 0
    assert len(handler.messages) == 2
    assert handler.messages[0]["Subject"].split()[0] in {"2", "3"}


def test_broken_page_beside_good_ones(run: Run, clean_env: Path) -> None:
    pages = pages_folder(clean_env, "002_f9597088ed713dd6.txt")
    (pages / "broken.txt").write_text("this is not a digest page\n")
    config = write_config(clean_env, pages, TWO_SUBSCRIBERS)
    _code, out, err = run("fetch", "--config", str(config))
    assert "broken.txt" in err
    assert "35 new papers" in out


def test_dry_run_sends_and_records_nothing(run: Run, clean_env: Path) -> None:
    code, out, _ = run("send-now", "--dry-run")
    assert code == 0 and out.count("dry run") == 3
    assert eml_files(clean_env / "outbox") == []
    code, out, _ = run("send-now", "--subscriber", "grace@example.org")
    assert code == 0 and len(eml_files(clean_env / "outbox")) == 1


@pytest.mark.parametrize(
    ("subscribers", "expected"),
    [
        ('[[subscribers]]\nemail = "not-an-email"\n', "subscribers[1] (not-an-email): email"),
        ('[[subscribers]]\nemail = "a@example.org"\ntopic = ["x"]\n', "unknown key 'topic'"),
        ('[[subscribers]]\nemail = "a@example.org"\nmax_papers = "ten"\n', "max_papers"),
        (
            '[[subscribers]]\nemail = "a@example.org"\n[[subscribers]]\nemail = "A@example.org"\n',
            "duplicate subscriber",
        ),
    ],
)
@pytest.mark.cold
def test_config_errors_are_one_line_and_send_nothing(
    run: Run, clean_env: Path, subscribers: str, expected: str
) -> None:
    config = write_config(clean_env, EXAMPLE_PAGES, subscribers)
    code, _out, err = run("send-now", "--config", str(config))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert str(config) in lines[0] and expected in lines[0]
    assert not (clean_env / "outbox").exists() and not (clean_env / "digest.db").exists()


def test_bad_environment_variable_is_named(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_SMTP_SECURITY", "tls-please")
    code, _, err = run("send-now")
    assert code == 2 and "DIGEST_SMTP_SECURITY" in err


def test_preview_writes_html_and_sends_nothing(run: Run, clean_env: Path) -> None:
    code, out, err = run("preview", "alan@example.org")
    assert code == 0, err
    path = Path(out.strip())
    assert path.read_text().startswith("<!DOCTYPE html>")
    assert eml_files(clean_env / "outbox") == []


def test_fetch_json_reports_each_source_for_scripts(run: Run, clean_env: Path) -> None:
    pages = pages_folder(clean_env, "004_056f41bc6489462d.txt")
    (pages / "empty.txt").write_text("")
    config = write_config(clean_env, pages, TWO_SUBSCRIBERS)
    code, out, _ = run("fetch", "--config", str(config), "--format", "json")
    assert code == 0
    (source,) = json.loads(out)["sources"]
    assert set(source) == {"name", "fetched", "new", "updated", "failed", "errors"}
    assert (source["fetched"], source["new"], source["failed"]) == (67, 67, 1)
    assert "empty.txt" in source["errors"][0]
    code, out, _ = run("fetch", "--config", str(config), "--format", "json")
    assert json.loads(out)["sources"][0]["new"] == 0


def test_status_names_the_active_ranker_and_progress(run: Run) -> None:
    run("send-now", "--subscriber", "ada@example.org")
    code, out, _ = run("status")
    assert code == 0
    assert "ranker:" in out and ("semantic" in out or "lexical" in out)
    rows = {line.split()[0]: line for line in out.splitlines() if "@example.org" in line}
    assert "never" in rows["grace@example.org"]
    assert rows["ada@example.org"].split()[-1] != "0"


@pytest.mark.parametrize(
    "page",
    [
        EXAMPLE_PAGES / "002_f9597088ed713dd6.txt",
        ROOT / "tests" / "fixtures" / "hf-papers-html" / "papers_2024-08-01.html",
    ],
)
def test_rank_reads_any_saved_page_format(run: Run, page: Path) -> None:
    code, out, err = run("rank", "--papers", str(page), "--all")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["subscriber"] for line in lines] == [
        "ada@example.org",
        "grace@example.org",
        "alan@example.org",
    ]
    scores = [p["score"] for p in lines[0]["papers"]]
    assert scores == sorted(scores, reverse=True) and len(scores) > 10


@pytest.mark.cold
def test_exactly_once_on_either_database(
    run: Run, clean_env: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_DATABASE_URL", database_url)
    monkeypatch.setenv("DIGEST_RANKER", "lexical")
    pages = pages_folder(clean_env, "002_f9597088ed713dd6.txt")
    config = write_config(clean_env, pages, TWO_SUBSCRIBERS.replace("max_papers = 3", ""))
    code, out, err = run("send-now", "--config", str(config))
    assert code == 0, err
    first = len(eml_files(clean_env / "outbox"))
    assert first >= 1
    code, out, _ = run("send-now", "--force", "--config", str(config))
    assert code == 0 and out.count("nothing new") == 2
    assert len(eml_files(clean_env / "outbox")) == first


# -- every bad input: one line naming it, the promised exit code, nothing sent ------------

ONE_SUBSCRIBER = '[[subscribers]]\nemail = "ada@example.org"\ntopics = ["speech"]\n'


def _text_database(folder: Path) -> str:
    (folder / "digest.db").write_text("these are my notes, not a database\n" * 50)
    return "digest.db"


def _random_database(folder: Path) -> str:
    (folder / "digest.db").write_bytes(bytes((i * 7919 + 13) % 256 for i in range(8192)))
    return "digest.db"


def _truncated_database(folder: Path) -> str:
    Store.open(f"sqlite:///{folder / 'full.db'}").close()
    whole = (folder / "full.db").read_bytes()
    (folder / "digest.db").write_bytes(whole[: len(whole) // 3])
    return "digest.db"


@pytest.mark.parametrize("make_database", [_text_database, _random_database, _truncated_database])
@pytest.mark.cold
def test_a_file_that_is_not_a_database_is_named_and_left_untouched(
    run: Run, clean_env: Path, make_database: Callable[[Path], str]
) -> None:
    name = make_database(clean_env)
    before = (clean_env / name).read_bytes()
    config = write_config(clean_env, pages_folder(clean_env), ONE_SUBSCRIBER)
    code, _out, err = run("send-now", "--config", str(config))
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1, err
    assert lines[0].startswith("error: ") and name in lines[0] and "untouched" in lines[0]
    assert (clean_env / name).read_bytes() == before
    assert eml_files(clean_env / "outbox") == []


@pytest.mark.parametrize(
    ("config_text", "expected"),
    [
        ("", "no [[subscribers]]"),
        ('[[sources]]\nkind = "text-dump"\npath = "."\n', "no [[subscribers]]"),
        ("[[subscribers]]\nemail = 3\n", "email"),
        ("subscribers = 1\n", "subscribers"),
        ("[[subscribers]\n", "not valid TOML"),
    ],
)
@pytest.mark.cold
def test_a_config_that_cannot_send_anything_is_an_error(
    run: Run, clean_env: Path, config_text: str, expected: str
) -> None:
    config = clean_env / "digest.toml"
    config.write_text(config_text)
    code, _out, err = run("send-now")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("error: ") and "digest.toml" in lines[0] and expected in lines[0]
    assert eml_files(clean_env / "outbox") == []


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("papers.jsonl", bytes(range(256)) * 4),
        ("papers.bin", bytes(range(256)) * 4),
        ("papers.json", b"\x89PNG\r\n\x1a\n" + bytes(200)),
        ("papers.jsonl", b'{"id": "1", "title": "fine"}\n{"title": \n'),
        ("papers.jsonl", b'{"title": "fine", "categories": 5}\n'),
        ("papers.jsonl", b'{"title": "fine", "authors": [{"name": "Ada"}]}\n'),
        ("papers.jsonl", b'{"title": "fine", "upvotes": "many"}\n'),
    ],
)
def test_rank_on_an_unusable_file_names_it(
    run: Run, clean_env: Path, name: str, content: bytes
) -> None:
    papers = clean_env / name
    papers.write_bytes(content)
    (clean_env / "digest.toml").write_text(ONE_SUBSCRIBER)
    code, out, err = run("rank", "--papers", str(papers))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("error: ") and name in lines[0]
    assert out == ""


def test_each_warning_is_printed_once(run: Run, clean_env: Path) -> None:
    pages = pages_folder(clean_env, "004_056f41bc6489462d.txt")
    (pages / "notes.txt").write_text("not a papers page\n")
    config = write_config(clean_env, pages, ONE_SUBSCRIBER)
    code, _out, err = run("send-now", "--config", str(config))
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "notes.txt" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: "), err


def test_verbose_logs_progress(run: Run, clean_env: Path) -> None:
    pages = pages_folder(clean_env, "004_056f41bc6489462d.txt")
    config = write_config(clean_env, pages, ONE_SUBSCRIBER)
    code, _out, err = run("-v", "send-now", "--config", str(config))
    assert code == 0, err
    assert "event=page_read" in err and "004_056f41bc6489462d.txt" in err
    assert "event=planned subscriber=ada@example.org" in err
    assert "event=message_sent subscriber=ada@example.org" in err


@pytest.mark.cold
def test_fetch_embeds_papers_so_a_kill_keeps_the_work(run: Run, clean_env: Path) -> None:
    pages = pages_folder(clean_env, "004_056f41bc6489462d.txt")
    config = write_config(clean_env, pages, ONE_SUBSCRIBER)
    code, _out, err = run("fetch", "--config", str(config))
    assert code == 0, err
    store = Store.open(f"sqlite:///{clean_env / 'digest.db'}")
    try:
        papers = store.papers_seen_since(datetime(2000, 1, 1, tzinfo=UTC))
        ranker = make_ranker("auto", cache=store)
        assert papers and ranker.index(papers) == 0  # nothing left to embed
    finally:
        store.close()


def test_json_logs_are_one_object_per_line(run: Run, clean_env: Path) -> None:
    pages = pages_folder(clean_env, "004_056f41bc6489462d.txt")
    config = write_config(clean_env, pages, ONE_SUBSCRIBER)
    code, _out, err = run("-v", "--log-format", "json", "send-now", "--config", str(config))
    assert code == 0, err
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    planned = [e for e in events if e.get("event") == "planned"]
    assert planned and planned[0]["subscriber"] == "ada@example.org"
    assert all({"time", "level", "logger"} <= set(e) for e in events)


def test_why_explains_a_subscribers_day(run: Run, clean_env: Path) -> None:
    pages = pages_folder(clean_env, "004_056f41bc6489462d.txt")
    config = write_config(clean_env, pages, TWO_SUBSCRIBERS)
    assert run("send-now", "--config", str(config))[0] == 0
    code, out, err = run("why", "ada@example.org", "--config", str(config))
    assert code == 0, err
    assert "schedule:  every day at 07:00 UTC" in out
    assert " planned (" in out and "picked)" in out
    assert "sent " in out and "topic: reinforcement learning" in out
    code, out, _ = run("why", "ada@example.org", "--config", str(config), "--date", "2020-01-01")
    assert code == 0 and "nothing was planned or skipped for that day yet" in out


def test_why_lists_every_paper_considered_and_why_it_was_not_sent(
    run: Run, clean_env: Path
) -> None:
    pages = pages_folder(clean_env, "004_056f41bc6489462d.txt")
    config = write_config(clean_env, pages, TWO_SUBSCRIBERS)
    assert run("send-now", "--config", str(config))[0] == 0
    code, out, err = run("why", "ada@example.org", "--config", str(config), "--all")
    assert code == 0, err
    found = re.search(r"planned \((\d+) new papers considered, 3 picked\)", out)
    assert found, out
    considered = int(found.group(1))
    sent, listing = out.split("considered at ")
    header, *rows = listing.splitlines()
    assert f": {considered} papers, ranked again now" in header
    assert len(rows) == considered
    # Best first: the three papers of the digest, then the rest with the reason each
    # was left out.
    in_digest = [row for row in rows if " in the digest: " in row]
    assert rows[:3] == in_digest
    titles = [line.split(". ", 1)[1].split("  [")[0] for line in sent.splitlines()[-3:]]
    assert all(any(t[:50] in row for row in in_digest) for t in titles), (titles, in_digest)
    assert any(" beyond max_papers 3: " in row for row in rows)
    assert any(" below min_score " in row for row in rows)
    scores = [float(row.split()[1]) for row in rows]
    assert scores == sorted(scores, reverse=True)
    code, out, _ = run("why", "ada@example.org", "--config", str(config))
    assert code == 0 and f"({considered - 20} more: digest why --all)" in out


def test_why_names_the_papers_an_exclusion_left_out(run: Run, clean_env: Path) -> None:
    pages = pages_folder(clean_env, "004_056f41bc6489462d.txt")
    subscriber = (
        '[[subscribers]]\nemail = "ada@example.org"\ntopics = ["reinforcement learning"]\n'
        'exclude = ["policy"]\n'
    )
    config = write_config(clean_env, pages, subscriber)
    assert run("send-now", "--config", str(config))[0] == 0
    code, out, err = run("why", "ada@example.org", "--config", str(config), "--all")
    assert code == 0, err
    rows = out.split("considered at ")[1].splitlines()[1:]
    excluded = [row for row in rows if " excluded (their exclude list" in row]
    assert excluded and rows[-len(excluded) :] == excluded  # unranked, after the rest
    assert all(row.split()[1] == "-" for row in excluded)


def test_check_passes_then_reports_a_source_outage(run: Run, clean_env: Path) -> None:
    pages = pages_folder(clean_env, "004_056f41bc6489462d.txt")
    config = write_config(clean_env, pages, TWO_SUBSCRIBERS)
    code, out, err = run("check", "--config", str(config))
    assert code == 0 and "ok: database" in out and err.count("error:") == 0, err
    store = Store.open(f"sqlite:///{clean_env / 'digest.db'}")
    try:
        long_ago = datetime(2020, 1, 1, tzinfo=UTC)
        store.record_fetches([("hf-api https://example.org", 1, 1, 0, [])], long_ago)
        later = datetime(2020, 1, 3, tzinfo=UTC)
        store.record_fetches([("hf-api https://example.org", 0, 0, 1, ["HTTP 503"])], later)
    finally:
        store.close()
    code, out, err = run("check", "--config", str(config))
    assert code == 1
    assert "error: source hf-api https://example.org: no successful fetch since 2020-01-01" in err
    code, out, _ = run("status", "--config", str(config))
    assert "hf-api https://example.org" in out and "next digest" in out
