"""Sending mail over SMTP with aiosmtplib, its errors mapped to the delivery layer's.

aiosmtplib is the kept asyncio SMTP client (smtplib would need a thread per send). Port 465
is SMTP over TLS, any other port must offer STARTTLS (Hermes Agent's rule); with ``tls`` off
(a server on this machine only, checked by the adapter) nothing is encrypted. The server is
asked to authenticate only when it offers AUTH (a local relay may not).

A 5xx answer is permanent (:class:`PermanentDeliveryError`: the same mail would be refused
again); a 4xx, a timeout or a network error is transient. A refused login is
:class:`SmtpLoginRefused`, which the adapter turns into one clear failure naming
EMAIL_PASSWORD.
"""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from hermes_gateway.delivery.errors import (
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
)

__all__ = ["SmtpLoginRefused", "SmtpSender"]


class SmtpLoginRefused(PermanentDeliveryError):
    """The SMTP server refused the address/password."""


class SmtpSender:
    """Sends one mail per connection (answers are rare; a kept connection would time out)."""

    def __init__(
        self, host: str, port: int, *, tls: bool, user: str, password: str, timeout: float
    ) -> None:
        self.host, self.port, self.tls = host, port, tls
        self.user, self.password, self.timeout = user, password, timeout
        self.sent = 0
        """Mails accepted by the server since start (for the log and benchmarks)."""

    def _client(self) -> aiosmtplib.SMTP:
        implicit = self.tls and self.port == 465
        return aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            timeout=self.timeout,
            use_tls=implicit,
            start_tls=self.tls and not implicit,
        )

    async def _session(self, message: EmailMessage | None, recipient: str = "") -> None:
        smtp = self._client()
        try:
            await smtp.connect()
            if not smtp.esmtp_extensions:
                await smtp.ehlo()
            if smtp.supports_extension("auth") and self.user:
                await smtp.login(self.user, self.password)
            if message is not None:
                await smtp.send_message(message, sender=self.user, recipients=[recipient])
        finally:
            if smtp.is_connected:
                try:
                    await smtp.quit()
                except (aiosmtplib.SMTPException, OSError, TimeoutError):
                    smtp.close()

    async def check_login(self) -> None:
        """Connect and log in once (at start): a wrong password fails here, not at the
        first answer."""
        await self._map(None)

    async def send(self, message: EmailMessage, recipient: str) -> None:
        await self._map(message, recipient)
        self.sent += 1

    async def _map(self, message: EmailMessage | None, recipient: str = "") -> None:
        try:
            await self._session(message, recipient)
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise SmtpLoginRefused(f"{exc.code} {exc.message}") from exc
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise PermanentDeliveryError(f"recipient refused: {exc}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            error: type[DeliveryError] = (
                PermanentDeliveryError if exc.code >= 500 else TransientDeliveryError
            )
            raise error(f"SMTP server answered {exc.code} {exc.message}") from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise TransientDeliveryError(
                f"cannot reach the SMTP server {self.host}:{self.port}: {exc or type(exc).__name__}"
            ) from exc
