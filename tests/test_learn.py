"""Learning from feedback on real recorded days: "more / less like this" moves similar
papers, several interests stay served, the why says "you liked", and without feedback
every list is exactly what it was."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from digest.cli import main
from digest.models import Feedback, Paper, RankedPaper, Reason, Subscriber
from digest.rank import MemoryEmbeddingCache, Ranker, make_ranker
from digest.sources.hf_api import parse_daily_papers

DAYS = Path(__file__).resolve().parent / "fixtures" / "hf-daily-papers-api" / "days"


def hf_day(name: str) -> list[Paper]:
    path = DAYS / f"{name}.json"
    return parse_daily_papers(path.read_bytes(), str(path))


# Today: the 50 papers of 2026-05-13. Earlier days: the papers feedback can name.
TODAY = hf_day("2026-05-13")
EARLIER = [p for name in ("2026-04-01", "2026-04-02", "2024-10-10") for p in hf_day(name)]
BY_ID = {p.arxiv_id: p for p in [*EARLIER, *TODAY]}
# Today's papers on memory for language models and agents, and two earlier ones.
MEMORY_TODAY = ("2605.09530", "2605.12357", "2605.12477", "2605.12493")
MEMORY_EARLIER = ("2410.02503", "2603.29247")  # egocentric memory; preference memory
# Today's two papers on on-policy distillation, and an earlier survey of it.
DISTILLATION_TODAY = ("2605.11182", "2605.12483")
DISTILLATION_EARLIER = "2604.00626"
# Earlier papers on language-model agents (benchmarks, environments, frameworks).
AGENTS_EARLIER = (
    "2604.00073",
    "2604.01221",
    "2604.00842",
    "2603.28088",
    "2603.24414",
    "2410.07095",
    "2603.28407",
    "2410.05295",
)


@pytest.fixture(scope="module", params=["lexical", "static", "auto"])
def ranker(request: pytest.FixtureRequest) -> Ranker:
    return make_ranker(request.param, MemoryEmbeddingCache())


def said(verdict: str, *ids: str) -> list[Feedback]:
    return [
        Feedback(BY_ID[i].key, "more" if verdict == "more" else "less", BY_ID[i].title) for i in ids
    ]


def ranked_ids(ranked: Sequence[RankedPaper]) -> list[str | None]:
    return [r.paper.arxiv_id for r in ranked]


def places(ranked: Sequence[RankedPaper], ids: Sequence[str]) -> list[int]:
    order = ranked_ids(ranked)
    return [order.index(i) + 1 for i in ids]


def rank_all(
    ranker: Ranker, sub: Subscriber, feedback: list[Feedback] | None = None
) -> list[RankedPaper]:
    given = {sub.email: feedback} if feedback is not None else None
    return ranker.rank(TODAY, [sub], history=EARLIER, lift_thresholds=True, feedback=given)[
        sub.email
    ]


LLM = Subscriber("llm@example.org", topics=("large language models",))


def test_more_lifts_similar_papers(ranker: Ranker) -> None:
    before = places(rank_all(ranker, LLM), MEMORY_TODAY)
    after = places(rank_all(ranker, LLM, said("more", *MEMORY_EARLIER)), MEMORY_TODAY)
    assert sum(after) < 0.9 * sum(before), (before, after)


def test_less_pushes_similar_papers_down(ranker: Ranker) -> None:
    before = places(rank_all(ranker, LLM), DISTILLATION_TODAY)
    after = places(rank_all(ranker, LLM, said("less", DISTILLATION_EARLIER)), DISTILLATION_TODAY)
    more = places(rank_all(ranker, LLM, said("more", DISTILLATION_EARLIER)), DISTILLATION_TODAY)
    assert sum(more) < sum(before) < sum(after), (more, before, after)


def test_a_strong_interest_does_not_drown_a_second(ranker: Ranker) -> None:
    """Eight "more" on agent papers re-order the agent interest; the video interest keeps
    its best paper first and its papers in the digest."""
    both = Subscriber("both@example.org", topics=("video generation", "language model agents"))
    video = Subscriber("video@example.org", topics=("video generation",))
    best_video = ranked_ids(ranker.rank(TODAY, [video])[video.email])[:5]
    before = ranked_ids(ranker.rank(TODAY, [both], history=EARLIER)[both.email])
    given = {both.email: said("more", *AGENTS_EARLIER)}
    after = ranked_ids(ranker.rank(TODAY, [both], history=EARLIER, feedback=given)[both.email])
    assert after != before  # the feedback did change the digest ...
    assert after[0] == before[0] == best_video[0]  # ... but not the second interest's best
    kept = [i for i in best_video if i in after]
    assert len(kept) >= len([i for i in best_video if i in before]) - 1 >= 2


def test_why_says_you_liked_the_paper_that_lifted_it(ranker: Ranker) -> None:
    ranked = rank_all(ranker, LLM, said("more", *MEMORY_EARLIER))
    titles = {BY_ID[i].title for i in MEMORY_EARLIER}
    reasons = [w for r in ranked[:10] for w in r.why if w.kind == "feedback"]
    assert reasons, [r.why for r in ranked[:10]]
    for reason in reasons:
        assert reason.detail in titles
        assert reason == f'you liked "{reason.detail}"'
    assert all(not r.why or r.why[0].kind == "topic" for r in ranked[:10] if r.why)


def test_no_feedback_ranks_exactly_as_without_learning(ranker: Ranker) -> None:
    """On real days, feedback=None, an empty mapping, feedback naming unknown papers and
    other subscribers' feedback all leave every list exactly as it was."""
    subs = [
        LLM,
        Subscriber("two@example.org", topics=("video generation", "agents"), popularity=0.3),
        Subscriber(
            "likes@example.org", like=tuple(p.arxiv_id or "" for p in EARLIER[:5]), max_papers=4
        ),
        Subscriber("trending@example.org"),
        Subscriber("strict@example.org", topics=("robot learning",), exclude=("survey",)),
    ]
    for lift in (False, True):
        plain = ranker.rank(TODAY, subs, history=EARLIER, lift_thresholds=lift)
        assert any(plain.values())
        unknown = {LLM.email: [Feedback("arxiv:9999.99999", "more")]}
        for feedback in (None, {}, unknown, {"stranger@example.org": said("more", "2604.00073")}):
            got = ranker.rank(TODAY, subs, history=EARLIER, lift_thresholds=lift, feedback=feedback)
            assert dict(got) == dict(plain)
        # A crowd with feedback: everyone else's list is unchanged, the fed one is not.
        fed = Subscriber("fed@example.org", topics=("large language models",))
        crowd = ranker.rank(
            TODAY,
            [*subs, fed],
            history=EARLIER,
            lift_thresholds=lift,
            feedback={fed.email: said("more", *MEMORY_EARLIER)},
        )
        assert all(crowd[s.email] == plain[s.email] for s in subs)
        assert crowd[fed.email] != plain[LLM.email]


