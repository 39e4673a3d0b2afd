"""A real SMTP server for tests: aiosmtpd handlers that record, or misbehave on purpose."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class RecordingHandler:
    """Accepts every message and keeps it, parsed, for the test to inspect."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.raw: list[bytes] = []  # exactly the bytes received, after un-dot-stuffing
        self.helo_names: list[str] = []  # the name each connection gave in EHLO/HELO
        self.quits = 0
        self._parsed: list[EmailMessage] = []

    @property
    def messages(self) -> list[EmailMessage]:
        """What was received, parsed (when asked: parsing in the server thread is slow)."""
        for raw in self.raw[len(self._parsed) :]:
            parsed = message_from_bytes(raw, policy=policy.default)
            assert isinstance(parsed, EmailMessage)
            self._parsed.append(parsed)
        return list(self._parsed)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        self.raw.append(raw)
        if session.host_name is not None:
            self.helo_names.append(session.host_name)
        return "250 Message accepted for delivery"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.quits += 1
        return "221 Bye"


class RefusingHandler(RecordingHandler):
    """Answers DATA with a fixed reply, e.g. a temporary 451 or a permanent 554."""

    def __init__(self, reply: str) -> None:
        super().__init__()
        self.reply = reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return self.reply


class ScriptedHandler(RecordingHandler):
    """Misbehaves for chosen addresses, accepts the rest.

    `rules[address] = (stage, action)`: the stage is "MAIL" (matched against the sender),
    "RCPT" or "DATA" (against the recipient); the action a reply such as
    "451 4.3.0 Try again later", "drop" (close the connection instead of replying) or
    "hang" (never reply; the server gives up when the client hangs up).
    """

    def __init__(self, rules: Mapping[str, tuple[str, str]] | None = None) -> None:
        super().__init__()
        self.rules = dict(rules or {})

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if action := self._action("MAIL", address):
            return await _act(server, action)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if action := self._action("RCPT", address):
            return await _act(server, action)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if action := self._action("DATA", envelope.rcpt_tos[0]):
            return await _act(server, action)
        return await super().handle_DATA(server, session, envelope)

    def _action(self, stage: str, address: str) -> str | None:
        rule = self.rules.get(address)
        return rule[1] if rule and rule[0] == stage else None


async def _act(server: SMTP, action: str) -> str:
    if action == "drop":
        assert server.transport is not None
        server.transport.close()
    if action in {"drop", "hang"}:
        await asyncio.Event().wait()  # cancelled by aiosmtpd when the connection goes
    return action


class CountingController(Controller):
    """A Controller that counts the SMTP connections made to it (`connections`)."""

    def __init__(self, handler: Any, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.connections = 0

    def factory(self) -> SMTP:
        self.connections += 1
        smtp = super().factory()  # type: ignore[no-untyped-call]
        assert isinstance(smtp, SMTP)
        return smtp

    def start(self) -> None:
        super().start()
        self.connections = 0  # not the probe that start() makes


@contextmanager
def serve(handler: Any, **smtp_options: Any) -> Iterator[CountingController]:
    """A counting SMTP server on 127.0.0.1 for the duration of the block."""
    controller = CountingController(handler, hostname="127.0.0.1", port=free_port(), **smtp_options)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


def send_through(monkeypatch: pytest.MonkeyPatch, controller: Controller) -> None:
    """Point digest's DIGEST_SMTP_* settings at this test server (plain SMTP)."""
    monkeypatch.setenv("DIGEST_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("DIGEST_SMTP_PORT", str(controller.port))
    monkeypatch.setenv("DIGEST_SMTP_SECURITY", "none")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
