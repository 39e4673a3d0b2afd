"""Where papers come from: the `Source` protocol, the registry by config `kind`, and `build_source`.

A source yields one `PageResult` per page (file or URL); a broken page is a result
with an error, never an exception that stops the other pages. Kinds:

| kind        | with `path` (file, folder or glob)  | without `path`                              |
|-------------|-------------------------------------|---------------------------------------------|
| `text-dump` | saved text pages (`.txt`)           | (path is required)                          |
| `hf-api`    | saved `daily_papers` JSON (`.json`) | `{base_url}/api/daily_papers?date=D`, paged |
| `hf-html`   | saved papers HTML (`.html`)         | `{base_url}/papers?date=D`, or `?q=query`   |
| `arxiv`     | saved arXiv feeds (`.xml`, `.rss`)  | `{base_url}/rss/<cat>+<cat>` (`categories`) |

Without `path`, a Hugging Face source reads today's list and the `lookback_days` days
before it, oldest first; an arXiv source reads its categories' feed of the day. A
folder or glob only yields files that are new or changed since the last run
(`SourceMemory` is what earlier runs remembered; each `PageResult` carries the memo the
caller stores with its papers).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.errors import ConfigError, SourceError
from digest.models import FileFingerprint, Paper, Validators
from digest.sources import arxiv, hf_api, hf_html, text_dump
from digest.sources.base import (
    FetchContext,
    MemoryState,
    PageResult,
    PartialPageError,
    Progress,
    Source,
    SourceMemory,
    SourceOptions,
)
from digest.sources.retrieve import USER_AGENT, Fetched, HttpClient

__all__ = [
    "SOURCE_KINDS",
    "USER_AGENT",
    "FetchContext",
    "Fetched",
    "FileFingerprint",
    "HttpClient",
    "MemoryState",
    "PageResult",
    "PartialPageError",
    "Progress",
    "Source",
    "SourceMemory",
    "SourceOptions",
    "Validators",
    "build_source",
    "parse_saved_page",
]

SourceFactory = Callable[[SourceOptions], Source]

SOURCE_KINDS: dict[str, SourceFactory] = {
    "text-dump": text_dump.make_source,
    "hf-api": hf_api.make_source,
    "hf-html": hf_html.make_source,
    "arxiv": arxiv.make_source,
}

# Which keys each kind accepts; `path` switches the hf kinds from the web to files,
# and then the web-only keys would silently do nothing, so they are refused.
_COMMON = frozenset({"kind", "name"})
_WEB_KEYS = frozenset({"base_url", "lookback_days", "timezone"})
_ARXIV_KEYS = frozenset({"base_url", "categories", "min_delay"})
_ALLOWED = {
    "text-dump": _COMMON | {"path"},
    "hf-api": _COMMON | {"path"} | _WEB_KEYS,
    "hf-html": _COMMON | {"path", "query"} | _WEB_KEYS,
    "arxiv": _COMMON | {"path"} | _ARXIV_KEYS,
}
_ANY_KIND_KEYS = frozenset().union(*_ALLOWED.values())
_DEFAULT_BASE_URLS = {"arxiv": arxiv.DEFAULT_BASE_URL}
MAX_LOOKBACK_DAYS = 366
MAX_MIN_DELAY = 600.0


def build_source(spec: Mapping[str, object], *, config_dir: Path, where: str) -> Source:
    """Validate one `[[sources]]` table and build its source.

    Raises ConfigError with one line naming `where`, e.g.
    `digest.toml: sources[2]: unknown key 'pth' (expected kind, name, path)`, also for a
    `path` that does not exist (a file or folder, or a glob's folder before its first
    wildcard): `digest.toml: sources[2]: path 'pages/' does not exist`. A glob in an
    existing folder may match nothing yet (an inbox).
    """
    kind = spec.get("kind")
    if kind is None:
        raise ConfigError(f"{where}: missing key 'kind' (one of {', '.join(SOURCE_KINDS)})")
    if not isinstance(kind, str) or kind not in SOURCE_KINDS:
        raise ConfigError(f"{where}: kind {kind!r} is not one of {', '.join(SOURCE_KINDS)}")
    allowed = _ALLOWED[kind]
    for key in spec:
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            if key in _ANY_KIND_KEYS:
                raise ConfigError(f"{where}: key {key!r} does not apply to kind {kind!r}")
            raise ConfigError(f"{where}: unknown key {key!r} (expected {known})")
    path = _path(spec, config_dir, where)
    if kind == "text-dump" and path is None:
        raise ConfigError(f"{where}: kind 'text-dump' needs a 'path' (file, folder or glob)")
    if path is not None:
        for key in sorted(_WEB_KEYS | _ARXIV_KEYS | {"query"}):
            if key in spec:
                raise ConfigError(f"{where}: {key!r} has no effect with 'path'; remove one")
    base_url = _string(spec, "base_url", where) or _DEFAULT_BASE_URLS.get(
        kind, "https://huggingface.co"
    )
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise ConfigError(f"{where}: base_url {base_url!r} is not an http(s) URL")
    lookback = spec.get("lookback_days", 3)
    if isinstance(lookback, bool) or not isinstance(lookback, int):
        raise ConfigError(f"{where}: lookback_days must be a whole number, not {lookback!r}")
    if not 0 <= lookback <= MAX_LOOKBACK_DAYS:
        raise ConfigError(f"{where}: lookback_days must be 0..{MAX_LOOKBACK_DAYS}, not {lookback}")
    zone_name = _string(spec, "timezone", where) or "UTC"
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{where}: unknown timezone {zone_name!r} (e.g. 'Europe/Paris')"
        ) from None
    query = _string(spec, "query", where)
    if "query" in spec and not query:
        raise ConfigError(f"{where}: query must not be empty")
    name = _string(spec, "name", where) or _default_name(kind, spec, base_url, query)
    if path is not None and not _fixed_part(path).exists():
        raise ConfigError(f"{where}: path {spec['path']!r} does not exist")
    options = SourceOptions(kind, name, path, base_url, lookback, zone, query)
    if kind in _KIND_OPTIONS:
        options = _KIND_OPTIONS[kind](options, spec, where)
    return SOURCE_KINDS[kind](options)


def _arxiv_options(options: SourceOptions, spec: Mapping[str, object], where: str) -> SourceOptions:
    """`categories` (required without `path`) and `min_delay` of an arXiv source."""
    raw = spec.get("categories")
    categories: list[str] = []
    if raw is not None:
        if not isinstance(raw, list) or not all(isinstance(c, str) for c in raw):
            raise ConfigError(f"{where}: categories must be a list of strings, not {raw!r}")
        for text in raw:
            category = text.strip()
            if not arxiv.is_arxiv_category(category):
                raise ConfigError(
                    f"{where}: categories: {text!r} is not an arXiv category "
                    "(e.g. 'cs.CL', 'math.AG', 'astro-ph.GA', 'hep-th')"
                )
            if category not in categories:
                categories.append(category)
    if options.path is None and not categories:
        raise ConfigError(
            f"{where}: kind 'arxiv' needs 'categories' (e.g. [\"cs.CL\", \"cs.LG\"]) or a 'path'"
        )
    delay = spec.get("min_delay", arxiv.DEFAULT_MIN_DELAY)
    if isinstance(delay, bool) or not isinstance(delay, int | float):
        raise ConfigError(f"{where}: min_delay must be a number of seconds, not {delay!r}")
    if not 0 <= delay <= MAX_MIN_DELAY:
        raise ConfigError(f"{where}: min_delay must be 0..{MAX_MIN_DELAY:.0f} seconds, not {delay}")
    return arxiv.ArxivOptions(
        options.kind,
        options.name,
        options.path,
        options.base_url,
        options.lookback_days,
        options.timezone,
        options.query,
        categories=tuple(categories),
        min_delay=float(delay),
    )


# Kinds with keys of their own: they turn the common options into their own options type.
_KIND_OPTIONS: dict[str, Callable[[SourceOptions, Mapping[str, object], str], SourceOptions]] = {
    "arxiv": _arxiv_options
}


def _string(spec: Mapping[str, object], key: str, where: str) -> str | None:
    value = spec.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be a string, not {value!r}")
    return value.strip()


def _path(spec: Mapping[str, object], config_dir: Path, where: str) -> Path | None:
    if "path" not in spec:
        return None
    raw = _string(spec, "path", where)
    if not raw:
        raise ConfigError(f"{where}: path must not be empty")
    path = Path(raw).expanduser()
    return path if path.is_absolute() else config_dir / path


def _fixed_part(path: Path) -> Path:
    """A plain path itself; for a glob, the folder before its first wildcard."""
    parts = path.parts
    for index, part in enumerate(parts):
        if any(char in part for char in "*?["):
            return Path(*parts[:index])
    return path


def _default_name(kind: str, spec: Mapping[str, object], base_url: str, query: str | None) -> str:
    if "path" in spec:
        return f"{kind} {spec['path']}"
    categories = spec.get("categories")
    if isinstance(categories, list) and categories:
        return f"{kind} {'+'.join(str(c).strip() for c in categories)}"
    if query:
        return f"{kind} {base_url} q={query}"
    return f"{kind} {base_url}"


# Saved pages by file name: the parser each kind of file needs.
_PARSERS_BY_SUFFIX: dict[str, Callable[[bytes, str, date | None], list[Paper]]] = {
    ".json": lambda data, where, today: hf_api.parse_daily_papers(data, where),
    ".html": lambda data, where, today: hf_html.parse_papers_html(data, where),
    ".htm": lambda data, where, today: hf_html.parse_papers_html(data, where),
    ".txt": lambda data, where, today: text_dump.parse_text_dump(data, where, today=today),
    ".xml": lambda data, where, today: arxiv.parse_arxiv_feed(data, where),
    ".rss": lambda data, where, today: arxiv.parse_arxiv_feed(data, where),
    ".atom": lambda data, where, today: arxiv.parse_arxiv_feed(data, where),
}


def parse_saved_page(path: Path, *, today: date | None = None) -> list[Paper]:
    """Papers of one saved page of any kind the sources read, chosen by its suffix.

    `today` dates a text dump without a date of its own (see `parse_text_dump`). A page
    with some unreadable items, or cut off mid-paper, gives the readable ones; anything
    else that is wrong raises SourceError naming the file.
    """
    parse = _PARSERS_BY_SUFFIX.get(path.suffix.lower(), _PARSERS_BY_SUFFIX[".txt"])
    try:
        return parse(path.read_bytes(), str(path), today)
    except PartialPageError as exc:
        return list(exc.papers)
    except OSError as exc:
        raise SourceError(str(path), f"cannot read: {exc.strerror or exc}") from None
