"""The config file as text: where its tables are, what is wrong with its subscribers, and
edits that keep everything else (comments, layout) as it was. Used by `digest subscribers`.

tomlkit keeps comments but attaches the comment block above a table to the table before
it, and has no line numbers; so tables are found here by reading the lines, values are
written by tomlkit, and every edit is parsed again and compared with what was meant before
the file is replaced (atomically).
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit
from pydantic import ValidationError
from tomlkit.exceptions import TOMLKitError

from digest.config import _describe, _SubscriberModel, load_config, subscriber_label
from digest.errors import ConfigError

_HEADER = re.compile(r"^\s*\[(\[)?\s*([^\[\]#]+?)\s*\](\])?\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)\s*=""")


@dataclass(slots=True)
class _Table:
    """One `[name]` or `[[name]]` table of the file, by 0-based line numbers."""

    name: str
    array: bool
    header: int
    lead: int  # first line of the comment block right above the header (= header if none)
    # One past its last line: its last key (or value line), and the comments right after
    # it; comments after a blank line belong to what follows, not to this table.
    end: int = 0
    keys: dict[str, int] = field(default_factory=dict)


def _tables(lines: Sequence[str]) -> list[_Table]:
    """The tables of a TOML file, found by reading its lines (tomlkit keeps no line numbers).

    Lines inside multi-line arrays, inline tables and strings are skipped."""
    tables: list[_Table] = []
    depth, quote, gap = 0, "", False
    for number, line in enumerate(lines):
        inside = bool(depth or quote)
        stripped = line.strip()
        if not inside:
            header = _HEADER.match(line)
            if header and bool(header.group(1)) == bool(header.group(3)):
                lead = number
                floor = tables[-1].header + 1 if tables else 0
                while lead > floor and lines[lead - 1].lstrip().startswith("#"):
                    lead -= 1
                if tables:
                    tables[-1].end = min(tables[-1].end, lead)
                name = header.group(2).strip().strip("\"'")
                tables.append(_Table(name, bool(header.group(1)), number, lead, number + 1))
                gap = False
                continue
            key = _KEY.match(line)
            if key and tables:
                tables[-1].keys.setdefault(key.group(1).strip("\"'"), number)
        if tables:
            if not stripped and not inside:
                gap = True
            elif inside or not stripped.startswith("#") or not gap:
                tables[-1].end, gap = number + 1, False
        depth, quote = _advance(line, depth, quote)
    return tables


def _advance(line: str, depth: int, quote: str) -> tuple[int, str]:
    """Bracket depth and open multi-line string after `line`."""
    i = 0
    while i < len(line):
        if quote:
            if line.startswith(quote, i):
                i, quote = i + len(quote), ""
                continue
            i += 2 if quote in ('"', '"""') and line[i] == "\\" else 1
            continue
        char = line[i]
        if char == "#":
            break
        for opener in ('"""', "'''", '"', "'"):
            if line.startswith(opener, i):
                quote, i = opener, i + len(opener)
                break
        else:
            depth += char in "[{"
            depth -= char in "]}"
            i += 1
    if quote in ('"', "'"):
        quote = ""  # a one-line string cannot span lines
    return max(depth, 0), quote


# -- checking ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    line: int | None  # 1-based
    text: str

    def render(self, path: Path) -> str:
        return f"{path}:{self.line}: {self.text}" if self.line else f"{path}: {self.text}"


@dataclass(slots=True)
class Checked:
    problems: list[Problem]
    subscribers: list[dict[str, Any]]  # the tables as written
    lines: dict[str, int]  # casefolded email -> 1-based line of its table's header


