"""How a rendered digest leaves: a small protocol and the implementations picked by config."""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage
from typing import Protocol

from digest.config import Settings
from digest.mailer.outbox import OutboxMailer
from digest.mailer.smtp import SmtpMailer


class Mailer(Protocol):
    """Delivers one message or raises `SendError` (temporary or permanent)."""

    @property
    def description(self) -> str:
        """Where mail goes, for humans: "outbox/" or "smtp://host:587"."""
        ...

    async def send(self, message: EmailMessage) -> str:
        """Deliver; return where this message went (a file path, a server reply)."""
        ...


MAILERS: dict[str, Callable[[Settings], Mailer]] = {
    "outbox": OutboxMailer.from_settings,
    "smtp": SmtpMailer.from_settings,
}


def make_mailer(settings: Settings) -> Mailer:
    kind = settings.mailer
    if kind == "auto":
        kind = "smtp" if settings.smtp_host else "outbox"
    return MAILERS[kind](settings)
