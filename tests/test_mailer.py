"""The mailers: an SMTP pool against real aiosmtpd servers that misbehave on purpose, the
rate limit with a fake clock, the outbox, DKIM signatures checked by dkimpy."""

from __future__ import annotations

import asyncio
import base64
import functools
import re
import subprocess
from collections.abc import Sequence
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import dkim
import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from smtp_server import RecordingHandler, ScriptedHandler, free_port, serve

from digest.config import Settings
from digest.errors import ConfigError, PermanentSendError, SendError, TemporarySendError
from digest.mailer import DkimSigningMailer, Mailer, make_mailer
from digest.mailer.outbox import OutboxMailer
from digest.mailer.signing import DkimSigner
from digest.mailer.smtp import RateLimiter, SmtpMailer
from digest.models import OutgoingMessage

SENDER = "digest@example.org"


def outgoing(
    to: str = "ada@example.org", *, n: int = 0, sender: str = SENDER, body: str = ""
) -> OutgoingMessage:
    """A digest-like message (CRLF bytes) to `to`, with a Message-ID numbered `n`."""
    message_id = f"<digest.2026-11-22.{n}.ab12cd34@example.org>"
    data = (
        _template(sender, body).replace(b"@TO@", to.encode()).replace(b"@ID@", message_id.encode())
    )
    return OutgoingMessage(message_id, sender, to, data)


