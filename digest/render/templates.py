"""Templates rendered once per distinct content, the subscriber's own fields filled in after.

A digest is a frame (`digest.html.j2`, `digest.txt.j2`: header, footer) around paper
blocks (`_paper.html.j2`, `_paper.txt.j2`). Each is rendered with the subscriber's own
fields (name, email, links, counts, why-lines...) standing in as *slots*: one private-use
character each, which Jinja passes through untouched. The result, with its CSS inlined
(HTML), is cut at the slots and cached: the frame per day and per shape (which fields are
present), a paper block per paper. A message is then the cached pieces joined with its
own values, escaped for HTML. Nothing the subscriber sees depends on the cache: a cold
and a warm renderer give the same text.

A template that reads a whole object of the message (`papers`, `subscriber`, `digest`;
`ranked`, `reasons` in a paper block) cannot be cached by content: it is rendered for
every message instead, slower but the same output.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import css_inline
import jinja2
import jinja2.meta
from markupsafe import Markup, escape

from digest.errors import ConfigError
from digest.models import Digest, Paper, RankedPaper, Reason
from digest.render import words

Format = Literal["html", "text"]
FRAMES: dict[Format, str] = {"text": "digest.txt.j2", "html": "digest.html.j2"}
PAPERS: dict[Format, str] = {"text": "_paper.txt.j2", "html": "_paper.html.j2"}
TEMPLATES = (FRAMES["text"], FRAMES["html"], PAPERS["text"], PAPERS["html"])

# The subscriber's own fields, in slot order.
FRAME_SLOTS = (
    "subject",
    "preheader",
    "greeting",
    "summary",
    "reason",
    "interests",
    "email",
    "listing",
    "unsubscribe",
    "unsubscribe_mailto",
    "manage",
    "feed",
)
LINK_SLOTS = ("unsubscribe", "unsubscribe_mailto", "manage", "feed")
PAPER_SLOTS = ("number", "why", "more", "less")
# Variables that make a template's output depend on more than its cache key.
FRAME_WHOLE = frozenset({"papers", "subscriber", "digest"})
PAPER_WHOLE = frozenset({"ranked", "reasons", "subscriber", "digest"})

_SLOT = re.compile(f"([{chr(words.SLOT_FIRST)}-{chr(words.SLOT_LAST)}])")
_STYLE = re.compile(r"<style\b[^>]*>(.*?)</style\s*>", re.S | re.I)
_LINE_LIMIT = 800  # HTML lines are folded below this; slot values may add to a line
CACHE_SIZE = 4096
_LISTING = FRAME_SLOTS.index("listing")
_NUMBERS = [f"{n:>2}." for n in range(100)]
_SHAPES = {(a, b): (a, b) for a in (False, True) for b in (False, True)}


def _escape(value: str) -> str:
    """HTML text or attribute value, in ASCII (characters beyond as references)."""
    if not value:
        return ""
    if value.isascii() and not (
        "&" in value or "<" in value or ">" in value or '"' in value or "'" in value
    ):
        return value  # most URLs and names: nothing to escape
    escaped = str(escape(value))
    return escaped if escaped.isascii() else _ascii(escaped)


def _ascii(html: str) -> str:
    """Non-ASCII characters as numeric references: the HTML part stays 7-bit (and encodes
    at memory speed)."""
    return html.encode("ascii", "xmlcharrefreplace").decode("ascii")


def slot(index: int) -> Markup:
    return Markup(chr(words.SLOT_FIRST + index))


class _Lru(OrderedDict[Hashable, Any]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def remember(self, key: Hashable, value: Any) -> None:
        self[key] = value
        if len(self) > self.size:
            self.popitem(last=False)


@dataclass(frozen=True, slots=True)
class Pieces:
    """A rendering cut at its slots: statics[0], slot, statics[1], slot, ..., statics[-1].

    `tails[k]` is the length of the last line of statics[k], `breaks[k]` whether it holds
    a line break: enough to know the column where each slot starts (plain text).
    """

    statics: tuple[str, ...]
    slots: tuple[int, ...]
    tails: tuple[int, ...]
    breaks: tuple[bool, ...]

    @classmethod
    def cut(cls, rendered: str, *, ascii_only: bool = False) -> Pieces:
        parts = _SLOT.split(rendered)
        statics = tuple(_ascii(p) if ascii_only else p for p in parts[0::2])
        return cls(
            statics,
            tuple(ord(c) - words.SLOT_FIRST for c in parts[1::2]),
            tuple(len(s) - s.rfind("\n") - 1 for s in statics),
            tuple("\n" in s for s in statics),
        )

    def fill(self, values: Sequence[str]) -> str:
        out: list[str] = [""] * (2 * len(self.slots) + 1)
        out[0::2] = self.statics
        out[1::2] = [values[i] for i in self.slots]
        return "".join(out)

    def fill_text(self, values: Sequence[str], wrap: Wrapper, width: int = words.WIDTH) -> str:
        """Fill plain text, wrapping each value at the column where it starts."""
        out = [self.statics[0]]
        column = self.tails[0]
        for k, index in enumerate(self.slots, start=1):
            value = values[index]
            if column + len(value) > width and " " in value and "\n" not in value:
                value = wrap(value, column)
            out.append(value)
            newline = value.rfind("\n")
            column = column + len(value) if newline < 0 else len(value) - newline - 1
            out.append(self.statics[k])
            column = self.tails[k] if self.breaks[k] else column + self.tails[k]
        return "".join(out)


class Wrapper:
    """`words.wrap` at a column, remembered: the same why-lines and footers recur."""

    def __init__(self, size: int = CACHE_SIZE, width: int = words.WIDTH) -> None:
        self.width = width
        self.known: _Lru = _Lru(size)

    def __call__(self, value: str, column: int) -> str:
        key = (value, column)
        wrapped: str | None = self.known.get(key)
        if wrapped is None:
            if " " not in value:
                wrapped = value
            else:
                indent = " " * column if column <= 40 else ""
                wrapped = words.wrap(value, self.width, indent, start=column)
            self.known.remember(key, wrapped)
        return wrapped


@dataclass(frozen=True, slots=True)
class PaperView:
    """What a paper block shows, in words; computed once per paper."""

    title: str
    url: str
    authors: str
    date: str
    upvotes: str
    comments: str
    summary: str
    arxiv: str | None
    pdf: str | None
    code: str | None
    code_name: str
    stars: str
    project: str | None

    @classmethod
    def of(cls, paper: Paper) -> PaperView:
        arxiv, pdf = words.arxiv_links(paper)
        code = words.https(paper.github_repo)
        project = words.https(paper.project_page)
        if project and code and project.rstrip("/") == code.rstrip("/"):
            project = None
        published = paper.published or paper.list_date
        return cls(
            title=words.clean(paper.title) or "(untitled)",
            url=words.title_url(paper),
            authors=words.authors_line(paper),
            date=f"arXiv {words.short_day(published)}" if published else "",
            upvotes=words.plural(paper.upvotes, "upvote") if paper.upvotes else "",
            comments=words.plural(paper.comments, "comment") if paper.comments else "",
            summary=words.excerpt(paper),
            arxiv=arxiv,
            pdf=pdf,
            code=code,
            code_name=words.repo_name(code) if code else "",
            stars=words.compact_count(paper.github_stars) if paper.github_stars else "",
            project=project,
        )


@dataclass(frozen=True, slots=True)
class FrameLinks:
    unsubscribe: Markup | None
    unsubscribe_mailto: Markup | None
    manage: Markup | None
    feed: Markup | None


def make_environment(
    folders: Sequence[Path], *, postal_address: str | None = None
) -> jinja2.Environment:
    """The Jinja environment over `folders` (searched in order); every template compiled now."""
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(folder) for folder in folders]),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["wrap"] = _wrap_filter
    env.filters["shorten"] = lambda text, limit=words.EXCERPT_CHARS: words.cut(
        words.clean(text), limit
    )
    env.globals["postal_address"] = words.clean(postal_address) or None
    for name in TEMPLATES:
        template(env, name)
    return env


def _wrap_filter(
    text: str, indent: str = "", start: int | None = None, width: int = words.WIDTH
) -> str:
    return words.wrap(str(text), width, indent, start=start)


def template(env: jinja2.Environment, name: str) -> jinja2.Template:
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


def _uses(env: jinja2.Environment, name: str) -> frozenset[str]:
    """The variables a template reads (its own source; inherited ones are not followed)."""
    tmpl = template(env, name)
    assert env.loader is not None
    source, _, _ = env.loader.get_source(env, name)
    del tmpl
    return frozenset(jinja2.meta.find_undeclared_variables(env.parse(source)))


def _render(env: jinja2.Environment, name: str, context: Mapping[str, object]) -> str:
    tmpl = template(env, name)
    try:
        return tmpl.render(context)
    except jinja2.TemplateError as exc:  # e.g. an overriding template names an unknown variable
        raise ConfigError(f"{tmpl.filename or name}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Rendered:
    """The two bodies of one digest."""

    subject: str
    text: str
    html: str


class Renderer:
    """Renders digests with one environment's templates; keeps the caches."""

    def __init__(self, env: jinja2.Environment, cache_size: int = CACHE_SIZE) -> None:
        self.env = env
        self.frame_whole = {f: bool(_uses(env, n) & FRAME_WHOLE) for f, n in FRAMES.items()}
        self.paper_whole = {f: bool(_uses(env, n) & PAPER_WHOLE) for f, n in PAPERS.items()}
        self.inliner = css_inline.CSSInliner(
            keep_at_rules=True, load_remote_stylesheets=False, keep_link_tags=False
        )
        self.css: str | None = None
        self.frames: _Lru = _Lru(256)
        self.papers: _Lru = _Lru(cache_size)
        self.views: _Lru = _Lru(cache_size)
        self.whys: _Lru = _Lru(cache_size)
        self.keys: _Lru = _Lru(cache_size)
        self.wrap = Wrapper(cache_size)

    # -- one digest --------------------------------------------------------------------

    def render(self, digest: Digest) -> Rendered:
        frame_values = frame_values_of(digest)
        present = tuple(bool(v) for v in frame_values)
        frame_html = self._frame("html", digest, present)
        frame_text = self._frame("text", digest, present)
        html_items, text_items = [], []
        paper_links = digest.links.papers
        for number, ranked in enumerate(digest.papers, start=1):
            why = self.whys.get(ranked.why)
            if why is None:
                why = words.why_text(words.reasons_of(ranked))
                why = (why, _escape(why))
                self.whys.remember(ranked.why, why)
            links = paper_links.get(self._key(ranked.paper)) if paper_links else None
            more = words.clean(links.more) if links else ""
            less = words.clean(links.less) if links else ""
            shape = _SHAPES[bool(more), bool(less)]
            key = (ranked.paper, shape)
            pieces = self.papers.get(key) or self._papers(key, ranked, digest)
            number_text = _NUMBERS[number] if number < len(_NUMBERS) else f"{number}."
            html_items.append(pieces[0].fill((number_text, why[1], _escape(more), _escape(less))))
            text_items.append(pieces[1].fill_text((number_text, why[0], more, less), self.wrap))
        html_values = _escaped(frame_values)
        html_values[_LISTING] = "".join(html_items)
        text_values = list(frame_values)
        text_values[_LISTING] = "\n".join(text_items)
        return Rendered(
            frame_values[0],
            frame_text.fill_text(text_values, self.wrap),
            frame_html.fill(html_values),
        )

    def _key(self, paper: Paper) -> str:
        """`paper.key`, remembered: it normalises the title every time it is read."""
        key: str | None = self.keys.get(paper)
        if key is None:
            key = paper.key
            self.keys.remember(paper, key)
        return key

    # -- cached pieces -----------------------------------------------------------------

    def _frame(self, fmt: Format, digest: Digest, present: tuple[bool, ...]) -> Pieces:
        key = (fmt, digest.day, digest.period_start, len(digest.papers), present)
        whole = self.frame_whole[fmt]
        if not whole:
            cached: Pieces | None = self.frames.get(key)
            if cached is not None:
                return cached
        slots = {name: (slot(i) if present[i] else None) for i, name in enumerate(FRAME_SLOTS)}
        context: dict[str, object] = {
            name: slots[name] for name in FRAME_SLOTS if name not in LINK_SLOTS
        }
        context |= {
            "links": FrameLinks(*(slots[name] for name in LINK_SLOTS)),
            "day": digest.day,
            "period_start": digest.period_start,
            "period": words.period_text(digest.day, digest.period_start),
            "count": len(digest.papers),
        }
        if whole:
            context |= {"papers": digest.papers, "subscriber": digest.subscriber, "digest": digest}
        rendered = _render(self.env, FRAMES[fmt], context)
        if fmt == "html":
            if self.css is None:
                self.css = "\n".join(_STYLE.findall(rendered))
            rendered = self._inline(rendered)
        pieces = Pieces.cut(_crlf(rendered), ascii_only=fmt == "html")
        if not whole:
            self.frames.remember(key, pieces)
        return pieces

    def _papers(
        self, key: tuple[Paper, tuple[bool, bool]], ranked: RankedPaper, digest: Digest
    ) -> tuple[Pieces, Pieces]:
        """A paper's (HTML, text) pieces for one shape: rendered, inlined, remembered."""
        pieces = (
            self._paper("html", ranked, key[1], digest),
            self._paper("text", ranked, key[1], digest),
        )
        if not (self.paper_whole["html"] or self.paper_whole["text"]):
            self.papers.remember(key, pieces)
        return pieces

    def _paper(
        self, fmt: Format, ranked: RankedPaper, shape: tuple[bool, bool], digest: Digest
    ) -> Pieces:
        view = self.views.get(ranked.paper)
        if view is None:
            view = PaperView.of(ranked.paper)
            self.views.remember(ranked.paper, view)
        context: dict[str, object] = {
            "paper": ranked.paper,
            "p": view,
            "number": slot(0),
            "why": slot(1),
            "more": slot(2) if shape[0] else None,
            "less": slot(3) if shape[1] else None,
        }
        if self.paper_whole[fmt]:
            reasons: tuple[Reason, ...] = words.reasons_of(ranked)
            context |= {
                "ranked": ranked,
                "reasons": reasons,
                "subscriber": digest.subscriber,
                "digest": digest,
            }
        rendered = _render(self.env, PAPERS[fmt], context)
        if fmt == "html":
            rendered = self.inliner.inline_fragment(rendered, self.css or "")
            rendered = fold_html(rendered)
        return Pieces.cut(_crlf(rendered.strip("\n") + "\n"), ascii_only=fmt == "html")

    def _inline(self, html: str) -> str:
        try:
            inlined = self.inliner.inline(html)
        except css_inline.InlineError as exc:
            raise ConfigError(f"{FRAMES['html']}: cannot inline its CSS: {exc}") from None
        return fold_html(inlined)


