"""Turn a digest into an email: Jinja2 templates, CSS inlined, MIME bytes built by hand.

- `words`: what the email says (subject, summary, authors, excerpts, why-lines);
- `templates`: the templates, rendered once per distinct content and cached, the
  subscriber's own fields filled in per message;
- `mime`: multipart/alternative bytes, plain text first, CRLF, RFC 2047 headers.

`MessageWriter(env, sender).write(digest, ...)` gives the bytes a mail server receives;
`render_message` gives the same message parsed, for previews and tests.
"""

from __future__ import annotations

from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr
from pathlib import Path

import jinja2

from digest.config import DEFAULT_TEMPLATES
from digest.errors import ConfigError
from digest.models import Digest
from digest.render import mime, templates
from digest.render.templates import TEMPLATES, Rendered, Renderer
from digest.render.words import clean_header, subject_for

__all__ = [
    "TEMPLATES",
    "MessageWriter",
    "Rendered",
    "Renderer",
    "clean_header",
    "make_environment",
    "render_message",
    "renderer_for",
    "sender_domain",
    "subject_for",
]


def make_environment(
    templates_dir: Path | None = None, *, postal_address: str | None = None
) -> jinja2.Environment:
    """Templates from `templates_dir` (DIGEST_TEMPLATES_DIR) first, else the bundled ones.

    An operator may override one file: the others come from the bundled set. A missing
    folder, a missing template or one that does not compile is a `ConfigError` now, at
    start-up, rather than a traceback halfway through a run. `postal_address` (the
    sender's postal or contact line, DIGEST_POSTAL_ADDRESS) is shown in every footer.
    """
    folders = [DEFAULT_TEMPLATES]
    if templates_dir is not None:
        if not templates_dir.is_dir():
            raise ConfigError(
                f"environment: DIGEST_TEMPLATES_DIR: {templates_dir}: no such templates folder"
            )
        folders.insert(0, templates_dir)
    return templates.make_environment(folders, postal_address=postal_address)


def renderer_for(env: jinja2.Environment) -> Renderer:
    """The renderer (and its caches) that belongs to this environment."""
    renderer = getattr(env, "digest_renderer", None)
    if not isinstance(renderer, Renderer):
        renderer = Renderer(env)
        env.extend(digest_renderer=renderer)
    return renderer


def sender_domain(sender: str) -> str:
    return clean_header(parseaddr(sender)[1].rpartition("@")[2]) or "localhost"


class MessageWriter:
    """Writes the messages of one sender; what does not change per message is done once."""

    def __init__(self, env: jinja2.Environment, sender: str) -> None:
        self.renderer = renderer_for(env)
        name, addr = parseaddr(clean_header(sender))
        self.domain = sender_domain(sender)
        self.envelope_sender = addr or f"digest@{self.domain}"
        self.head = mime.address_header("From", mime.address(name, self.envelope_sender))
        self.list_id = f"List-Id: Paper digest <digest.{self.domain}>\r\n"
        self._date: tuple[datetime, str] | None = None

    def write(self, digest: Digest, *, message_id: str, date: datetime) -> bytes:
        """The message as CRLF bytes; the same arguments always give the same bytes."""
        rendered = self.renderer.render(digest)
        return self.write_rendered(digest, rendered, message_id=message_id, date=date)

    def write_rendered(
        self, digest: Digest, rendered: Rendered, *, message_id: str, date: datetime
    ) -> bytes:
        subscriber = digest.subscriber
        links = digest.links
        headers = [
            self._date_header(date),
            self.head,
            mime.address_header("To", mime.address(subscriber.name, subscriber.email)),
            mime.header("Subject", rendered.subject),
            f"Message-ID: {clean_header(message_id)}\r\n",
            self.list_id,
        ]
        headers.append(mime.list_unsubscribe(links.unsubscribe, links.unsubscribe_mailto))
        return mime.alternative("".join(headers), rendered.text, rendered.html, message_id)

    def _date_header(self, date: datetime) -> str:
        # Messages planned together share their date: formatted once.
        if self._date is None or self._date[0] != date:
            self._date = (date, mime.date_header(date))
        return self._date[1]


def render_message(
    digest: Digest,
    env: jinja2.Environment,
    *,
    sender: str,
    now: datetime,
    message_id: str | None = None,
) -> EmailMessage:
    """The message for `digest`, parsed (text/plain first, text/html last), its lines
    ending in LF as Python's email package expects."""
    writer = MessageWriter(env, sender)
    ident = message_id or make_msgid(idstring="digest", domain=writer.domain)
    data = writer.write(digest, message_id=ident, date=now)
    parsed = message_from_bytes(data.replace(b"\r\n", b"\n"), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed
