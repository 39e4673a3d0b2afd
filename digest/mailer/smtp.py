"""The SMTP mailer: a pool of reused aiosmtplib connections and a shared rate limit.

Each of `pool_size` slots holds one connection, opened on first use and kept for many
messages; a send waits for a free slot, so at most `pool_size` are in flight. A connection
that times out or drops fails the message it carried (temporary) and is discarded; the next
send on that slot opens a new one. Replies are classified: 4xx (421 included) temporary,
5xx permanent. Trouble while opening a connection (refused, greeting, TLS, login) is
temporary whatever its code: it is about the server or the settings, not the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections.abc import Awaitable, Callable
from email.utils import parseaddr
from typing import Self

import aiosmtplib

from digest.config import Settings
from digest.errors import ConfigError, PermanentSendError, SendError, TemporarySendError
from digest.models import OutgoingMessage

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]

_QUIT_TIMEOUT = 5.0  # seconds to wait for the reply to QUIT when closing


class RateLimiter:
    """At most `rate` messages per second over every caller, evenly spaced.

    A token bucket that holds one token, so no window of one second ever sees more than
    `rate` (+1) messages: each caller reserves the next free instant, then sleeps until it.
    `clock` and `sleep` are injectable so that tests run without real time.
    """

    def __init__(
        self, rate: float, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, not {rate}")
        self.interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next = float("-inf")

    async def wait(self) -> None:
        now = self._clock()
        start = max(now, self._next)
        self._next = start + self.interval
        if start > now:
            await self._sleep(start - now)


class _Slot:
    """One place in the pool: a connection, or None until it is needed (or after it broke)."""

    __slots__ = ("client",)

    def __init__(self) -> None:
        self.client: aiosmtplib.SMTP | None = None


class SmtpMailer:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: str = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 15.0,
        pool_size: int = 4,
        local_hostname: str = "localhost",
        rate: float = 0.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, not {pool_size}")
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.password = password
        self.timeout = timeout  # per command, as aiosmtplib applies it
        self.pool_size = pool_size
        self.local_hostname = local_hostname
        self._limiter = RateLimiter(rate, clock=clock, sleep=sleep) if rate > 0 else None
        self._idle: asyncio.LifoQueue[_Slot] | None = None  # set while open
        self._slots: list[_Slot] = []

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpMailer:
        if not settings.smtp_host:
            raise ConfigError("DIGEST_MAILER=smtp needs DIGEST_SMTP_HOST")
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        local_hostname = settings.smtp_local_hostname
        if local_hostname is None:
            local_hostname = _domain_of(settings.from_address) or "localhost"
        elif not _is_hostname(local_hostname):
            raise ConfigError(
                f"environment: DIGEST_SMTP_LOCAL_HOSTNAME: not a host name: {local_hostname!r}"
            )
        return cls(
            settings.smtp_host,
            settings.smtp_port_or_default,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=password,
            timeout=settings.smtp_timeout,
            pool_size=settings.smtp_pool_size,
            local_hostname=local_hostname,
            rate=settings.smtp_rate,
        )

    @property
    def description(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    @property
    def concurrency(self) -> int:
        return self.pool_size

    async def __aenter__(self) -> Self:
        """Open the pool; connections are made by the first sends that need them."""
        self._slots = [_Slot() for _ in range(self.pool_size)]
        idle: asyncio.LifoQueue[_Slot] = asyncio.LifoQueue()
        for slot in self._slots:
            idle.put_nowait(slot)
        self._idle = idle
        return self

    async def __aexit__(self, *exc: object) -> None:
        """QUIT every open connection (briefly; errors ignored), then close them all."""
        clients = [slot.client for slot in self._slots if slot.client is not None]
        self._idle, self._slots = None, []
        try:
            await asyncio.gather(*(_quit(client) for client in clients))
        finally:
            for client in clients:
                client.close()

    async def send(self, message: OutgoingMessage) -> str:
        """Hand one message to the server; return the server's acceptance.

        Safe to call from many tasks at once. Outside `async with` it still works, over a
        connection of its own that is closed afterwards (slow: for one-off sends only).
        """
        idle = self._idle
        if idle is None:
            single = copy.copy(self)  # shares the rate limiter
            single.pool_size = 1
            async with single:
                return await single.send(message)
        if self._limiter is not None:
            await self._limiter.wait()
        slot = await idle.get()
        try:
            return await self._send_on(slot, message)
        finally:
            idle.put_nowait(slot)

    async def _send_on(self, slot: _Slot, message: OutgoingMessage) -> str:
        client = slot.client
        if client is None or not client.is_connected:
            slot.client = None
            client = slot.client = await self._connect()
        try:
            _errors, reply = await client.sendmail(
                message.sender,
                [message.recipient],
                message.data,
                mail_options=_mail_options(message, client),
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients[0]
            raise self._reply_error(
                refused.code, refused.message, f"RCPT TO <{refused.recipient}>"
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            # aiosmtplib has sent RSET (the connection stays), or closed it after a 421.
            raise self._reply_error(exc.code, exc.message, _stage(exc)) from None
        except aiosmtplib.SMTPNotSupported as exc:
            raise PermanentSendError(f"{self.description}: {exc}", reply=str(exc)) from None
        except ValueError as exc:  # an address that cannot go on a command line
            raise PermanentSendError(f"{self.description}: {exc}", reply=str(exc)) from None
        except BaseException as exc:
            # Timed out, dropped, reset or cancelled mid-transaction: the connection's state
            # is unknown, so it goes; the next send on this slot opens a new one.
            client.close()
            slot.client = None
            if isinstance(exc, aiosmtplib.SMTPException | OSError | TimeoutError):
                raise self._lost(exc) from None
            raise
        return f"{self.description} ({_last_line(reply) or 'accepted'})"

    async def _connect(self) -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            local_hostname=self.local_hostname,
            timeout=self.timeout,
            use_tls=self.security == "ssl",
            start_tls=self.security == "starttls",
        )
        try:
            await client.connect()
            if client.is_ehlo_or_helo_needed:  # learn the extensions (8BITMIME, SMTPUTF8)
                await client.ehlo()
        except aiosmtplib.SMTPResponseException as exc:
            client.close()
            text = self._scrub(" ".join(exc.message.split()))
            raise TemporarySendError(
                f"{self.description}: SMTP {exc.code} {text} (opening the connection)",
                code=exc.code,
                reply=text,
            ) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            client.close()
            text = self._scrub(str(exc) or type(exc).__name__)
            raise TemporarySendError(f"{self.description}: cannot connect: {text}") from None
        except BaseException:
            client.close()
            raise
        return client

    def _reply_error(self, code: int, text: str, stage: str) -> SendError:
        words = self._scrub(" ".join(str(text).split()))
        detail = f"{self.description}: SMTP {code} {words}" + (f" ({stage})" if stage else "")
        kind = PermanentSendError if 500 <= code < 600 else TemporarySendError
        return kind(detail, code=code, reply=words)

    def _lost(self, exc: BaseException) -> TemporarySendError:
        text = self._scrub(str(exc) or type(exc).__name__)
        if isinstance(exc, TimeoutError):
            reason = f"no reply within {self.timeout:g} s ({text})"
        else:
            reason = f"connection lost ({text})"
        return TemporarySendError(f"{self.description}: {reason}", reply=reason)

    def _scrub(self, text: str) -> str:
        """Never let the password into a message, whatever a server echoes."""
        return text.replace(self.password, "***") if self.password else text


async def _quit(client: aiosmtplib.SMTP) -> None:
    if client.is_connected:
        with contextlib.suppress(Exception):
            await client.quit(timeout=min(client.timeout or _QUIT_TIMEOUT, _QUIT_TIMEOUT))


def _mail_options(message: OutgoingMessage, client: aiosmtplib.SMTP) -> list[str] | None:
    options = []
    if not (message.sender.isascii() and message.recipient.isascii()):
        options.append("SMTPUTF8")  # aiosmtplib refuses it if the server does not offer it
    if not message.data.isascii() and client.supports_extension("8bitmime"):
        options.append("BODY=8BITMIME")
    return options or None


def _stage(exc: aiosmtplib.SMTPResponseException) -> str:
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return f"MAIL FROM <{exc.sender}>"
    if isinstance(exc, aiosmtplib.SMTPDataError):
        return "DATA"
    return ""


def _last_line(reply: str) -> str:
    lines = reply.strip().splitlines()
    return lines[-1] if lines else ""


def _domain_of(address: str) -> str | None:
    domain = parseaddr(address)[1].rpartition("@")[2]
    return domain if _is_hostname(domain) else None


def _is_hostname(name: str) -> bool:
    return bool(name) and name.isascii() and name.isprintable() and " " not in name
