"""The mailer used when no SMTP server is configured: one .eml file per message.

`<outbox>/<recipient>-<YYYYmmdd-HHMMSS>-<8 hex>.eml`: the time is the message's own Date
header, the hex a hash of its Message-ID, so sending the same message again rewrites the
same file. Files are written atomically (a temporary file, then a rename), in a thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Self

from digest.config import Settings
from digest.errors import TemporarySendError
from digest.models import OutgoingMessage

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]+")
# The Date header with its folded continuation lines, at the start of a header line.
_DATE = re.compile(rb"^Date:[ \t]*([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)", re.IGNORECASE | re.MULTILINE)


class OutboxMailer:
    def __init__(self, folder: Path, *, concurrency: int = 4) -> None:
        self.folder = folder
        self._concurrency = concurrency

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboxMailer:
        return cls(settings.outbox_dir)

    @property
    def description(self) -> str:
        return f"{self.folder}/"

    @property
    def concurrency(self) -> int:
        return self._concurrency

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def send(self, message: OutgoingMessage) -> str:
        """Write the message's bytes; return the file's path."""
        target = self.folder / file_name(message)
        await asyncio.to_thread(self._write, target, message.data)
        return str(target)

    def _write(self, target: Path, data: bytes) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".eml")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise TemporarySendError(f"outbox {self.folder}: {reason}", reply=reason) from None


def file_name(message: OutgoingMessage) -> str:
    """`ada@example.org-20261122-063000-1f2e3d4c.eml` (no time part without a Date header)."""
    recipient = _UNSAFE.sub("_", message.recipient or "unknown")
    sent = date_header(message.data)
    stamp = f"{sent:%Y%m%d-%H%M%S}-" if sent else ""
    unique = hashlib.sha256(message.message_id.encode()).hexdigest()[:8]
    return f"{recipient}-{stamp}{unique}.eml"


def date_header(data: bytes) -> datetime | None:
    """The Date header of a message's bytes, read from its header block only."""
    end = data.find(b"\r\n\r\n")
    match = _DATE.search(data, 0, end if end >= 0 else len(data))
    if match is None:
        return None
    try:
        return parsedate_to_datetime(" ".join(match[1].decode("latin-1").split()))
    except (TypeError, ValueError, IndexError):
        return None
