"""TEMPORARY: lets pipeline.py keep calling `mailer.send(EmailMessage)` while it moves to
`OutgoingMessage`. Delete this module, and the `EmailMessage` branches that call it, then.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import parseaddr

from digest.errors import SendError
from digest.models import OutgoingMessage


def as_outgoing(message: EmailMessage) -> OutgoingMessage:
    """The envelope and CRLF bytes of a message built with `email`."""
    data = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    return OutgoingMessage(
        message_id=str(message["Message-ID"] or ""),
        sender=parseaddr(str(message["From"] or ""))[1],
        recipient=parseaddr(str(message["To"] or ""))[1],
        data=data,
    )


def legacy_error(error: SendError) -> SendError:
    """The error text the old summary printed: `SMTP 451: ...` (without the server's name)."""
    if error.code is None:
        return error
    return type(error)(f"SMTP {error.code}: {error.reply}", code=error.code, reply=error.reply)
