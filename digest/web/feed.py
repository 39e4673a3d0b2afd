"""A subscriber's digests as an Atom feed (RFC 4287): one entry per paper sent. Pure.

Entry ids are permanent (the subscriber and the paper: a paper reaches a subscriber once),
so a feed reader never shows a paper twice. The feed carries no email address: it may end
up in a shared reader.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime

from digest.render import words
from digest.store import SentPaper

ATOM = "http://www.w3.org/2005/Atom"
MEDIA_TYPE = "application/atom+xml; charset=utf-8"
AUTHORS_SHOWN = 20
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # `updated` of a feed with no entry yet
# Characters XML 1.0 does not allow, even escaped (abstracts do carry some).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

ET.register_namespace("", ATOM)


def atom_feed(email: str, sent: Sequence[SentPaper], self_url: str) -> bytes:
    """The feed of these papers (newest first), as UTF-8 bytes."""
    feed = ET.Element(f"{{{ATOM}}}feed")
    _text(feed, "id", _urn(f"paper-digest:feed:{email.casefold()}"))
    _text(feed, "title", "Your paper digest")
    _text(feed, "subtitle", "The papers of your paper-digest emails, with why each was picked.")
    _text(feed, "updated", _when(max((s.sent_at for s in sent), default=EPOCH)))
    ET.SubElement(
        feed, f"{{{ATOM}}}link", rel="self", type="application/atom+xml", href=_clean(self_url)
    )
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    _text(author, "name", "paper-digest")
    _text(feed, "generator", "paper-digest")
    for item in sent:
        feed.append(_entry(email, item))
    data: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return data


def _entry(email: str, item: SentPaper) -> ET.Element:
    paper = item.paper
    entry = ET.Element(f"{{{ATOM}}}entry")
    _text(entry, "id", _urn(f"paper-digest:{email.casefold()}:{paper.key}"))
    _text(entry, "title", paper.title)
    ET.SubElement(
        entry, f"{{{ATOM}}}link", rel="alternate", type="text/html", href=words.title_url(paper)
    )
    if paper.url != words.title_url(paper):
        ET.SubElement(entry, f"{{{ATOM}}}link", rel="related", href=_clean(paper.url))
    _text(entry, "published", _when(item.sent_at))
    _text(entry, "updated", _when(item.sent_at))
    for name in paper.authors[:AUTHORS_SHOWN]:
        _text(ET.SubElement(entry, f"{{{ATOM}}}author"), "name", name)
    if not paper.authors:  # every entry needs an author; the feed's would do, but say so
        _text(ET.SubElement(entry, f"{{{ATOM}}}author"), "name", "unknown authors")
    for category in paper.categories:
        ET.SubElement(entry, f"{{{ATOM}}}category", term=_clean(category))
    why = words.why_text(item.why)
    lines = [f"Why: {why}" if why else "", words.excerpt(paper)]
    lines.append(f"In your digest of {item.issue_date:%d %B %Y}.")
    _text(entry, "summary", "\n\n".join(line for line in lines if line)).set("type", "text")
    return entry


def _text(parent: ET.Element, name: str, value: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM}}}{name}")
    element.text = _clean(value)
    return element


def _clean(text: str) -> str:
    return _NOT_XML.sub("", text)


def _when(moment: datetime) -> str:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _urn(name: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, name).urn