def test_feedback_is_deterministic_and_shared_as_alone(ranker: Ranker) -> None:
    """Input order does not matter; a later verdict on a paper replaces an earlier one;
    a subscriber ranked in a crowd gets the list they would get alone."""
    feedback = [*said("less", *MEMORY_EARLIER), *said("more", *MEMORY_EARLIER)]
    alone = rank_all(ranker, LLM, said("more", *MEMORY_EARLIER))
    assert rank_all(ranker, LLM, feedback) == alone
    others = [Subscriber(f"s{i}@example.org", topics=("agents",)) for i in range(3)]
    crowd = ranker.rank(
        list(reversed(TODAY)),
        [others[0], LLM, *others[1:]],
        history=list(reversed(EARLIER)),
        lift_thresholds=True,
        feedback={
            LLM.email: feedback,
            others[1].email: said("less", "2604.00073"),
        },
    )
    assert crowd[LLM.email] == alone


def test_papers_given_feedback_are_not_sent_again(ranker: Ranker) -> None:
    today_ids = ("2605.12357", "2605.11182")
    ranked = rank_all(ranker, LLM, [*said("more", today_ids[0]), *said("less", today_ids[1])])
    assert not set(today_ids) & set(ranked_ids(ranked))
    assert len(ranked) == len(TODAY) - 2


