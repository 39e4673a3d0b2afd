"""MIME by hand: a multipart/alternative message, plain text first, as CRLF bytes.

Bodies are UTF-8, sent as they are (7bit or 8bit) unless a line would reach 998 octets,
then quoted-printable. Headers are ASCII, non-ASCII words as RFC 2047 encoded-words
(an internationalised address itself stays UTF-8, RFC 6532), folded below 78 columns
where spaces allow; every header value is stripped of CR/LF first, so no text of a
paper or a subscriber can add a header. The boundary comes from a seed (the
Message-ID), so the same message is always the same bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from datetime import datetime
from email.utils import format_datetime

from digest.render.words import clean_header

_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]*")
LINE_LIMIT = 990  # octets before CRLF: RFC 5322 allows 998
_LONG_LINE = re.compile(rb"\n[^\n]{%d}" % LINE_LIMIT)  # tried at line starts only: linear
_WORD_BYTES = 45  # base64 of 45 bytes is 60 characters: 72 with "=?utf-8?b?...?="
FOLD = 78
NAME_CHARS = 100


def encoded_words(text: str) -> list[str]:
    """RFC 2047 `=?utf-8?b?...?=` words, each under 76 characters, cut between characters."""
    out: list[str] = []
    chunk = bytearray()
    for char in text:
        data = char.encode("utf-8")
        if len(chunk) + len(data) > _WORD_BYTES:
            out.append(_word(bytes(chunk)))
            chunk.clear()
        chunk += data
    if chunk:
        out.append(_word(bytes(chunk)))
    return out


def _word(data: bytes) -> str:
    return "=?utf-8?b?" + base64.b64encode(data).decode("ascii") + "?="


def header(name: str, value: str) -> str:
    """An unstructured header line (Subject), folded, CRLF-terminated."""
    value = clean_header(value)
    if value.isascii():
        folded = _fold(name, value.split(" "))
        if all(len(line) < 990 for line in folded.split("\r\n")):
            return folded
    return _fold(name, encoded_words(value))


def _fold(name: str, tokens: Sequence[str]) -> str:
    """Tokens joined by spaces; a line break (CRLF + space) replaces a space near 78."""
    lines: list[str] = []
    line = f"{name}:"
    for token in tokens:
        if len(line) + 1 + len(token) > FOLD and line.strip() and not line.endswith(":"):
            lines.append(line)
            line = ""
        line += " " + token
    lines.append(line)
    return "\r\n".join(lines) + "\r\n"


def address(name: str, addr: str) -> str:
    """A mailbox for From/To: `Name <addr>`, the name quoted or encoded as it needs."""
    addr = "".join(clean_header(addr).split()).strip("<>")
    name = clean_header(name)[:NAME_CHARS].strip()
    if not name:
        return addr
    if not name.isascii():
        return " ".join(encoded_words(name)) + f" <{addr}>"
    if _ATEXT.fullmatch(name):
        return f"{name} <{addr}>"
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}" <{addr}>'


def address_header(name: str, mailbox: str) -> str:
    """From/To, folded between encoded-words when long."""
    return _fold(name, mailbox.split(" "))


def date_header(when: datetime) -> str:
    return f"Date: {format_datetime(when)}\r\n"


def list_unsubscribe(https: str | None, mailto: str | None) -> str:
    """`List-Unsubscribe: <https://...>, <mailto:...>` (RFC 2369) and, with an https URL,
    `List-Unsubscribe-Post` (RFC 8058 one-click); unusable URLs are left out."""
    web = header_url(https) if https and https.startswith("https://") else None
    mail = header_url(mailto) if mailto and mailto.startswith("mailto:") else None
    usable = [u for u in (web, mail) if u]
    if not usable:
        return ""
    lines = _fold("List-Unsubscribe", [f"<{u}>," for u in usable[:-1]] + [f"<{usable[-1]}>"])
    if web:
        lines += "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    return lines


def header_url(url: str) -> str | None:
    """A URL fit for a header between angle brackets, or None."""
    url = clean_header(url)
    if not url or any(c in url for c in ' <>"') or len(url) > 900 or not url.isascii():
        return None
    return url


def body(text: str) -> tuple[bytes, str]:
    """(CRLF bytes, Content-Transfer-Encoding) of one part."""
    data = text.encode("utf-8")
    if not data.endswith(b"\n"):
        data += b"\n"
    if data.find(b"\n") > LINE_LIMIT or _LONG_LINE.search(data):
        data = binascii.b2a_qp(data, istext=True)
        encoding = "quoted-printable"
    else:
        encoding = "7bit" if data.isascii() else "8bit"
    return data.replace(b"\n", b"\r\n"), encoding


def boundary_for(seed: str, *parts: bytes) -> str:
    digest = hashlib.sha256(seed.encode("utf-8", "replace")).hexdigest()
    for n in range(100):
        candidate = f"=_digest_{digest[n % 40 : n % 40 + 24]}{n or ''}"
        if not any(candidate.encode("ascii") in part for part in parts):
            return candidate
    raise ValueError("no boundary absent from the message")  # pragma: no cover


def alternative(headers: str, text: str, html: str, seed: str) -> bytes:
    """The whole message: `headers` (CRLF lines), then text/plain and text/html parts."""
    text_data, text_encoding = body(text)
    html_data, html_encoding = body(html)
    boundary = boundary_for(seed, text_data, html_data)
    mark = f"--{boundary}\r\n".encode("ascii")
    return b"".join(
        (
            headers.encode("utf-8"),
            b"MIME-Version: 1.0\r\n",
            f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'.encode("ascii"),
            mark,
            b'Content-Type: text/plain; charset="utf-8"\r\n',
            f"Content-Transfer-Encoding: {text_encoding}\r\n\r\n".encode("ascii"),
            text_data,
            b"\r\n",  # the line break before a boundary belongs to the boundary
            mark,
            b'Content-Type: text/html; charset="utf-8"\r\n',
            f"Content-Transfer-Encoding: {html_encoding}\r\n\r\n".encode("ascii"),
            html_data,
            b"\r\n",
            f"--{boundary}--\r\n".encode("ascii"),
        )
    )
