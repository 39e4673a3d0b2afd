"""One exception tree. Every message names its subject (file, line, key, URL, subscriber)."""

from __future__ import annotations


class DigestError(Exception):
    """Base of every error the project expects; the CLI prints it as one line."""

    exit_code = 1


class ConfigError(DigestError):
    exit_code = 2


class InputError(DigestError):
    """A file named on the command line cannot be used."""

    exit_code = 2


class SourceError(DigestError):
    """A page or response could not be read; `where` is a file path or URL."""

    def __init__(self, where: str, reason: str, line: int | None = None) -> None:
        self.where = where
        self.reason = reason
        self.line = line
        place = f"{where}: line {line}" if line is not None else where
        super().__init__(f"{place}: {reason}")


class StoreError(DigestError):
    pass


class SendError(DigestError):
    """The mailer did not accept a message.

    `code` is the server's reply code when there was a reply (421, 451, 550, ...), else
    None; `reply` is the server's words, or what went wrong when it said nothing (a timeout,
    a dropped connection). The message (`str(error)`) names where the mail was going.
    """

    def __init__(self, message: str, *, code: int | None = None, reply: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reply = reply or message


class TemporarySendError(SendError):
    """Worth retrying later: a 4xx reply, a timeout, a refused or dropped connection."""


class PermanentSendError(SendError):
    """Retrying will not help: a 5xx reply (e.g. 550 recipient refused)."""