def frame_values_of(digest: Digest) -> list[str]:
    """The subscriber's own fields of the frame, in FRAME_SLOTS order ("" when absent)."""
    links = digest.links
    return [
        words.subject_for(digest),
        words.preheader_for(digest),
        words.greeting_for(digest),
        words.summary_for(digest),
        words.reason_for(digest),
        words.interests_for(digest),
        digest.subscriber.email,
        "listing",  # the papers: filled in by the renderer
        words.clean(links.unsubscribe),
        words.clean(links.unsubscribe_mailto),
        words.clean(links.manage),
        words.clean(links.feed),
    ]


def _escaped(values: Sequence[str]) -> list[str]:
    return [_escape(v) for v in values]


def _crlf(text: str) -> str:
    """Lines end in LF here; CRLF is the MIME writer's business. Bare CRs go."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def fold_html(html: str, limit: int = _LINE_LIMIT) -> str:
    """Break lines longer than `limit` at a space outside attribute values.

    A line break where HTML already had a space changes nothing a reader sees; inside a
    quoted attribute it could, so those spaces are left alone.
    """
    if all(len(line) <= limit for line in html.split("\n")):
        return html
    return "\n".join(_fold_line(line, limit) for line in html.split("\n"))


def _fold_line(line: str, limit: int) -> str:
    if len(line) <= limit:
        return line
    out: list[str] = []
    start = 0
    last_space = -1
    in_tag = False
    quote = ""
    for i, char in enumerate(line):
        if quote:
            if char == quote:
                quote = ""
        elif in_tag and char in "\"'":
            quote = char
        elif char == "<":
            in_tag = True
        elif char == ">":
            in_tag = False
        elif char == " ":
            last_space = i
        if i - start >= limit and last_space > start:
            out.append(line[start:last_space])
            start = last_space + 1
            last_space = -1
    out.append(line[start:])
    return "\n".join(out)
