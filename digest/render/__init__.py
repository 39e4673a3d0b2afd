"""Turn a digest into an email: Jinja2 templates, HTML autoescaped, plain text first.

Pure given the templates folders: takes a `Digest`, returns an `EmailMessage`.
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

from digest.config import DEFAULT_TEMPLATES
from digest.errors import ConfigError
from digest.models import Digest, RankedPaper

_CRLF = re.compile(r"[\r\n]+")
_ABSTRACT_CHARS = 600


def clean_header(value: str) -> str:
    """Header text with CR/LF (header injection) and runs of spaces removed."""
    return " ".join(_CRLF.sub(" ", value).split())


TEMPLATES = ("digest.txt.j2", "digest.html.j2")


def make_environment(templates_dir: Path | None = None) -> jinja2.Environment:
    """Templates from `templates_dir` (DIGEST_TEMPLATES_DIR) first, else the bundled ones.

    An operator may override one file: the others come from the bundled set. A missing
    folder, a missing template or one that does not compile is a `ConfigError` now, at
    start-up, rather than a traceback halfway through a run.
    """
    folders = [DEFAULT_TEMPLATES]
    if templates_dir is not None:
        if not templates_dir.is_dir():
            raise ConfigError(
                f"environment: DIGEST_TEMPLATES_DIR: {templates_dir}: no such templates folder"
            )
        folders.insert(0, templates_dir)
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(folder) for folder in folders]),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["shorten"] = shorten
    env.filters["authors"] = format_authors
    for name in TEMPLATES:
        _template(env, name)
    return env


def _template(env: jinja2.Environment, name: str) -> jinja2.Template:
    """`env.get_template(name)`, with a one-line ConfigError naming the folders or the file."""
    try:
        return env.get_template(name)
    except jinja2.TemplateNotFound:
        raise ConfigError(f"{_searched(env)}: template {name!r} not found") from None
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"{exc.filename or name}: line {exc.lineno}: {exc.message}") from None


def _searched(env: jinja2.Environment) -> str:
    loaders = env.loader.loaders if isinstance(env.loader, jinja2.ChoiceLoader) else [env.loader]
    return ", ".join(
        str(folder)
        for loader in loaders
        if isinstance(loader, jinja2.FileSystemLoader)
        for folder in loader.searchpath
    )


def _render(env: jinja2.Environment, name: str, context: dict[str, object]) -> str:
    template = _template(env, name)
    try:
        return template.render(context)
    except jinja2.TemplateError as exc:  # e.g. an overriding template names an unknown variable
        raise ConfigError(f"{template.filename or name}: {exc}") from None


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
    text = _render(env, "digest.txt.j2", context)
    html = _render(env, "digest.html.j2", context)

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