@functools.cache
def _template(sender: str, body: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Paper digest <{sender}>"
    msg["To"] = "@TO@"
    msg["Subject"] = "3 new papers on transfer learning"
    msg["Date"] = "Sun, 22 Nov 2026 06:30:00 +0100"
    msg["Message-ID"] = "@ID@"
    msg["List-Id"] = "Paper digest <digest.example.org>"
    msg.set_content(body or "plain ünïcode\n.leading dot line\n")
    msg.add_alternative("<p>html</p>", subtype="html")
    return msg.as_bytes(policy=policy.SMTP)


def smtp(port: int, **options: Any) -> SmtpMailer:
    options.setdefault("security", "none")
    options.setdefault("timeout", 5.0)
    return SmtpMailer("127.0.0.1", port, **options)


async def send_all(
    mailer: Mailer, messages: Sequence[OutgoingMessage]
) -> list[str | BaseException]:
    """Every message at once, as the delivery loop does; the results in order."""
    async with mailer:
        return await asyncio.gather(*(mailer.send(m) for m in messages), return_exceptions=True)


# --- the SMTP pool ---------------------------------------------------------------------


def test_pool_reuses_its_connections_for_many_messages() -> None:
    handler = RecordingHandler()
    with serve(handler) as server:
        messages = [outgoing(f"reader{i}@example.org", n=i) for i in range(200)]
        results = asyncio.run(send_all(smtp(server.port, pool_size=4), messages))
    assert all(isinstance(r, str) and r.startswith("smtp://127.0.0.1") for r in results)
    assert sorted(e.rcpt_tos[0] for e in handler.envelopes) == sorted(m.recipient for m in messages)
    assert 1 <= server.connections <= 4
    assert handler.quits == server.connections  # closing says QUIT on every connection


def test_message_bytes_arrive_unchanged() -> None:
    handler = RecordingHandler()
    message = outgoing(body="plain ünïcode\n.leading dot line\n" + "x" * 70 + "\n")
    with serve(handler) as server:
        asyncio.run(send_all(smtp(server.port), [message]))
    assert handler.raw == [message.data]
    assert handler.envelopes[0].mail_from == SENDER
    body = handler.messages[0].get_body(("plain",))
    assert body is not None and ".leading dot line" in body.get_content()
    assert not message.data.isascii() and "BODY=8BITMIME" in handler.envelopes[0].mail_options


def test_international_address_needs_smtputf8() -> None:
    handler = RecordingHandler()
    message = outgoing("jürgen@example.org")
    with serve(handler) as server:
        (sent,) = asyncio.run(send_all(smtp(server.port), [message]))
    with serve(RecordingHandler(), enable_SMTPUTF8=False) as ascii_only:
        (error,) = asyncio.run(send_all(smtp(ascii_only.port), [message]))
    assert isinstance(sent, str) and handler.envelopes[0].rcpt_tos == ["jürgen@example.org"]
    assert isinstance(error, PermanentSendError) and "SMTPUTF8" in str(error)


BAD = {
    "busy@example.org": ("RCPT", "451 4.2.1 Mailbox busy, try later"),
    "closing@example.org": ("RCPT", "421 4.3.2 Shutting down"),
    "nobody@example.org": ("RCPT", "550 5.1.1 No such user"),
    "later@example.org": ("DATA", "451 4.3.0 Try again later"),
    "spam@example.org": ("DATA", "554 5.7.1 Message rejected as spam"),
    "drop@example.org": ("DATA", "drop"),
    "hang@example.org": ("DATA", "hang"),
    "bounced@example.org": ("MAIL", "421 4.7.0 Too many messages from you"),  # a sender
}
EXPECTED: dict[str, tuple[type[SendError], int | None, str]] = {
    "busy@example.org": (TemporarySendError, 451, "Mailbox busy"),
    "closing@example.org": (TemporarySendError, 421, "Shutting down"),
    "nobody@example.org": (PermanentSendError, 550, "No such user"),
    "later@example.org": (TemporarySendError, 451, "Try again later"),
    "spam@example.org": (PermanentSendError, 554, "rejected as spam"),
    "drop@example.org": (TemporarySendError, None, "connection lost"),
    "hang@example.org": (TemporarySendError, None, "no reply within 0.5 s"),
    "bounced@example.org": (TemporarySendError, 421, "Too many messages"),
}


def bad_message(address: str, n: int) -> OutgoingMessage:
    if BAD[address][0] == "MAIL":
        return outgoing("someone@example.org", n=n, sender=address)
    return outgoing(address, n=n)


@pytest.mark.parametrize("address", sorted(EXPECTED))
def test_each_failure_is_classified_and_the_next_message_still_goes(address: str) -> None:
    handler = ScriptedHandler(BAD)
    with serve(handler) as server:
        mailer = smtp(server.port, pool_size=1, timeout=0.5)

        async def scenario() -> tuple[SendError, str]:
            async with mailer:
                with pytest.raises(SendError) as caught:
                    await mailer.send(bad_message(address, 1))
                return caught.value, await mailer.send(outgoing("ada@example.org", n=2))

        error, after = asyncio.run(scenario())
    kind, code, words = EXPECTED[address]
    assert type(error) is kind
    assert error.code == code
    assert words in error.reply and words in str(error)
    assert str(error).startswith(f"smtp://127.0.0.1:{server.port}: ")
    if code is not None:
        assert f"SMTP {code} " in str(error)
    assert after.startswith("smtp://127.0.0.1") and "accepted" in after
    assert [e.rcpt_tos for e in handler.envelopes] == [["ada@example.org"]]
    # A reply leaves the connection in use (after RSET), except a 421, which closes it;
    # a drop or a timeout discards it. Either way the next message went out.
    assert server.connections == (1 if code is not None and code != 421 else 2)


def test_failures_in_a_long_list_do_not_stop_the_rest() -> None:
    handler = ScriptedHandler(BAD)
    good = [outgoing(f"reader{i}@example.org", n=i) for i in range(60)]
    bad = [bad_message(address, 100 + i) for i, address in enumerate(sorted(BAD))]
    messages = good[:20] + bad[:4] + good[20:40] + bad[4:] + good[40:]
    with serve(handler) as server:
        results = asyncio.run(send_all(smtp(server.port, pool_size=4, timeout=0.5), messages))
    outcome = {
        (m.sender if m.sender != SENDER else m.recipient): r
        for m, r in zip(messages, results, strict=True)
    }
    for address, (kind, code, words) in EXPECTED.items():
        error = outcome.pop(address)
        assert isinstance(error, kind) and error.code == code and words in str(error), error
    assert all(isinstance(r, str) for r in outcome.values())
    assert sorted(e.rcpt_tos[0] for e in handler.envelopes) == sorted(m.recipient for m in good)
    # 4 to start with, and at most one new one after each of the 4 that close a connection.
    assert server.connections <= 4 + 4


def test_pool_reconnects_after_the_server_drops_it() -> None:
    handler = ScriptedHandler({"drop@example.org": ("DATA", "drop")})
    with serve(handler) as server:
        messages = [outgoing("a@example.org", n=1), outgoing("drop@example.org", n=2)]
        messages += [outgoing("b@example.org", n=3), outgoing("drop@example.org", n=4)]
        messages += [outgoing("c@example.org", n=5)]

        async def one_by_one() -> list[str | BaseException]:
            mailer = smtp(server.port, pool_size=1)
            results: list[str | BaseException] = []
            async with mailer:
                for message in messages:
                    try:
                        results.append(await mailer.send(message))
                    except SendError as exc:
                        results.append(exc)
            return results

        results = asyncio.run(one_by_one())
    assert [type(r).__name__ for r in results] == [
        "str",
        "TemporarySendError",
        "str",
        "TemporarySendError",
        "str",
    ]
    assert [e.rcpt_tos[0] for e in handler.envelopes] == [
        "a@example.org",
        "b@example.org",
        "c@example.org",
    ]
    assert server.connections == 3


def test_connection_refused_is_temporary_and_names_the_server() -> None:
    port = free_port()
    results = asyncio.run(send_all(smtp(port, pool_size=2), [outgoing(), outgoing(n=1)]))
    for error in results:
        assert isinstance(error, TemporarySendError)
        assert str(error).startswith(f"smtp://127.0.0.1:{port}: cannot connect")


def test_server_that_never_greets_times_out_as_temporary() -> None:
    async def scenario() -> BaseException | str:
        async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await asyncio.Event().wait()  # cancelled when the server closes

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            (result,) = await send_all(smtp(port, timeout=0.5), [outgoing()])
            return result

    error = asyncio.run(scenario())
    assert isinstance(error, TemporarySendError) and error.code is None
    assert str(error).startswith("smtp://127.0.0.1:") and "cannot connect" in str(error)


def test_421_greeting_is_temporary() -> None:
    async def scenario() -> BaseException | str:
        async def busy(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"421 4.3.2 Too busy, come back later\r\n")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(busy, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            (result,) = await send_all(smtp(port), [outgoing()])
            return result

    error = asyncio.run(scenario())
    assert isinstance(error, TemporarySendError) and error.code == 421
    assert "Too busy" in str(error) and str(error).startswith("smtp://127.0.0.1:")


def test_login_and_a_refused_password_that_is_never_shown() -> None:
    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password == b"right-horse-battery"
        return AuthResult(success=ok, handled=False)

    handler = RecordingHandler()
    with serve(handler, authenticator=authenticate, auth_require_tls=False) as server:
        right = smtp(server.port, username="digest", password="right-horse-battery")
        wrong = smtp(server.port, username="digest", password="wrong-staple-7391")
        (sent,) = asyncio.run(send_all(right, [outgoing()]))
        (error,) = asyncio.run(send_all(wrong, [outgoing(n=1)]))
    assert isinstance(sent, str) and len(handler.messages) == 1
    assert isinstance(error, TemporarySendError) and error.code == 535
    assert "wrong-staple-7391" not in str(error) and "wrong-staple-7391" not in error.reply


def test_ehlo_names_the_from_domain_unless_told_otherwise() -> None:
    handler = RecordingHandler()
    with serve(handler) as server:
        base: dict[str, Any] = {
            "smtp_host": "127.0.0.1",
            "smtp_port": server.port,
            "smtp_security": "none",
        }
        default = Settings(**base | {"DIGEST_FROM": "Papers <papers@mail.example.net>"})
        chosen = Settings(**base, smtp_local_hostname="relay.example.com")
        for settings in (default, chosen):
            asyncio.run(send_all(make_mailer(settings), [outgoing()]))
    assert handler.helo_names == ["mail.example.net", "relay.example.com"]


def test_settings_build_the_pool() -> None:
    settings = Settings(
        smtp_host="mail.example.org",
        smtp_pool_size=7,
        smtp_rate=20,
        smtp_password="s3cret",  # type: ignore[arg-type]
    )
    mailer = make_mailer(settings)
    assert isinstance(mailer, SmtpMailer)
    assert (mailer.description, mailer.concurrency) == ("smtp://mail.example.org:587", 7)
    assert mailer.timeout == 15.0 and mailer.local_hostname == "localhost"
    outbox = make_mailer(Settings(outbox_dir=Path("out")))
    assert isinstance(outbox, OutboxMailer) and outbox.description == "out/"


# --- the rate limit, with a fake clock ---------------------------------------------------


class FakeTime:
    """A clock that moves only when someone sleeps; records every sleep's wake-up time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.wakeups: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        wake = self.now + seconds
        self.wakeups.append(wake)
        await asyncio.sleep(0)
        self.now = max(self.now, wake)


def test_rate_limiter_spaces_callers_evenly() -> None:
    fake = FakeTime()
    limiter = RateLimiter(10, clock=fake.clock, sleep=fake.sleep)

    async def scenario() -> None:
        await asyncio.gather(*(limiter.wait() for _ in range(25)))

    asyncio.run(scenario())
    # The first goes at once, the other 24 at 0.1 s intervals: 10 per second, never more.
    assert fake.wakeups == pytest.approx([1000.0 + 0.1 * i for i in range(1, 25)])
    fake.now += 60  # idle for a minute: no burst is saved up
    asyncio.run(scenario())
    assert fake.wakeups[24:] == pytest.approx([1062.4 + 0.1 * i for i in range(1, 25)])


def test_pool_applies_the_rate_to_every_message() -> None:
    fake = FakeTime()
    handler = RecordingHandler()
    with serve(handler) as server:
        mailer = smtp(server.port, pool_size=4, rate=50, clock=fake.clock, sleep=fake.sleep)
        messages = [outgoing(f"r{i}@example.org", n=i) for i in range(10)]
        results = asyncio.run(send_all(mailer, messages))
    assert all(isinstance(r, str) for r in results) and len(handler.messages) == 10
    assert fake.wakeups == pytest.approx([1000.0 + 0.02 * i for i in range(1, 10)])


# --- the outbox ---------------------------------------------------------------------------


def test_outbox_names_the_file_by_recipient_date_and_message_id(tmp_path: Path) -> None:
    mailer = OutboxMailer(tmp_path / "outbox")
    message = outgoing()
    (where,) = asyncio.run(send_all(mailer, [message]))
    assert isinstance(where, str)
    assert re.fullmatch(r".*/outbox/ada@example\.org-20261122-063000-[0-9a-f]{8}\.eml", where)
    assert Path(where).read_bytes() == message.data


def test_outbox_is_idempotent_per_message_id(tmp_path: Path) -> None:
    mailer = OutboxMailer(tmp_path / "outbox")
    first, again, other = asyncio.run(
        send_all(mailer, [outgoing(n=1), outgoing(n=1), outgoing(n=2)])
    )
    assert first == again != other
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == sorted(
        Path(str(p)).name for p in (first, other)
    )


def test_outbox_without_a_date_header_still_writes(tmp_path: Path) -> None:
    message = OutgoingMessage(
        "<x@example.org>", SENDER, "a b@example.org", b"Subject: x\r\n\r\nhi\r\n"
    )
    (where,) = asyncio.run(send_all(OutboxMailer(tmp_path), [message]))
    assert isinstance(where, str) and re.fullmatch(r".*/a_b@example\.org-[0-9a-f]{8}\.eml", where)


def test_outbox_unwritable_folder_is_a_temporary_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    (error,) = asyncio.run(send_all(OutboxMailer(blocker / "outbox"), [outgoing()]))
    assert isinstance(error, TemporarySendError) and "outbox" in str(error)


# --- DKIM ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A fresh 1024-bit RSA key file and its DNS TXT record (small: signing is pure Python)."""
    folder = tmp_path_factory.mktemp("dkim")
    key = folder / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "1024"], check=True, capture_output=True)
    der = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return key, b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def dns_for(record: bytes) -> Any:
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == b"mail2026._domainkey.example.org." else None

    return lookup