def check(text: str) -> Checked:
    """Every subscriber table's first problem (unknown key, bad value, duplicate), with its
    line; the file is otherwise read by `load_config`, as every command does."""
    try:
        raw = tomlkit.parse(text).unwrap()
    except TOMLKitError as exc:
        return Checked([Problem(getattr(exc, "line", None), f"not valid TOML: {exc}")], [], {})
    tables = raw.get("subscribers", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        return Checked([Problem(None, "subscribers: expected [[subscribers]] tables")], [], {})
    spans = [t for t in _tables(text.splitlines()) if t.name == "subscribers" and t.array]
    if len(spans) != len(tables):
        spans = []  # not written as [[subscribers]] tables: no line numbers
    checked = Checked([], list(tables), {})
    first: dict[str, tuple[int, int | None]] = {}
    for index, table in enumerate(tables, start=1):
        span = spans[index - 1] if spans else None
        label = subscriber_label(index, table)
        try:
            model = _SubscriberModel.model_validate(table)
        except ValidationError as exc:
            loc = exc.errors()[0]["loc"]
            key = str(loc[0]) if loc else ""
            line = span.keys.get(key, span.header) if span else None
            checked.problems.append(Problem(_one_based(line), f"{label}: {_describe(exc)}"))
            continue
        email_line = _one_based(span.keys.get("email", span.header)) if span else None
        folded = model.email.casefold()
        if folded in first:
            other, other_line = first[folded]
            where = f"subscribers[{other}]" + (f", line {other_line}" if other_line else "")
            checked.problems.append(
                Problem(email_line, f"{label}: duplicate subscriber {model.email} (also {where})")
            )
            continue
        first[folded] = (index, email_line)
        checked.lines[folded] = span.header + 1 if span else 0
    return checked


def _one_based(line: int | None) -> int | None:
    return None if line is None else line + 1


def read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text: {exc}") from None


def replace(path: Path, text: str, expect: Callable[[dict[str, Any]], bool]) -> None:
    """Write `text` over `path` atomically, once it parses as a valid config and `expect`
    holds for what it holds."""
    if not expect(tomllib.loads(text)):
        raise ConfigError(f"{path}: the edit could not be made safely; the file is unchanged")
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        try:
            load_config(Path(temp))
        except ConfigError as exc:
            raise ConfigError(str(exc).replace(temp, str(path))) from None
        os.chmod(temp, path.stat().st_mode & 0o7777)
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def _names(comment_lines: Sequence[str], table: dict[str, Any]) -> bool:
    """Whether a comment block speaks of this subscriber (their address, name or local part)."""
    text = "".join(comment_lines).casefold()
    email = str(table.get("email", "")).casefold()
    words = [email, email.partition("@")[0], str(table.get("name", "")).casefold()]
    return any(len(w) > 1 and re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text) for w in words)


def _tidy(lines: list[str], joint: int, attached: bool) -> str:
    """The lines joined, with no run of blank lines left where a table was cut out (none
    at all when the text before the cut was attached to that table)."""
    before = joint
    while before > 0 and not lines[before - 1].strip() and not attached:
        before -= 1
    after = joint
    while after < len(lines) and not lines[after].strip():
        after += 1
    gap = ["\n"] if before > 0 and after < len(lines) and not attached else []
    return "".join(lines[:before] + gap + lines[after:])


def with_table(text: str, values: dict[str, Any]) -> tuple[str, int]:
    """`text` with a [[subscribers]] table of `values` after the last one (else at the end),
    and the 1-based line of its header."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    spans = [t for t in _tables(lines) if t.name == "subscribers" and t.array]
    at = spans[-1].end if spans else len(lines)
    while at > 0 and not lines[at - 1].strip():
        at -= 1  # before the blank lines that end the last table
    table = tomlkit.table()
    for key, value in values.items():
        table.add(key, value)
    document = tomlkit.document()
    aot = tomlkit.aot()
    aot.append(table)
    document.append("subscribers", aot)
    block = tomlkit.dumps(document).strip("\n").splitlines(keepends=False)
    new = [*(["\n"] if at > 0 else []), *(line + "\n" for line in block)]
    follow = lines[at:]
    if follow and follow[0].strip():
        new.append("\n")
    return "".join(lines[:at] + new + follow), at + (2 if at > 0 else 1)


def without_table(text: str, index: int, tables: Sequence[dict[str, Any]]) -> tuple[str, int, int]:
    """`text` without the `index`-th [[subscribers]] table (its lines, and the comment block
    right above it when that names the person), and the 1-based first and last lines cut.
    ValueError if the subscribers are not written as [[subscribers]] tables."""
    lines = text.splitlines(keepends=True)
    spans = [t for t in _tables(lines) if t.name == "subscribers" and t.array]
    if len(spans) != len(tables):
        raise ValueError("subscribers must be [[subscribers]] tables to be removed")
    span = spans[index]
    start = span.lead if _names(lines[span.lead : span.header], tables[index]) else span.header
    kept = lines[:start] + lines[span.end :]
    # A comment block kept right above the removed table now heads the next one.
    attached = start == span.header and start > 0 and bool(lines[start - 1].strip())
    return _tidy(kept, start, attached), start + 1, span.end
