"""Plain values that flow through the pipeline: papers, subscribers, ranked papers, digests.

No I/O here. Everything is frozen so a stage can never change what another stage sees.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import ClassVar, Literal
from urllib.parse import quote, quote_plus

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
# New-style ids (2401.01234, 0704.0001) and old-style ones (hep-th/9901001, math.GT/0309136),
# optionally written with an `arXiv:` prefix, as an abs/pdf URL, or with a version suffix.
_ARXIV_ID = re.compile(
    r"(?:arxiv:\s*|arxiv\.org/(?:abs|pdf)/)?"
    r"(?P<id>\d{4}\.\d{4,5}|[a-z][a-z\-]*(?:\.[a-z]{2})?/\d{7})"
    r"(?:v\d+)?(?:\.pdf)?",
    re.IGNORECASE,
)
ARXIV_PREFIX = "arxiv:"
TITLE_PREFIX = "title:"


def normalise_title(title: str) -> str:
    """The identity of a paper without an arXiv id: case, spacing and punctuation removed."""
    folded = unicodedata.normalize("NFKC", title).casefold()
    return " ".join(_NON_WORD.sub(" ", folded).split())


def normalise_arxiv_id(text: str) -> str | None:
    """The bare arXiv id that `text` is, or None.

    Accepts `2401.01234`, `2401.01234v2`, `arXiv:2401.01234`, `https://arxiv.org/abs/...`,
    `.../pdf/2401.01234v1.pdf` and old-style ids (`hep-th/9901001`, kept in their case).
    Text with more than an id around it (a title that mentions one) is not an id.
    """
    stripped = text.strip().rstrip("/")
    match = _ARXIV_ID.search(stripped)
    if match is None:
        return None
    before = stripped[: match.start()].casefold()
    if before and not before.endswith(("://", "www.", "export.")) and not _is_url_head(before):
        return None
    if stripped[match.end() :].strip():
        return None
    ident = match["id"]
    if "/" in ident:  # old style: archive name lower case, subject class upper case
        archive, number = ident.split("/")
        name, _, subject = archive.partition(".")
        return f"{name.lower()}{'.' + subject.upper() if subject else ''}/{number}"
    return ident


def _is_url_head(text: str) -> bool:
    return text.startswith(("http://", "https://", "arxiv.org", "www.arxiv.org"))


def paper_key(arxiv_id: str | None, title_key: str) -> str:
    """The one way a paper's identity is written: `arxiv:<id>`, else `title:<normalised>`."""
    return f"{ARXIV_PREFIX}{arxiv_id}" if arxiv_id else f"{TITLE_PREFIX}{title_key}"


def split_key(key: str) -> tuple[str | None, str | None]:
    """(arxiv id, title key) of a paper key; exactly one of them is set."""
    if key.startswith(ARXIV_PREFIX):
        return key.removeprefix(ARXIV_PREFIX), None
    if key.startswith(TITLE_PREFIX):
        return None, key.removeprefix(TITLE_PREFIX)
    raise ValueError(f"not a paper key: {key!r}")


def key_for_reference(text: str) -> str:
    """The key of the paper a person names by arXiv id (any spelling) or by title."""
    ident = normalise_arxiv_id(text)
    return paper_key(ident, "") if ident else paper_key(None, normalise_title(text))


@dataclass(frozen=True, slots=True)
class FileFingerprint:
    """What we knew of a saved page when we last read it; size+mtime first, then content."""

    path: str
    size: int
    mtime_ns: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Validators:
    """HTTP cache validators of the last good response for a URL."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class UrlMemo:
    """What to remember of one URL's answer, so the next request can be conditional."""

    url: str
    validators: Validators