def test_dkim_signed_mail_verifies_through_the_outbox_and_smtp(
    rsa_key: tuple[Path, bytes], tmp_path: Path
) -> None:
    key_file, record = rsa_key
    dkim_settings: dict[str, Any] = {
        "dkim_selector": "mail2026",
        "dkim_domain": "example.org",
        "dkim_key_file": key_file,
    }
    outbox = make_mailer(Settings(outbox_dir=tmp_path / "outbox", **dkim_settings))
    assert isinstance(outbox, DkimSigningMailer)
    (where,) = asyncio.run(send_all(outbox, [outgoing()]))
    written = Path(str(where)).read_bytes()
    assert written.startswith(b"DKIM-Signature: ") and b"c=relaxed/relaxed" in written
    assert dkim.verify(written, dnsfunc=dns_for(record))

    handler = RecordingHandler()
    with serve(handler) as server:
        settings = Settings(
            smtp_host="127.0.0.1",
            smtp_port=server.port,
            smtp_security="none",
            **dkim_settings,
        )
        asyncio.run(send_all(make_mailer(settings), [outgoing(n=1)]))
    (received,) = handler.raw
    assert dkim.verify(received, dnsfunc=dns_for(record))
    tampered = received.replace(b"3 new papers", b"4 new papers")
    assert not dkim.verify(tampered, dnsfunc=dns_for(record))


