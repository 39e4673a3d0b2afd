"""Plain values that flow through the pipeline: papers, subscribers, ranked papers, digests.

No I/O here. Everything is frozen so a stage can never change what another stage sees.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from urllib.parse import quote, quote_plus

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalise_title(title: str) -> str:
    """The identity of a paper without an arXiv id: case, spacing and punctuation removed."""
    folded = unicodedata.normalize("NFKC", title).casefold()
    return " ".join(_NON_WORD.sub(" ", folded).split())


@dataclass(frozen=True, slots=True)
class Paper:
    """One research paper as a source saw it. Only `title` is always known."""

    title: str
    abstract: str = ""
    arxiv_id: str | None = None
    authors: tuple[str, ...] = ()
    author_count: int | None = None
    published: date | None = None  # the arXiv date
    list_date: date | None = None  # the Hugging Face daily list it appeared on
    upvotes: int | None = None
    comments: int | None = None
    submitter: str | None = None
    ai_summary: str | None = None
    ai_keywords: tuple[str, ...] = ()
    github_repo: str | None = None
    github_stars: int | None = None
    project_page: str | None = None
    organization: str | None = None
    source: str = ""  # the file or URL it was read from

    @property
    def title_key(self) -> str:
        return normalise_title(self.title)

    @property
    def key(self) -> str:
        """Stable identity: the arXiv id where known, else the normalised title."""
        return f"arxiv:{self.arxiv_id}" if self.arxiv_id else f"title:{self.title_key}"

    @property
    def url(self) -> str:
        """The paper's Hugging Face page; without an id, a search for its title there."""
        if self.arxiv_id:
            return f"https://huggingface.co/papers/{quote(self.arxiv_id)}"
        return f"https://huggingface.co/papers?q={quote_plus(self.title)}"


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A person and what they want to read, as written in the config file."""

    email: str
    name: str = ""
    topics: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()  # followed authors: always included, shown first
    like: tuple[str, ...] = ()  # arXiv ids or titles of papers they liked
    popularity: float = 0.0  # 0 = pure relevance, 1 = upvote order
    max_papers: int = 10
    min_score: float | None = None


@dataclass(frozen=True, slots=True)
class RankedPaper:
    paper: Paper
    score: float
    why: tuple[str, ...] = ()  # short reasons shown in the email


@dataclass(frozen=True, slots=True)
class Digest:
    """What one subscriber receives in one email."""

    subscriber: Subscriber
    papers: tuple[RankedPaper, ...]
    day: date
    considered: int = 0  # new papers the ranker looked at for this subscriber
