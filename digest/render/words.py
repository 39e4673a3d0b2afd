"""What the email says, as plain strings: subject, summary, authors, excerpts, why-lines.

Pure functions of a `Digest` (or a `Paper`); the templates only place these strings.
Every string that reaches a header is free of CR/LF.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date
from urllib.parse import quote

from digest.models import Digest, Paper, RankedPaper, Reason

# Private-use code points mark the subscriber's own fields in cached renderings (see
# templates.py); they mean nothing in a paper's text, so they are removed from it.
SLOT_FIRST, SLOT_LAST = 0xE000, 0xE0FF
_UNSAFE = {c: None for c in range(SLOT_FIRST, SLOT_LAST + 1)} | {
    c: " " for c in (*range(0, 32), 0x7F, 0x85, 0x2028, 0x2029)
}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'“])")
_CRLF = re.compile(r"[\r\n]+")
AUTHORS_SHOWN = 3
EXCERPT_CHARS = 300
TOPIC_CHARS = 48  # a topic named in a subject line is cut to this
WIDTH = 72  # plain-text columns


def clean(text: str | None) -> str:
    """One line of display text: control characters and slot markers out, spaces collapsed."""
    if not text:
        return ""
    if text.isprintable() and "  " not in text and not text[0].isspace() and not text[-1].isspace():
        return text  # the common case, at C speed (isprintable is False for every unsafe one)
    return " ".join(text.translate(_UNSAFE).split())


def clean_header(value: str) -> str:
    """Header text with CR/LF (header injection) and runs of spaces removed."""
    return " ".join(_CRLF.sub(" ", value).split())


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    return f"{n:,} {noun if n == 1 else (nouns or noun + 's')}"


def cut(text: str, limit: int) -> str:
    """At most `limit` characters, cut at a word, with "..." when cut."""
    if len(text) <= limit:
        return text
    head = text[: limit - 3].rsplit(" ", 1)[0] if " " in text[: limit - 3] else text[: limit - 3]
    return head.rstrip(",.;:-–— ") + "..."


def excerpt(paper: Paper, limit: int = EXCERPT_CHARS) -> str:
    """The AI summary when the source has one, else the abstract's first sentences."""
    summary = clean(paper.ai_summary)
    if summary:
        return cut(summary, limit)
    abstract = clean(paper.abstract)
    if len(abstract) <= limit:
        return abstract
    kept = ""
    for sentence in _SENTENCE_END.split(abstract):
        if len(kept) + len(sentence) + 1 > limit:
            break
        kept = f"{kept} {sentence}" if kept else sentence
    return kept if kept else cut(abstract, limit)


def authors_line(paper: Paper, shown: int = AUTHORS_SHOWN) -> str:
    """ "A, B, C et al. (12 authors)"; "A and B"; "12 authors" when only the count is known."""
    names = [clean(a) for a in paper.authors if clean(a)]
    count = max(len(names), paper.author_count or 0)
    if not names:
        return plural(count, "author") if count else ""
    if len(names) == 1 and count == 1:
        return names[0]
    if len(names) == 2 and count == 2:
        return f"{names[0]} and {names[1]}"
    if count <= shown:
        return ", ".join(names[:-1]) + f" and {names[-1]}"
    return ", ".join(names[:shown]) + f" et al. ({count:,} authors)"


def day_text(day: date) -> str:
    return f"{day:%A} {day.day} {day:%B %Y}"


def short_day(day: date) -> str:
    return f"{day.day} {day:%b %Y}"


def period_text(day: date, start: date | None) -> str:
    """ "Sunday 22 November 2026", or the range "16–22 November 2026"."""
    if start is None or start >= day:
        return day_text(day)
    if (start.year, start.month) == (day.year, day.month):
        return f"{start.day}–{day.day} {day:%B %Y}"
    if start.year == day.year:
        return f"{start.day} {start:%B} – {day.day} {day:%B %Y}"
    return f"{start.day} {start:%B %Y} – {day.day} {day:%B %Y}"


def compact_count(n: int) -> str:
    """1234 -> "1.2k" (GitHub stars)."""
    if n < 1000:
        return str(n)
    if n < 10_000:
        return f"{n / 1000:.1f}".rstrip("0").rstrip(".") + "k"
    return f"{round(n / 1000):,}k"


