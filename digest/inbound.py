"""Mail that comes back: delivery-status notifications (RFC 3464) and unsubscribe requests.

Pure: bytes in, values out. `digest bounces` and `digest unsubscribe-mail` read the
messages (stdin, a file, a Maildir) and apply what these functions find.

A bounce is *hard* when the address itself is bad: Action `failed` with a 5.x.x status,
except a full mailbox (5.2.2), a message too big (5.2.3, 5.3.4) and policy refusals
(5.7.x, often a spam filter's verdict on one message). Everything else (4.x.x, `delayed`)
is soft: recorded, never counted towards suppression.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr

# Permanent failures about the message or a full mailbox, not about the address.
NOT_THE_ADDRESS = ("5.2.2", "5.2.3", "5.3.4", "5.7.")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_MESSAGE_ID = re.compile(r"<[^<>\s]+@[^<>\s]+>")
_AUTO_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}
_AUTO_HEADERS = ("x-autoreply", "x-autorespond", "x-auto-response-suppress")


@dataclass(frozen=True, slots=True)
class BouncedRecipient:
    """One per-recipient block of a notification."""

    final: str  # Final-Recipient: where the mail server finally tried
    original: str  # Original-Recipient (our address, when a forward intervened), or ""
    action: str  # failed, delayed, delivered, relayed, expanded
    status: str  # RFC 3463 code, e.g. 5.1.1
    diagnostic: str  # Diagnostic-Code, e.g. "550 5.1.1 User unknown"

    @property
    def hard(self) -> bool:
        return (
            self.action == "failed"
            and self.status.startswith("5.")
            and not self.status.startswith(NOT_THE_ADDRESS)
        )

    @property
    def bounced(self) -> bool:
        """Not delivered (yet): failed or delayed."""
        return self.action in ("failed", "delayed")


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """A delivery-status notification."""

    report_id: str  # a hash of its Message-ID (else of its bytes): 64 hex characters
    recipients: tuple[BouncedRecipient, ...]
    original_message_id: str | None  # the Message-ID of the message that bounced


def parse_dsn(data: bytes) -> DeliveryReport | None:
    """The notification in `data`, or None when it is not one (an auto-reply, a letter)."""
    message = _parse(data)
    status_part = next(
        (p for p in message.walk() if p.get_content_type() == "message/delivery-status"), None
    )
    if status_part is None:
        return None
    blocks = _blocks(status_part)
    if not blocks:
        return None
    per_message, per_recipient = blocks[0], blocks[1:]
    recipients = tuple(
        BouncedRecipient(
            final=_address(block.get("final-recipient", "")),
            original=_address(block.get("original-recipient", "")),
            action=_first_word(block.get("action", "")),
            status=_status(block.get("status", "")),
            diagnostic=_diagnostic(block.get("diagnostic-code", "")),
        )
        for block in per_recipient
        if block.get("final-recipient") or block.get("original-recipient")
    )
    own_id = str(message.get("message-id", "")).strip()
    report_id = hashlib.sha256(own_id.encode() if own_id else data).hexdigest()
    return DeliveryReport(report_id, recipients, _original_id(message, per_message))


@dataclass(frozen=True, slots=True)
class MailRequest:
    """A message sent to the unsubscribe address."""

    sender: str  # the From address, bare ("" when there is not exactly one)
    text: str  # subject and the start of the plain-text body: where a token may be
    asks: bool  # the subject (or the body's first line) says "unsubscribe"
    automatic: str  # why this is no person's request (auto-reply, bounce), or ""


def parse_request(data: bytes) -> MailRequest:
    message = _parse(data)
    senders = [addr for _, addr in getaddresses(message.get_all("from", [])) if addr]
    sender = senders[0] if len(senders) == 1 else ""
    subject = " ".join(str(message.get("subject", "")).split())
    body = ""
    if isinstance(message, EmailMessage):
        part = message.get_body(preferencelist=("plain",))
        if part is not None:
            try:
                body = str(part.get_content())[:4000]
            except (LookupError, ValueError):
                body = ""
    first_line = next((line.strip() for line in body.splitlines() if line.strip()), "")
    asks = "unsubscribe" in subject.casefold() or first_line.casefold().startswith("unsubscribe")
    return MailRequest(sender, f"{subject}\n{body}", asks, _automatic(message))


def _automatic(message: Message) -> str:
    auto = str(message.get("auto-submitted", "no")).strip().casefold()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    if message.get_content_type() == "multipart/report":
        return "a delivery report"
    precedence = str(message.get("precedence", "")).strip().casefold()
    if precedence in _AUTO_PRECEDENCE:
        return f"Precedence: {precedence}"
    for name in _AUTO_HEADERS:
        if message.get(name) is not None:
            return f"{name} header"
    if not parseaddr(str(message.get("return-path", "x")))[1] and message.get("return-path"):
        return "empty Return-Path (a bounce)"
    return ""


def _parse(data: bytes) -> Message:
    return message_from_bytes(data.replace(b"\r\n", b"\n"), policy=policy.default)


def _blocks(part: Message) -> list[Message]:
    """The field blocks of a message/delivery-status part (per message, then recipients)."""
    payload = part.get_payload()
    if isinstance(payload, list) and all(isinstance(p, Message) for p in payload):
        return list(payload)
    # A part the parser kept as text (odd encodings): split on blank lines ourselves.
    raw = part.get_payload(decode=True)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(payload)
    chunks = re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip())
    return [_parse(chunk.encode() + b"\n\n") for chunk in chunks if chunk.strip()]


def _original_id(message: Message, per_message: Message) -> str | None:
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                found = inner[0].get("message-id")
                if found:
                    return _message_id(str(found))
        elif kind == "text/rfc822-headers":
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes):
                found = _parse(raw).get("message-id")
                if found:
                    return _message_id(str(found))
    for name in ("x-original-message-id", "original-message-id"):
        if per_message.get(name):
            return _message_id(str(per_message[name]))
    return None


def _message_id(text: str) -> str | None:
    match = _MESSAGE_ID.search(text)
    return match.group(0) if match else None


def _address(field: str) -> str:
    """`rfc822; user@example.org` (or `rfc822;<user@example.org>`) -> the address."""
    kind, _, value = str(field).partition(";")
    if not value:
        value = kind
    elif kind.strip().casefold() != "rfc822":
        return ""
    return parseaddr(value.strip())[1] or value.strip().strip("<>")


def _status(field: str) -> str:
    match = _STATUS.search(str(field))
    return ".".join(match.groups()) if match else ""


def _first_word(field: str) -> str:
    words = str(field).split()
    return words[0].casefold() if words else ""


def _diagnostic(field: str) -> str:
    text = " ".join(str(field).split())
    kind, sep, rest = text.partition(";")
    return rest.strip() if sep and " " not in kind.strip() else text