def test_more_from_a_subscriber_without_topics_tilts_their_trending_list(
    ranker: Ranker,
) -> None:
    """Without topics or likes a subscriber gets the day in upvote order; their "more"
    papers lift similar papers, and the digest stays as long (no threshold appears)."""
    trending = Subscriber("trending@example.org")

    def digest(feedback: list[Feedback] | None, lift: bool) -> list[RankedPaper]:
        given = {trending.email: feedback} if feedback is not None else None
        ranked = ranker.rank(
            TODAY, [trending], history=EARLIER, feedback=given, lift_thresholds=lift
        )
        return ranked[trending.email]

    more = said("more", *MEMORY_EARLIER)
    assert len(digest(more, False)) == len(digest(None, False)) == trending.max_papers
    before = places(digest(None, True), MEMORY_TODAY)
    after = places(digest(more, True), MEMORY_TODAY)
    assert sum(after) < 0.9 * sum(before), (before, after)


# --- digest rank --feedback ---------------------------------------------------------------

CONFIG = """
[[subscribers]]
email = "llm@example.org"
topics = ["large language models"]

[[subscribers]]
email = "video@example.org"
topics = ["video generation"]
"""


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    history = tmp_path / "earlier.jsonl"
    history.write_text(
        "".join(
            json.dumps({"id": p.arxiv_id, "title": p.title, "abstract": p.abstract}) + "\n"
            for p in EARLIER
        )
    )
    config = tmp_path / "digest.toml"
    config.write_text(CONFIG)
    return {"papers": DAYS / "2026-05-13.json", "history": history, "config": config}


def digest_rank(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], *extra: str
) -> tuple[int, str, str]:
    args = ["rank", "--ranker", "lexical", "--top", "10"]
    args += ["--papers", str(files["papers"]), "--history", str(files["history"])]
    args += ["--config", str(files["config"]), *extra]
    code = 0
    try:
        main(args)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_rank_command_takes_feedback(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path
) -> None:
    feedback = tmp_path / "feedback.jsonl"
    # By id, by id in another spelling, by title.
    named = [
        (MEMORY_EARLIER[0], "more"),
        (f"arXiv:{MEMORY_EARLIER[1]}v2", "more"),
        (BY_ID[DISTILLATION_EARLIER].title, "less"),
    ]
    lines = [{"subscriber": "llm@example.org", "paper": p, "verdict": v} for p, v in named]
    feedback.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    code, plain, err = digest_rank(capsys, files)
    assert code == 0, err
    code, learned, err = digest_rank(capsys, files, "--feedback", str(feedback))
    assert code == 0, err
    before = {d["subscriber"]: d["papers"] for d in map(json.loads, plain.splitlines())}
    after = {d["subscriber"]: d["papers"] for d in map(json.loads, learned.splitlines())}
    assert after["video@example.org"] == before["video@example.org"]
    assert after["llm@example.org"] != before["llm@example.org"]
    whys = [Reason.from_json(w) for p in after["llm@example.org"] for w in p["why"]]
    assert any(w.startswith('you liked "') for w in whys), whys


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "line 2: not JSON"),
        ('["llm@example.org", "2410.02503", "more"]', 'line 2: needs "subscriber", "paper"'),
        ('{"subscriber": "llm@example.org", "paper": "2410.02503"}', 'line 2: needs "subscriber"'),
        (
            '{"subscriber": "llm@example.org", "paper": "2410.02503", "verdict": "maybe"}',
            "line 2: verdict 'maybe'",
        ),
        (
            '{"subscriber": "bob@example.org", "paper": "2410.02503", "verdict": "more"}',
            "line 2: subscriber 'bob@example.org' is not in the config",
        ),
        (
            '{"subscriber": "llm@example.org", "paper": "2401.99999", "verdict": "less"}',
            "line 2: paper '2401.99999' is in neither --papers nor --history",
        ),
    ],
)
def test_a_bad_feedback_line_is_one_line_naming_file_and_line(
    capsys: pytest.CaptureFixture[str],
    files: dict[str, Path],
    tmp_path: Path,
    line: str,
    message: str,
) -> None:
    feedback = tmp_path / "feedback.jsonl"
    good = {"subscriber": "llm@example.org", "paper": "2410.02503", "verdict": "more"}
    feedback.write_text(json.dumps(good) + "\n" + line + "\n")
    code, out, err = digest_rank(capsys, files, "--feedback", str(feedback))
    assert code == 2 and out == ""
    assert err.splitlines() == [err.strip()]
    assert err.startswith(f"error: {feedback}: {message}"), err