def reasons_of(ranked: RankedPaper) -> tuple[Reason, ...]:
    """Structured reasons, also from plain strings (older plans, hand-made digests)."""
    why = ranked.why
    if all(type(w) is Reason for w in why):
        return why
    return tuple(w if isinstance(w, Reason) else Reason.from_json(str(w)) for w in why)


def why_text(reasons: Sequence[Reason]) -> str:
    """ "matches “robotics” and “agents” · 24 upvotes" : the reasons, in words."""
    parts: list[str] = []
    topics = [clean(r.detail) for r in reasons if r.kind == "topic"]
    done_topics = False
    for reason in reasons:
        detail = clean(reason.detail)
        if reason.kind == "topic":
            if not done_topics:
                parts.append("matches " + _and([f"“{t}”" for t in topics]))
                done_topics = True
        elif reason.kind == "like":
            parts.append(f"like “{detail}”, which you liked")
        elif reason.kind == "feedback":
            parts.append(f"like “{detail}”, which you rated up")
        elif reason.kind == "author":
            parts.append(f"by {detail}, whom you follow")
        elif reason.kind == "upvotes":
            votes = int(detail) if detail.isdigit() else None
            parts.append(f"{plural(votes, 'upvote')} on Hugging Face" if votes else detail)
        elif reason.kind == "category":
            parts.append(f"in {detail}")
        else:
            parts.append(clean(str(reason)))
    return " · ".join(p for p in parts if p)


