"""The SMTP mailer (aiosmtplib): TLS or STARTTLS, optional login, temporary vs permanent errors."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from digest.config import Settings
from digest.errors import ConfigError, PermanentSendError, SendError, TemporarySendError


class SmtpMailer:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: str = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.password = password
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpMailer:
        if not settings.smtp_host:
            raise ConfigError("DIGEST_MAILER=smtp needs DIGEST_SMTP_HOST")
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return cls(
            settings.smtp_host,
            settings.smtp_port_or_default,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=password,
            timeout=settings.smtp_timeout,
        )

    @property
    def description(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    async def send(self, message: EmailMessage) -> str:
        try:
            errors, reply = await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.security == "ssl",
                start_tls=self.security == "starttls",
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise _classify(
                exc.recipients[0].code, f"recipient refused: {exc.recipients[0].message}"
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise _classify(exc.code, exc.message) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise TemporarySendError(f"{self.description}: {exc}") from None
        if errors:
            address, (code, text) = next(iter(errors.items()))
            raise _classify(code, f"recipient {address} refused: {text}")
        return f"{self.description} ({reply.strip().splitlines()[-1] if reply else 'accepted'})"


def _classify(code: int, text: str) -> SendError:
    """5xx replies are permanent; 4xx and everything else may pass on a retry."""
    detail = f"SMTP {code}: {' '.join(str(text).split())}"
    return PermanentSendError(detail) if 500 <= code < 600 else TemporarySendError(detail)
