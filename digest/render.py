"""Turn a digest into an email: Jinja2 templates, HTML autoescaped, plain text first.

Pure given the templates folder: takes a `Digest`, returns an `EmailMessage`.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path

import jinja2

from digest.models import Digest, RankedPaper

_CRLF = re.compile(r"[\r\n]+")
_ABSTRACT_CHARS = 600


def clean_header(value: str) -> str:
    """Header text with CR/LF (header injection) and runs of spaces removed."""
    return " ".join(_CRLF.sub(" ", value).split())


def make_environment(templates_dir: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["shorten"] = shorten
    env.filters["authors"] = format_authors
    return env


def shorten(text: str, limit: int = _ABSTRACT_CHARS) -> str:
    """At most `limit` characters, cut at a word boundary."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",.;:") + " …"


def format_authors(paper_authors: tuple[str, ...], count: int | None = None) -> str:
    if paper_authors:
        shown = ", ".join(paper_authors[:3])
        return shown + (" et al." if len(paper_authors) > 3 else "")
    if count:
        return f"{count} author{'s' if count != 1 else ''}"
    return ""


def subject_for(digest: Digest) -> str:
    """E.g. "5 new papers on transfer learning"; the topic most of the papers matched."""
    n = len(digest.papers)
    noun = "paper" if n == 1 else "papers"
    topic = main_topic(digest)
    if topic:
        return clean_header(f"{n} new {noun} on {topic}")
    return clean_header(f"{n} trending {noun} for {digest.day:%b} {digest.day.day}")


def main_topic(digest: Digest) -> str | None:
    topics = digest.subscriber.topics
    if not topics:
        return None
    counts: Counter[str] = Counter()
    for ranked in digest.papers:
        reasons = " ".join(ranked.why).casefold()
        for topic in topics:
            if topic.casefold() in reasons:
                counts[topic] += 1
    if counts:
        best = max(counts.values())
        return next(t for t in topics if counts[t] == best)
    return topics[0]


def render_message(
    digest: Digest, env: jinja2.Environment, *, sender: str, now: datetime
) -> EmailMessage:
    """A multipart/alternative message: text/plain first, text/html last."""
    context = {
        "digest": digest,
        "subscriber": digest.subscriber,
        "papers": digest.papers,
        "subject": subject_for(digest),
        "day": digest.day,
        "why": why_line,
    }
    text = env.get_template("digest.txt.j2").render(context)
    html = env.get_template("digest.html.j2").render(context)

    message = EmailMessage()
    message["Subject"] = context["subject"]
    message["From"] = clean_header(sender)
    message["To"] = Address(
        display_name=clean_header(digest.subscriber.name), addr_spec=digest.subscriber.email
    )
    message["Date"] = format_datetime(now)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(idstring="digest", domain=clean_header(domain))
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def why_line(ranked: RankedPaper) -> str:
    return "; ".join(ranked.why)
