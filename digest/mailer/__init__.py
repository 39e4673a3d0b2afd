"""How a finished message leaves: a small protocol and the implementations picked by config.

    async with make_mailer(settings) as mailer:       # opens the SMTP pool (lazily)
        where = await mailer.send(outgoing_message)     # from up to `mailer.concurrency` tasks

`send` raises `TemporarySendError` (retry later) or `PermanentSendError` (give up); both
carry the server's `code` (or None) and `reply`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, Self

from digest.config import Settings
from digest.mailer.outbox import OutboxMailer
from digest.mailer.signing import DkimSigner, DkimSigningMailer
from digest.mailer.smtp import SmtpMailer
from digest.models import OutgoingMessage


class Mailer(Protocol):
    """Delivers messages; `send` is safe to call from many tasks at once."""

    @property
    def description(self) -> str:
        """Where mail goes, for humans: "outbox/" or "smtp://host:587"."""
        ...

    @property
    def concurrency(self) -> int:
        """How many sends may usefully be in flight at once (the SMTP pool's size)."""
        ...

    async def __aenter__(self) -> Self:
        """Open (connections are made lazily, by the sends that need them)."""
        ...

    async def __aexit__(self, *exc: object) -> None:
        """Close every connection, with a polite QUIT; never raises."""
        ...

    async def send(self, message: OutgoingMessage) -> str:
        """Deliver; return where this message went (a file path, the server's reply).

        Raises TemporarySendError or PermanentSendError.
        """
        ...


MAILERS: dict[str, Callable[[Settings], Mailer]] = {
    "outbox": OutboxMailer.from_settings,
    "smtp": SmtpMailer.from_settings,
}


def make_mailer(settings: Settings) -> Mailer:
    """The mailer the settings name ("auto": smtp with DIGEST_SMTP_HOST, else the outbox),
    wrapped in DKIM signing when DIGEST_DKIM_* are set."""
    kind = settings.mailer
    if kind == "auto":
        kind = "smtp" if settings.smtp_host else "outbox"
    mailer = MAILERS[kind](settings)
    signer = DkimSigner.from_settings(settings)
    return DkimSigningMailer(mailer, signer) if signer else mailer


__all__ = [
    "MAILERS",
    "DkimSigner",
    "DkimSigningMailer",
    "Mailer",
    "OutboxMailer",
    "SmtpMailer",
    "make_mailer",
]
