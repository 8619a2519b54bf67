"""Handing rendered messages over: to an SMTP server, or as .eml files to an outbox
folder when there is no server. Each send either succeeds (the server or the folder has
the message), fails for now (``TemporaryFailure``: try again later) or fails for good
(``PermanentFailure``: that recipient is refused).
"""

from __future__ import annotations

import os
import smtplib
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..errors import TendermatchError
from .addresses import AddressError, wire_address, wire_mailbox


class DeliveryFailure(TendermatchError):
    """Raised by a sender when a message was not accepted; the message names host:port
    (or the outbox folder), the SMTP code and the server's answer."""


class TemporaryFailure(DeliveryFailure):
    """Raised for failures worth retrying: a 4xx answer, a refused or dropped connection,
    a timeout, a full disk."""


class PermanentFailure(DeliveryFailure):
    """Raised when the server refuses this message or recipient for good (5xx)."""


class ServerUnreachable(TemporaryFailure):
    """Raised when no connection can be made at all: no point trying the other messages."""


class SenderSetupError(DeliveryFailure):
    """Raised when the sender is wrongly set up (login refused, TLS not offered): no
    message can go until the config is fixed."""


class Sender(Protocol):
    def send(self, message: bytes, *, sender: str, to: str, name: str) -> None:
        """Hand one message over, or raise a DeliveryFailure."""

    def close(self) -> None: ...


@dataclass
class OutboxSender:
    """Writes each message as ``<name>.eml`` in ``folder``. The file appears whole (written
    to a temporary name, then renamed), and the same name is overwritten on a resend."""

    folder: Path

    def send(self, message: bytes, *, sender: str, to: str, name: str) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=".sending-", suffix=".eml")
            try:
                with os.fdopen(handle, "wb") as file:
                    file.write(message)
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(temporary, self.folder / f"{name}.eml")
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as error:
            raise TemporaryFailure(f"outbox {self.folder}: {error}") from None

    def path_of(self, name: str) -> Path:
        return self.folder / f"{name}.eml"

    def close(self) -> None:
        pass


@dataclass
class SmtpSender:
    """Sends over one SMTP connection, opened on first use and reopened after a failure.
    ``security``: "none", "starttls" or "ssl"; credentials are given by the caller, who
    reads them from environment variables."""

    host: str
    port: int
    security: str = "none"
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0
    _connection: smtplib.SMTP | None = None

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def _connect(self) -> smtplib.SMTP:
        try:
            if self.security == "ssl":
                connection: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                                            context=ssl.create_default_context())
            else:
                connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            connection.ehlo_or_helo_if_needed()
            if self.security == "starttls":
                connection.starttls(context=ssl.create_default_context())
                connection.ehlo()
            if self.username:
                connection.login(self.username, self.password or "")
        except smtplib.SMTPAuthenticationError as error:
            raise SenderSetupError(f"SMTP {self.where}: login refused: {error.smtp_code}"
                                   f" {_text(error.smtp_error)}") from None
        except smtplib.SMTPNotSupportedError as error:
            raise SenderSetupError(f"SMTP {self.where}: {error}") from None
        except smtplib.SMTPResponseException as error:  # the greeting or EHLO refused
            text = f"SMTP {self.where}: refused the connection: {error.smtp_code} {_text(error.smtp_error)}"
            raise (SenderSetupError(text) if error.smtp_code >= 500 else ServerUnreachable(text)) from None
        except (OSError, smtplib.SMTPException) as error:
            raise ServerUnreachable(f"SMTP {self.where}: cannot connect: {error or type(error).__name__}") from None
        return connection

    def send(self, message: bytes, *, sender: str, to: str, name: str) -> None:
        try:
            recipient = wire_address(to)
        except AddressError as error:
            raise PermanentFailure(f"SMTP {self.where}: {error}") from None
        from_address = wire_mailbox(sender)
        # A non-ASCII local part (or a message built with UTF-8 headers for one) needs
        # SMTPUTF8; an internationalised domain alone does not: it goes as its A-label.
        utf8 = recipient.smtputf8 or not from_address.isascii() or not message.isascii()
        if self._connection is None:
            self._connection = self._connect()
        options: list[str] = []
        if utf8:
            if not self._connection.has_extn("smtputf8"):
                raise PermanentFailure(f"{to}: the server at {self.where} does not accept non-ASCII addresses"
                                       " (SMTPUTF8)")
            options = ["SMTPUTF8", "BODY=8BITMIME"] if self._connection.has_extn("8bitmime") else ["SMTPUTF8"]
        try:
            refused = self._connection.sendmail(from_address, [recipient.text], message, mail_options=options)
        except smtplib.SMTPRecipientsRefused as error:
            code, answer = error.recipients.get(recipient.text, (450, b"refused"))
            self._reset()
            raise _failure(self.where, code, answer, to=to) from None
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as error:
            self._reset()
            raise _failure(self.where, error.smtp_code, error.smtp_error, to=to) from None
        except smtplib.SMTPResponseException as error:
            self.close()
            raise _failure(self.where, error.smtp_code, error.smtp_error, to=to) from None
        except (OSError, smtplib.SMTPException) as error:  # dropped connection, timeout
            self.close()
            raise TemporaryFailure(
                f"SMTP {self.where}: {to}: connection lost: {error or type(error).__name__}") from None
        except (ValueError, UnicodeError) as error:  # this message or address, never the server's fault
            self.close()  # the transaction may be half-way: start the next message afresh
            raise PermanentFailure(f"SMTP {self.where}: {to}: cannot be sent: {error}") from None
        if refused:  # only possible with several recipients; kept for completeness
            code, answer = refused[recipient.text]
            raise _failure(self.where, code, answer, to=to)

    def _reset(self) -> None:
        """After a refused message the connection is still good: clear the transaction."""
        try:
            if self._connection is not None:
                self._connection.rset()
        except (OSError, smtplib.SMTPException):
            self.close()

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.quit()
            except (OSError, smtplib.SMTPException):
                self._connection.close()
            self._connection = None


def _text(answer: bytes | str) -> str:
    text = answer.decode("utf-8", "replace") if isinstance(answer, bytes) else str(answer)
    return " ".join(text.split())


def _failure(where: str, code: int, answer: bytes | str, *, to: str) -> DeliveryFailure:
    """A 4xx is temporary, a 5xx permanent (RFC 5321)."""
    text = f"SMTP {where}: {to}: {code} {_text(answer)}"
    return PermanentFailure(text) if 500 <= code < 600 else TemporaryFailure(text)
