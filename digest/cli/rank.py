"""`digest rank`: rank a file of papers for every subscriber of the config, offline.

The command-line side of ranking: reading papers from files and printing lists.

Touches no database and sends nothing: for trying preferences and thresholds by hand.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import click

from digest.config import find_config, load_config, load_settings
from digest.errors import InputError, SourceError
from digest.models import Feedback, Paper, RankedPaper, Subscriber
from digest.rank import MemoryEmbeddingCache, make_ranker
from digest.rank.filters import filter_by_categories
from digest.rank.text import LikeResolver
from digest.sources import parse_saved_page

VERDICTS = ("more", "less")


def _json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, decoded value) of each non-blank line; errors name file and line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SourceError(str(path), f"cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise SourceError(str(path), f"not UTF-8 text (byte {exc.start})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise SourceError(str(path), f"not JSON: {exc.msg}", number) from exc


def read_papers_jsonl(path: Path) -> list[Paper]:
    """Papers from JSON Lines: `id`, `title`, `abstract` (or `summary`), optional
    `authors`, `upvotes`, `date`, `ai_keywords`, `categories` (a list, or arXiv's
    space-separated string)."""
    papers: list[Paper] = []
    for number, record in _json_lines(path):
        if not isinstance(record, dict) or not str(record.get("title") or "").strip():
            raise SourceError(str(path), "a paper needs a title", number)
        papers.append(_paper(record, str(path), number))
    return papers


def _paper(r: dict[str, Any], where: str, line: int) -> Paper:
    published = None
    if r.get("date"):
        try:
            published = date.fromisoformat(str(r["date"])[:10])
        except ValueError as exc:
            raise SourceError(where, f"bad date {r['date']!r}", line) from exc
    upvotes = r.get("upvotes")
    if isinstance(upvotes, str) and upvotes.strip().isdigit():
        upvotes = int(upvotes)
    if upvotes is not None and (isinstance(upvotes, bool) or not isinstance(upvotes, int)):
        raise SourceError(where, f"upvotes {upvotes!r}: not a whole number", line)
    return Paper(
        title=" ".join(str(r["title"]).split()),
        abstract=" ".join(str(r.get("abstract") or r.get("summary") or "").split()),
        arxiv_id=str(r["id"]) if r.get("id") else None,
        authors=_texts(r, "authors", ",", where, line),
        published=published,
        upvotes=upvotes,
        ai_keywords=_texts(r, "ai_keywords", None, where, line),
        categories=_texts(r, "categories", " ", where, line),
        source=where,
    )


def _texts(
    r: dict[str, Any], field: str, separator: str | None, where: str, line: int
) -> tuple[str, ...]:
    """A field that holds a list of strings (or, with `separator`, one string of them)."""
    value = r.get(field) or ()
    if isinstance(value, str) and separator is not None:
        value = value.split(separator)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise SourceError(where, f"{field}: not a list of strings", line)
    return tuple(v.strip() for v in value if v.strip())


def read_papers(path: Path) -> list[Paper]:
    """JSONL (one paper per line), or any saved page the sources read (.json, .html, .txt)."""
    if path.suffix.lower() == ".jsonl":
        return read_papers_jsonl(path)
    return parse_saved_page(path)


def read_feedback(
    path: Path, emails: Collection[str], papers: Sequence[Paper]
) -> dict[str, list[Feedback]]:
    """Feedback from JSON Lines: `{"subscriber": EMAIL, "paper": ID, "verdict": "more" |
    "less"}`, by subscriber. The paper (an arXiv id in any spelling, or a title) must be
    one of `papers`; a later line on the same paper replaces an earlier one."""
    resolver = LikeResolver(papers)
    out: dict[str, list[Feedback]] = {}
    for number, record in _json_lines(path):
        fields = ("subscriber", "paper", "verdict")
        if not isinstance(record, dict) or not all(
            isinstance(record.get(k), str) and record[k].strip() for k in fields
        ):
            raise SourceError(
                str(path), 'needs "subscriber", "paper" and "verdict" (strings)', number
            )
        email, ident, verdict = (str(record[k]).strip() for k in fields)
        if verdict not in VERDICTS:
            raise SourceError(str(path), f'verdict {verdict!r}: use "more" or "less"', number)
        if email not in emails:
            raise SourceError(str(path), f"subscriber {email!r} is not in the config", number)
        paper = resolver.resolve(ident)
        if paper is None:
            raise SourceError(
                str(path), f"paper {ident!r} is in neither --papers nor --history", number
            )
        more = verdict == "more"
        out.setdefault(email, []).append(
            Feedback(paper.key, "more" if more else "less", paper.title)
        )
    return out


def _load_subscribers(config: Path | None) -> tuple[Subscriber, ...]:
    path, is_example = find_config(config, load_settings())
    return tuple(load_config(path, is_example=is_example).subscribers)


def _lines(result: Mapping[str, list[RankedPaper]], fmt: str) -> Iterator[str]:
    for email, ranked in result.items():
        if fmt == "jsonl":
            papers = [
                {"id": r.paper.arxiv_id or r.paper.key, "score": r.score, "why": list(r.why)}
                for r in ranked
            ]
            yield json.dumps({"subscriber": email, "papers": papers}, ensure_ascii=False)
        else:
            yield f"{email}: {len(ranked)} paper{'' if len(ranked) == 1 else 's'}"
            for n, r in enumerate(ranked, start=1):
                title = r.paper.title if len(r.paper.title) <= 70 else r.paper.title[:69] + "…"
                yield f"  {n:>3}. {r.score:.3f}  {title}"
                if r.why:
                    yield f"        {'; '.join(r.why)}"


@click.command("rank")
@click.option(
    "--papers",
    "papers_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The candidate papers (JSONL: id, title, abstract, authors, upvotes, date).",
)
@click.option(
    "--history",
    "history_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Earlier papers, to find the subscribers' liked papers.",
)
@click.option(
    "--feedback",
    "feedback_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='Subscribers\' "more / less like this" (JSONL: subscriber, paper, verdict).',
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The config file with the subscribers (default: digest.toml).",
)
@click.option("--top", type=click.IntRange(min=1), help="Show at most N papers per subscriber.")
@click.option(
    "--all", "show_all", is_flag=True, help="Rank every paper, ignoring thresholds and max_papers."
)
@click.option(
    "--ranker",
    type=click.Choice(["auto", "semantic", "lexical"]),
    default="auto",
    show_default=True,
    help="Which ranker to use.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl", "table"]), default="jsonl", show_default=True
)
def rank(
    papers_file: Path,
    history_file: Path | None,
    feedback_file: Path | None,
    config_file: Path | None,
    top: int | None,
    show_all: bool,
    ranker: str,
    fmt: str,
) -> None:
    """Rank a file of papers for every subscriber, without a database or sending mail.

    Example: digest rank --papers today.jsonl --history earlier.jsonl --feedback fb.jsonl
    """
    subscribers = _load_subscribers(config_file)
    try:
        papers = read_papers(papers_file)
        history: Sequence[Paper] = read_papers(history_file) if history_file else ()
        feedback = (
            read_feedback(feedback_file, {s.email for s in subscribers}, [*history, *papers])
            if feedback_file
            else None
        )
    except SourceError as exc:
        raise InputError(str(exc)) from None
    # Each subscriber's `categories` / `exclude_categories`, as when sending.
    every = {p.key for p in papers}
    eligible = filter_by_categories(subscribers, papers, {s.email: every for s in subscribers})
    chosen = make_ranker(ranker, MemoryEmbeddingCache())
    result: Mapping[str, list[RankedPaper]] = chosen.rank(
        papers,
        subscribers,
        history=history,
        eligible=eligible,
        lift_thresholds=show_all,
        feedback=feedback,
    )
    if top is not None:
        result = {k: v[:top] for k, v in result.items()}
    if fmt == "table":
        click.echo(f"ranker: {chosen.name}", err=True)
    for line in _lines(result, fmt):
        click.echo(line)
