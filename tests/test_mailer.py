"""Both mailers through the same contract; SMTP against a real aiosmtpd server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from smtp_server import RecordingHandler, RefusingHandler, free_port

from digest.errors import PermanentSendError, TemporarySendError
from digest.mailer.outbox import OutboxMailer
from digest.mailer.smtp import SmtpMailer


def message(to: str = "ada@example.org") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "digest@example.org"
    msg["To"] = to
    msg["Subject"] = "3 new papers on transfer learning"
    msg["Message-ID"] = "<abc.123@example.org>"
    msg.set_content("plain ünïcode\n.leading dot line\n")
    msg.add_alternative("<p>html</p>", subtype="html")
    return msg


def test_outbox_writes_one_parseable_eml(tmp_path: Path) -> None:
    mailer = OutboxMailer(tmp_path / "outbox")
    where = asyncio.run(mailer.send(message()))
    files = list((tmp_path / "outbox").iterdir())
    assert [str(f) for f in files] == [where]
    assert files[0].suffix == ".eml" and "ada@example.org" in files[0].name
    parsed = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert parsed["Subject"] == "3 new papers on transfer learning"


def test_outbox_unwritable_folder_is_a_temporary_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(TemporarySendError, match="outbox"):
        asyncio.run(OutboxMailer(blocker / "outbox").send(message()))


def test_smtp_delivers_to_a_real_server(
    smtp_server: tuple[Controller, RecordingHandler],
) -> None:
    controller, handler = smtp_server
    mailer = SmtpMailer("127.0.0.1", controller.port, security="none")
    asyncio.run(mailer.send(message()))
    (received,) = handler.messages
    assert received["Subject"] == "3 new papers on transfer learning"
    assert handler.envelopes[0].rcpt_tos == ["ada@example.org"]
    body = received.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert ".leading dot line" in body and "ünïcode" in body


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("451 4.3.0 Try again later", TemporarySendError),
        ("554 5.7.1 Message rejected", PermanentSendError),
    ],
)
def test_smtp_replies_map_to_temporary_or_permanent(
    smtp_server_factory: Callable[[RecordingHandler], Controller],
    reply: str,
    error: type[Exception],
) -> None:
    controller = smtp_server_factory(RefusingHandler(reply))
    mailer = SmtpMailer("127.0.0.1", controller.port, security="none")
    with pytest.raises(error, match=reply.split()[0]):
        asyncio.run(mailer.send(message()))


def test_smtp_connection_refused_is_temporary() -> None:
    mailer = SmtpMailer("127.0.0.1", free_port(), security="none", timeout=5)
    with pytest.raises(TemporarySendError, match=r"smtp://127\.0\.0\.1"):
        asyncio.run(mailer.send(message()))
