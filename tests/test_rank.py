"""The ranker's contract: preferences, order, determinism, `why`, and `digest rank`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.cli.rank import rank as rank_command
from digest.errors import ConfigError
from digest.models import Paper, Subscriber
from digest.rank import MemoryEmbeddingCache, Ranker, make_ranker

PAPERS: tuple[Paper, ...] = (
    Paper(
        "Reinforcement Learning from Human Feedback for Language Models",
        "We align large language models with reinforcement learning from human preferences.",
        arxiv_id="2501.00001",
        authors=("Alice Smith", "Bob Jones"),
        upvotes=5,
    ),
    Paper(
        "Denoising Diffusion Models for Video Generation",
        "A diffusion model generates long videos with temporal consistency.",
        arxiv_id="2501.00002",
        authors=("Carol White",),
        upvotes=40,
        ai_keywords=("diffusion model", "video generation"),
    ),
    Paper(
        "Graph Neural Networks for Molecule Property Prediction",
        "Message passing neural networks predict chemical properties of molecules.",
        arxiv_id="2501.00003",
        authors=("Dan Brown",),
        upvotes=12,
    ),
    Paper(
        "Offline Reinforcement Learning for Robot Manipulation",
        "Robots learn grasping policies with offline reinforcement learning from logged data.",
        arxiv_id="2501.00004",
        authors=("Eve Black", "Alice Smith"),
        upvotes=0,
    ),
    Paper(
        "A Survey of Tokenizers for Multilingual Language Models",
        "We review subword tokenization for multilingual machine translation and language models.",
        arxiv_id="2501.00005",
        authors=("Frank Green",),
        upvotes=3,
    ),
    Paper(
        "Diffusion Policies for Robot Control",
        "Diffusion models as visuomotor policies for robot control and manipulation.",
        arxiv_id="2501.00006",
        authors=("Gina Gray",),
        upvotes=25,
    ),
)
OFF_TOPIC = Paper(
    "Carbon Uptake of the Southern Ocean from Ship Measurements",
    "Seasonal cycles of dissolved inorganic carbon measured by research vessels.",
    arxiv_id="2501.00007",
    authors=("Hal Blue",),
    upvotes=90,
)
PAPERS = (*PAPERS, OFF_TOPIC)
HISTORY = (
    Paper(
        "Proximal Policy Optimization Algorithms for Reinforcement Learning",
        "Policy gradient methods for reinforcement learning with clipped objectives.",
        arxiv_id="1707.06347",
    ),
)


@pytest.fixture(params=["lexical", "static", "auto"])
def ranker(request: pytest.FixtureRequest) -> Ranker:
    return make_ranker(request.param, MemoryEmbeddingCache())


def ids(ranked: Sequence[object]) -> list[str | None]:
    return [r.paper.arxiv_id for r in ranked]  # type: ignore[attr-defined]


def rank_one(
    ranker: Ranker, sub: Subscriber, papers: Sequence[Paper] = PAPERS, **kw: object
) -> list:  # type: ignore[type-arg]
    return ranker.rank(papers, [sub], history=HISTORY, **kw)[sub.email]  # type: ignore[arg-type]


def test_topic_paper_ranks_above_off_topic_one(ranker: Ranker) -> None:
    got = ids(rank_one(ranker, Subscriber("a@x", topics=("reinforcement learning",))))
    assert got[:2] == ["2501.00001", "2501.00004"] or got[:2] == ["2501.00004", "2501.00001"]
    assert "2501.00003" not in got[:2]  # molecules: below, if sent at all
    assert "2501.00007" not in got  # the ocean: not sent just to fill max_papers


def test_why_names_the_matched_phrase(ranker: Ranker) -> None:
    ranked = rank_one(ranker, Subscriber("a@x", topics=("graph neural networks", "quantum")))
    assert ranked[0].paper.arxiv_id == "2501.00003"
    assert "topic: graph neural networks" in ranked[0].why
    assert not any("quantum" in w for w in ranked[0].why)


def test_exclude_always_wins(ranker: Ranker) -> None:
    sub = Subscriber(
        "a@x", topics=("diffusion models",), exclude=("video",), authors=("Carol White",)
    )
    got = ids(rank_one(ranker, sub))
    assert "2501.00002" not in got  # excluded even though on topic and by a followed author
    assert "2501.00006" in got


def test_followed_authors_always_in_and_first(ranker: Ranker) -> None:
    sub = Subscriber(
        "a@x", topics=("graph neural networks",), authors=("alice smith",), max_papers=3
    )
    ranked = rank_one(ranker, sub)
    # Off-topic, yet in and first (their order between them is the model's call).
    assert sorted(ids(ranked)[:2]) == ["2501.00001", "2501.00004"]  # type: ignore[type-var]
    assert ranked[0].why[0] == "followed author alice smith"
    assert ids(ranked)[2] == "2501.00003"


def test_no_profile_gets_upvote_order(ranker: Ranker) -> None:
    ranked = rank_one(ranker, Subscriber("a@x", max_papers=4))
    assert ids(ranked) == ["2501.00007", "2501.00002", "2501.00006", "2501.00003"]
    assert ranked[0].why == ("90 upvotes",)


def test_popularity_one_orders_relevant_papers_by_upvotes(ranker: Ranker) -> None:
    sub = Subscriber("a@x", topics=("diffusion models",), popularity=1.0)
    ranked = rank_one(ranker, sub)
    assert [r.paper.arxiv_id for r in ranked[:2]] == ["2501.00002", "2501.00006"]
    upvotes = [r.paper.upvotes for r in ranked]
    assert upvotes == sorted(upvotes, reverse=True)
    assert "2501.00007" not in ids(ranked)  # the most upvoted, but off-topic


def test_min_score_filters(ranker: Ranker) -> None:
    loose = rank_one(ranker, Subscriber("a@x", topics=("robot manipulation",), min_score=0.0))
    strict = rank_one(ranker, Subscriber("a@x", topics=("robot manipulation",), min_score=0.99))
    assert len(loose) == len(PAPERS)
    assert len(strict) < len(loose)
    assert all(0.0 <= r.score <= 1.0 for r in loose)
    assert [r.score for r in loose] == sorted((r.score for r in loose), reverse=True)


def test_eligible_is_respected(ranker: Ranker) -> None:
    subs = [Subscriber("a@x", topics=("reinforcement learning",)), Subscriber("b@x")]
    out = ranker.rank(PAPERS, subs, eligible={"a@x": {"arxiv:2501.00004"}})
    assert ids(out["a@x"]) == ["2501.00004"]
    assert out["b@x"] == []  # missing from `eligible`: nothing may be sent


def test_like_by_id_or_title_finds_similar_papers(ranker: Ranker) -> None:
    by_id = rank_one(ranker, Subscriber("a@x", like=("arXiv:1707.06347v2",)))
    by_title = rank_one(
        ranker,
        Subscriber(
            "a@x", like=("proximal policy optimization algorithms for reinforcement learning",)
        ),
    )
    assert ids(by_id) == ids(by_title)
    assert ids(by_id)[0] in ("2501.00001", "2501.00004")
    assert any(w.startswith('like "Proximal Policy') for w in by_id[0].why)


def test_liked_candidate_is_not_sent_back(ranker: Ranker) -> None:
    got = ids(rank_one(ranker, Subscriber("a@x", like=("2501.00004",))))
    assert "2501.00004" not in got


def test_lift_thresholds_ranks_every_eligible_paper(ranker: Ranker) -> None:
    sub = Subscriber("a@x", topics=("reinforcement learning",), max_papers=2)
    ranked = rank_one(ranker, sub, lift_thresholds=True)
    assert len(ranked) == len(PAPERS)


def test_unknown_kind_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        make_ranker("neural")


def test_ranker_reports_its_name(ranker: Ranker) -> None:
    assert ranker.name.startswith(("lexical", "semantic"))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    order=st.permutations(range(len(PAPERS))),
    sub_order=st.permutations(range(3)),
    dup=st.booleans(),
)
def test_deterministic_and_independent_of_input_order(
    ranker: Ranker, order: list[int], sub_order: list[int], dup: bool
) -> None:
    subs = [
        Subscriber("a@x", topics=("reinforcement learning", "diffusion"), popularity=0.3),
        Subscriber("b@x", like=("1707.06347",), exclude=("video",)),
        Subscriber("c@x", max_papers=3),
    ]
    papers = [PAPERS[i] for i in order] + ([PAPERS[order[0]]] if dup else [])
    base = ranker.rank(PAPERS, subs, history=HISTORY)
    got = ranker.rank(papers, [subs[i] for i in sub_order], history=HISTORY)
    assert got == base


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    papers = tmp_path / "papers.jsonl"
    papers.write_text(
        "\n".join(
            json.dumps(
                {
                    "id": p.arxiv_id,
                    "title": p.title,
                    "abstract": p.abstract,
                    "authors": list(p.authors),
                    "upvotes": p.upvotes,
                    "date": "2025-01-02",
                }
            )
            for p in PAPERS
        )
    )
    config = tmp_path / "digest.toml"
    config.write_text(
        '[[subscribers]]\nemail = "rl@example.org"\ntopics = ["reinforcement learning"]\n\n'
        '[[subscribers]]\nemail = "all@example.org"\n'
    )
    return papers, config


def test_rank_command_writes_jsonl(files: tuple[Path, Path]) -> None:
    papers, config = files
    res = CliRunner().invoke(
        rank_command, ["--papers", str(papers), "--config", str(config), "--top", "2"]
    )
    assert res.exit_code == 0, res.output
    lines = [json.loads(line) for line in res.output.splitlines()]
    assert [line["subscriber"] for line in lines] == ["rl@example.org", "all@example.org"]
    assert {p["id"] for p in lines[0]["papers"]} == {"2501.00001", "2501.00004"}
    assert set(lines[0]["papers"][0]) == {"id", "score", "why"}
    assert [p["id"] for p in lines[1]["papers"]] == ["2501.00007", "2501.00002"]


def test_rank_command_table_and_all(files: tuple[Path, Path]) -> None:
    papers, config = files
    res = CliRunner().invoke(
        rank_command,
        ["--papers", str(papers), "--config", str(config), "--all", "--format", "table"],
    )
    assert res.exit_code == 0, res.output
    assert "rl@example.org: 7 papers" in res.output


def test_rank_command_reports_a_bad_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "title": "ok"}\nnot json\n')
    config = tmp_path / "digest.toml"
    config.write_text('[[subscribers]]\nemail = "a@example.org"\n')
    res = CliRunner().invoke(rank_command, ["--papers", str(bad), "--config", str(config)])
    assert res.exit_code != 0
    assert "bad.jsonl: line 2: not JSON" in str(res.exception)


def test_rank_command_applies_category_filters(tmp_path: Path) -> None:
    """`digest rank` filters by `categories` / `exclude_categories` as sending does,
    reading a paper's categories as a list or as arXiv's space-separated string."""
    papers = tmp_path / "listing.jsonl"
    rows = [
        {"id": "2501.00001", "title": PAPERS[0].title, "categories": "cs.LG cs.CL"},
        {"id": "2501.00002", "title": PAPERS[1].title, "categories": ["cs.CV"]},
        {"id": "2501.00003", "title": PAPERS[2].title, "categories": ["q-bio.BM", "cs.LG"]},
    ]
    papers.write_text("\n".join(json.dumps(r) for r in rows))
    config = tmp_path / "digest.toml"
    config.write_text(
        '[[subscribers]]\nemail = "nlp@example.org"\ncategories = ["cs.CL"]\n\n'
        '[[subscribers]]\nemail = "nobio@example.org"\nexclude_categories = ["q-bio"]\n'
    )
    res = CliRunner().invoke(
        rank_command, ["--papers", str(papers), "--config", str(config), "--all"]
    )
    assert res.exit_code == 0, res.output
    got = {
        line["subscriber"]: {p["id"] for p in line["papers"]}
        for line in map(json.loads, res.output.splitlines())
    }
    assert got == {
        "nlp@example.org": {"2501.00001"},
        "nobio@example.org": {"2501.00001", "2501.00002"},
    }


def test_rank_command_reads_an_hf_api_page(files: tuple[Path, Path]) -> None:
    _, config = files
    page = Path(__file__).resolve().parent / "fixtures/hf-daily-papers-api/days/2026-04-01.json"
    res = CliRunner().invoke(rank_command, ["--papers", str(page), "--config", str(config)])
    assert res.exit_code == 0, res.output
    trending = json.loads(res.output.splitlines()[1])
    assert len(trending["papers"]) == 10


def test_result_is_a_lazy_mapping_of_every_subscriber(ranker: Ranker) -> None:
    subs = [
        Subscriber("a@x", topics=("diffusion models",)),
        Subscriber("b@x", like=("1707.06347",)),
        Subscriber("c@x"),
    ]
    ranked = ranker.rank(PAPERS, subs, history=HISTORY)
    assert isinstance(ranked, Mapping)
    assert list(ranked) == ["a@x", "b@x", "c@x"] and len(ranked) == 3
    assert ranked.get("nobody@x", []) == [] and "nobody@x" not in ranked
    assert ranked["a@x"] == ranked["a@x"]  # built on each lookup, the same each time
    assert ranked["c@x"][0].paper.arxiv_id == "2501.00007"  # trending: most upvotes first
    assert ranker.rank([], subs) == {"a@x": [], "b@x": [], "c@x": []}


def test_lexical_index_reuses_indexed_bags_exactly() -> None:
    import numpy as np

    from digest.rank.lexical import LexicalIndex

    day = [
        Paper(title="Graph neural networks", abstract="Message passing on graphs.", arxiv_id="1"),
        Paper(title="Speech recognition", abstract="Acoustic models for speech.", arxiv_id="2"),
        Paper(title="Graph transformers", abstract="Attention over graph nodes.", arxiv_id="3"),
    ]
    liked = Paper(title="Graph learning", abstract="Neural message passing.", arxiv_id="4")
    with_bag = LexicalIndex.build(day, [liked])
    assert liked.key in with_bag.bags
    fresh = LexicalIndex(
        with_bag.vocab, with_bag.idf, with_bag.bm25, with_bag.tfidf, with_bag.unseen_idf
    )
    assert np.allclose(with_bag.like_cosines([liked]), fresh.like_cosines([liked]))
    scores = with_bag.like_cosines([liked])[0]
    assert scores[0] > scores[1] and scores[2] > scores[1]


def test_shared_profiles_rank_as_each_subscriber_alone(ranker: Ranker) -> None:
    """Subscribers with the same settings are ranked once; each still gets exactly the
    list they would get alone, whatever else is in the crowd (eligible sets too)."""
    kinds = [
        {"topics": ("diffusion models",)},
        {"topics": ("diffusion models",), "popularity": 0.5},
        {"topics": ("reinforcement learning", "diffusion models"), "exclude": ("survey",)},
        {"like": ("1707.06347",)},
        {"like": ("arXiv:1707.06347v2",), "max_papers": 2},
        {"authors": ("A. Smith",)},
        {},
        {"min_score": 0.0, "topics": ("robot",)},
    ]
    subs = [Subscriber(f"s{i}@x", **kinds[i % len(kinds)]) for i in range(40)]  # type: ignore[arg-type]
    keys = [p.key for p in PAPERS]
    eligible = {s.email: set(keys[: 3 + i % 5]) for i, s in enumerate(subs)}
    for kw in ({}, {"eligible": eligible}, {"lift_thresholds": True}):
        crowd = ranker.rank(PAPERS, subs, history=HISTORY, **kw)
        for s in subs:
            one = {"eligible": {s.email: eligible[s.email]}} if "eligible" in kw else kw
            assert crowd[s.email] == rank_one(ranker, s, **one)


def test_a_vector_cached_from_another_paper_text_is_not_reused() -> None:
    """After an upgrade that changes how a paper's text is built, stored vectors of the
    old text must not stand in for the new: the ranking equals one from an empty cache."""
    import numpy as np

    from digest.rank.semantic import Fusion, SemanticModel, make_static

    def model(cache: MemoryEmbeddingCache, title_repeat: int) -> SemanticModel:
        m = make_static(cache, fusion=Fusion(title_repeat=title_repeat)).model
        assert isinstance(m, SemanticModel)
        return m

    shared = MemoryEmbeddingCache()
    old = model(shared, 1).embed_papers(PAPERS)
    new = model(shared, 3).embed_papers(PAPERS)
    fresh = model(MemoryEmbeddingCache(), 3).embed_papers(PAPERS)
    assert np.allclose(new, fresh)
    assert not np.allclose(old, new)