def _and(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def subject_for(digest: Digest) -> str:
    """A subject line true for every kind of subscriber.

    Topics: "5 new papers on robotics" when every paper matched that topic, "... on
    robotics and agents" when every paper matched one of two, "... on robotics, agents and
    more" otherwise. Followed authors and liked papers are said so. "Trending" only when
    every paper is there for its upvotes alone and has some.
    """
    papers = digest.papers
    n = len(papers)
    count = plural(n, "new paper")
    if n == 0:
        return clean_header(f"No new papers for {short_day(digest.day)}")
    if digest.trending:
        what = "trending" if all((r.paper.upvotes or 0) > 0 for r in papers) else "recent"
        return clean_header(f"Nothing new on your topics: {plural(n, what + ' paper')} instead")
    reasons = [reasons_of(r) for r in papers]
    kinds = [{r.kind for r in rs} for rs in reasons]
    if all(k == {"upvotes"} for k in kinds) and all((r.paper.upvotes or 0) > 0 for r in papers):
        return clean_header(
            f"{plural(n, 'trending paper')} on Hugging Face, {short_day(digest.day)}"
        )
    topic_sets = [{clean(r.detail) for r in rs if r.kind == "topic"} for rs in reasons]
    counts = Counter(t for ts in topic_sets for t in ts)
    ordered = _ordered(counts, digest.subscriber.topics)
    named = [cut(t, TOPIC_CHARS) for t in ordered[:2]]
    if all(topic_sets):
        if all(ordered[0] in ts for ts in topic_sets):
            return clean_header(f"{count} on {named[0]}")
        if all(ts & set(ordered[:2]) for ts in topic_sets):
            return clean_header(f"{count} on {named[0]} and {named[1]}")
        return clean_header(f"{count} on {named[0]}, {named[1]} and more")
    if all("author" in k for k in kinds):
        authors = Counter(clean(r.detail) for rs in reasons for r in rs if r.kind == "author")
        names = _ordered(authors, digest.subscriber.authors)
        by = names[0] if len(names) == 1 else "authors you follow"
        return clean_header(f"{count} by {cut(by, TOPIC_CHARS)}")
    if all(k & {"like", "feedback"} for k in kinds):
        return clean_header(f"{count} like the ones you liked")
    if named:
        return clean_header(f"{count} for you, on {named[0]} and more")
    return clean_header(f"{count} for you, {short_day(digest.day)}")


def _ordered(counts: Counter[str], preferred: Iterable[str]) -> list[str]:
    """Most frequent first; ties in the subscriber's own order, then by name."""
    rank = {clean(t).casefold(): i for i, t in enumerate(preferred)}
    return sorted(counts, key=lambda t: (-counts[t], rank.get(t.casefold(), len(rank)), t))


def summary_for(digest: Digest) -> str:
    """ "8 of 455 new papers matched your interests." (the header's count line)."""
    n, considered = len(digest.papers), max(digest.considered, len(digest.papers))
    sub = digest.subscriber
    if digest.trending:
        return (
            f"None of the {plural(considered, 'new paper')} matched your interests; "
            "here is what was most upvoted instead."
        )
    if not (sub.topics or sub.like or sub.authors):
        return f"The {plural(n, 'most upvoted paper')} of {plural(considered, 'new paper')}."
    what = "your topics" if sub.topics and not (sub.like or sub.authors) else "your interests"
    if considered == n:
        return f"{plural(n, 'new paper')} matched {what}."
    return f"{n:,} of {plural(considered, 'new paper')} matched {what}."


def preheader_for(digest: Digest) -> str:
    """The inbox preview line: the first titles."""
    titles = [clean(r.paper.title) for r in digest.papers[:3]]
    text = " · ".join(cut(t, 90) for t in titles if t)
    more = len(digest.papers) - 3
    return text + (f" · and {more} more" if more > 0 else "")


def greeting_for(digest: Digest) -> str:
    name = clean(digest.subscriber.name)
    return f"Hello {name}," if name else "Hello,"


def reason_for(digest: Digest) -> str:
    """Why this person gets this email (the footer)."""
    return f"You get this email because {digest.subscriber.email} is subscribed to Paper digest."


def interests_for(digest: Digest) -> str:
    sub = digest.subscriber
    parts = []
    if sub.topics:
        parts.append("Your topics: " + ", ".join(clean(t) for t in sub.topics) + ".")
    if sub.authors:
        parts.append("Authors you follow: " + ", ".join(clean(a) for a in sub.authors) + ".")
    if sub.like:
        parts.append(f"Papers you liked: {len(sub.like)}.")
    if sub.exclude:
        parts.append("Left out: " + ", ".join(clean(e) for e in sub.exclude) + ".")
    if not (sub.topics or sub.authors or sub.like):
        parts.append("You asked for the most upvoted papers of the day.")
    elif sub.popularity > 0:
        parts.append(f"Popularity weighs {sub.popularity:.0%} in the order.")
    return " ".join(parts)


def https(url: str | None) -> str | None:
    """The URL if it is absolute https (http upgraded for GitHub), else None."""
    if not url:
        return None
    url = url.strip()
    if url.startswith("http://github.com/"):
        url = "https://" + url.removeprefix("http://")
    if not url.startswith("https://") or len(url) > 500 or any(c in url for c in ' "<>\\'):
        return None
    return url


def arxiv_links(paper: Paper) -> tuple[str | None, str | None]:
    """The abstract and PDF pages on arXiv, when the paper has an arXiv id."""
    if not paper.arxiv_id:
        return None, None
    ident = quote(paper.arxiv_id, safe="/.")
    return f"https://arxiv.org/abs/{ident}", f"https://arxiv.org/pdf/{ident}"


def title_url(paper: Paper) -> str:
    """Its Hugging Face page; arXiv when only arXiv knows it; else a search for the title."""
    on_hugging_face = (
        paper.upvotes is not None
        or paper.list_date is not None
        or "huggingface" in paper.source.casefold()
    )
    if paper.arxiv_id and not on_hugging_face:
        return arxiv_links(paper)[0] or paper.url
    return paper.url


def repo_name(url: str) -> str:
    """ "owner/repo" of a GitHub URL, else the host and path."""
    rest = url.split("://", 1)[-1]
    host, _, path = rest.partition("/")
    if host in ("github.com", "www.github.com"):
        return "/".join(path.strip("/").split("/")[:2]) or host
    return rest.rstrip("/")


def wrap(text: str, width: int = WIDTH, indent: str = "", start: int | None = None) -> str:
    """A plain-text paragraph, every line indented by `indent`; or, with `start`, its first
    line going on from column `start` of a line already begun. Words are never broken
    (a long URL keeps a line of its own)."""
    lines: list[str] = []
    line: list[str] = []
    prefix = indent if start is None else ""
    column = len(indent) if start is None else start
    for word in text.split():
        if line and column + 1 + len(word) > width:
            lines.append(prefix + " ".join(line))
            prefix, line, column = indent, [word], len(indent) + len(word)
        else:
            column += len(word) + (1 if line else 0)
            line.append(word)
    if line:
        lines.append(prefix + " ".join(line))
    return "\n".join(lines)