# What a source learned about one page, stored together with the page's papers.
SourceMemo = FileFingerprint | UrlMemo


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
    categories: tuple[str, ...] = ()  # arXiv subject categories, primary first
    # How arXiv announced this sighting: new, cross, replace or replace-cross (a revision);
    # None from the other sources.
    announce: str | None = None
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
        # The title is normalised only when needed: keys are taken very often.
        return paper_key(self.arxiv_id, "" if self.arxiv_id else self.title_key)

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
    # arXiv categories (`cs.CL`, or a whole archive: `cs`): a paper must carry one of them;
    # `huggingface` stands for the papers on Hugging Face's daily list.
    categories: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()  # a paper carrying any of them is dropped
    popularity: float = 0.0  # 0 = pure relevance, 1 = upvote order
    max_papers: int = 10
    min_score: float | None = None
    # When: IANA zone and local time (None: the settings' defaults), how often, and what
    # to do when nothing matched ("skip": no mail; "trending": a short trending mail).
    timezone: str | None = None
    send_at: str | None = None  # "HH:MM"
    frequency: str = "daily"  # daily, weekdays, weekly
    weekday: int = 0  # for weekly: 0 = Monday
    when_empty: str = "skip"


class Reason(str):
    """One reason a paper was picked. Reads as its text (`topic: diffusion models`) and
    knows what it is: `kind` (topic, like, feedback, author, upvotes, category) and
    `detail` (the phrase, liked title, author name, count or category)."""

    kind: str
    detail: str
    _TEXT: ClassVar[dict[str, str]] = {
        "topic": "topic: {}",
        "like": 'like "{}"',
        "feedback": 'you liked "{}"',
        "author": "followed author {}",
        "upvotes": "{} upvotes",
        "category": "category {}",
    }

    def __new__(cls, kind: str, detail: str) -> Reason:
        text = cls._TEXT.get(kind, kind + ": {}").format(detail)
        reason = super().__new__(cls, text)
        reason.kind = kind
        reason.detail = detail
        return reason

    def __getnewargs__(self) -> tuple[str, str]:  # type: ignore[override]
        return (self.kind, self.detail)

    def to_json(self) -> list[str]:
        return [self.kind, self.detail]

    @classmethod
    def from_json(cls, value: object) -> Reason:
        """From `[kind, detail]`; a plain string (older plans) is kept as it reads."""
        if isinstance(value, list) and len(value) == 2:
            return cls(str(value[0]), str(value[1]))
        text = str(value)
        kind, _, detail = text.partition(": ")
        return cls(kind, detail) if detail else cls("note", text)


@dataclass(frozen=True, slots=True)
class RankedPaper:
    paper: Paper
    score: float
    why: tuple[Reason, ...] = ()  # why it was picked, strongest first


@dataclass(frozen=True, slots=True)
class PaperLinks:
    """A subscriber's own links for one paper in one digest (signed; see `digest serve`)."""

    more: str | None = None  # "more like this"
    less: str | None = None  # "less like this"


@dataclass(frozen=True, slots=True)
class DigestLinks:
    """A subscriber's own links in one digest; None where the operator has no web app."""

    unsubscribe: str | None = None  # https page; also the RFC 8058 one-click POST target
    unsubscribe_mailto: str | None = None  # mailto: URL
    manage: str | None = None
    feed: str | None = None  # their Atom feed
    papers: Mapping[str, PaperLinks] = field(default_factory=dict)  # by paper key


@dataclass(frozen=True, slots=True)
class Digest:
    """What one subscriber receives in one email."""

    subscriber: Subscriber
    papers: tuple[RankedPaper, ...]
    day: date  # the issue date
    considered: int = 0  # new papers the ranker looked at for this subscriber
    period_start: date | None = None  # the first day this digest covers (None: `day` alone)
    trending: bool = False  # nothing matched their topics: what was trending instead
    links: DigestLinks = field(default_factory=DigestLinks)


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """The one value a mailer sees: a finished message and its envelope."""

    message_id: str  # the Message-ID header, e.g. "<digest.2026-11-29.0.ab12cd34@example.org>"
    sender: str  # envelope sender (MAIL FROM), a bare address
    recipient: str  # envelope recipient (RCPT TO), a bare address
    data: bytes  # the whole RFC 5322 message, CRLF line endings


@dataclass(frozen=True, slots=True)
class Feedback:
    """A subscriber's "more like this" / "less like this" on one paper (from the email)."""

    paper_key: str
    verdict: Literal["more", "less"]
    title: str = ""