def test_dkim_signature_covers_the_digest_headers(rsa_key: tuple[Path, bytes]) -> None:
    signer = DkimSigner.from_file("mail2026", "example.org", rsa_key[0])
    header = signer.sign(outgoing().data).split(b"\r\n\r\n")[0].decode()
    signed = re.search(r"h=([^;]+);", " ".join(header.split()))
    assert signed is not None
    names = {name.strip() for name in signed[1].split(":")}
    assert {"from", "to", "subject", "date", "message-id", "list-id", "mime-version"} <= names


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "DIGEST_DKIM_KEY_FILE: .*missing.pem: cannot read"),
        (b"-----BEGIN RSA PRIVATE KEY-----\nbm9wZQ==\n", "not a PEM RSA private key"),
    ],
)
def test_dkim_key_that_cannot_be_used_is_a_config_error(
    tmp_path: Path, content: bytes | None, expected: str
) -> None:
    key_file = tmp_path / ("missing.pem" if content is None else "bad.pem")
    if content is not None:
        key_file.write_bytes(content)
    settings = Settings(dkim_selector="s", dkim_domain="example.org", dkim_key_file=key_file)
    with pytest.raises(ConfigError, match=expected) as caught:
        make_mailer(settings)
    assert "\n" not in str(caught.value)


def test_dkim_half_configured_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="DIGEST_DKIM_KEY_FILE not set"):
        make_mailer(Settings(dkim_selector="s", dkim_domain="example.org"))


def test_send_outside_async_with_uses_a_connection_of_its_own() -> None:
    handler = RecordingHandler()
    with serve(handler) as server:
        mailer = smtp(server.port)
        first = asyncio.run(mailer.send(outgoing(n=1)))
        second = asyncio.run(mailer.send(outgoing(n=2)))
    assert first.startswith("smtp://127.0.0.1") and second.startswith("smtp://127.0.0.1")
    assert server.connections == 2 and handler.quits == 2
