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
    """The mailer did not accept a message."""


class TemporarySendError(SendError):
    """Worth retrying later (connection refused, 4xx reply)."""


class PermanentSendError(SendError):
    """Retrying will not help (5xx reply, bad recipient)."""
