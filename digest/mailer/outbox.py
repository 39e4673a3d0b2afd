"""The mailer used when no SMTP server is configured: one .eml file per message."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from email.message import EmailMessage
from email.utils import parseaddr, parsedate_to_datetime
from pathlib import Path

from digest.config import Settings
from digest.errors import TemporarySendError

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]+")


class OutboxMailer:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboxMailer:
        return cls(settings.outbox_dir)

    @property
    def description(self) -> str:
        return f"{self.folder}/"

    async def send(self, message: EmailMessage) -> str:
        """Write atomically (temp file, then rename) so a reader never sees half a message."""
        recipient = parseaddr(str(message["To"]))[1] or "unknown"
        sent = parsedate_to_datetime(str(message["Date"])) if message["Date"] else None
        stamp = f"{sent:%Y%m%d-%H%M%S}-" if sent else ""
        unique = hashlib.sha256(str(message["Message-ID"]).encode()).hexdigest()[:8]
        name = f"{_UNSAFE.sub('_', recipient)}-{stamp}{unique}.eml"
        target = self.folder / name
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".eml")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(message.as_bytes())
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise TemporarySendError(f"outbox {self.folder}: {exc.strerror or exc}") from None
        return str(target)
