"""A real SMTP server on 127.0.0.1 for the delivery tests (aiosmtpd in a thread): it keeps
every message it accepted, and can be made slow, refuse a recipient for good, or answer
the first DATA with a temporary failure."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class Received:
    """One message as the server got it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes


class RecordingHandler:
    """aiosmtpd handler. ``delay``: seconds to wait after a message arrived before
    answering 250 (the message is recorded on arrival, so a client killed meanwhile never
    learns it was accepted); ``refuse``: addresses answered 550 at RCPT; ``temporary_data``:
    how many DATA commands (the first ones) are answered 451."""

    def __init__(self, *, delay: float = 0.0, refuse: tuple[str, ...] = (), temporary_data: int = 0):
        self.delay = delay
        self.refuse = {address.lower() for address in refuse}
        self.temporary_data = temporary_data
        self.lock = threading.Lock()
        self._messages: list[Received] = []
        self.data_commands = 0
        self.refused_rcpts: list[str] = []

    @property
    def messages(self) -> list[Received]:
        with self.lock:
            return list(self._messages)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refuse:
            with self.lock:
                self.refused_rcpts.append(address)
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.data_commands += 1
            if self.data_commands <= self.temporary_data:
                return "451 4.3.0 try again later"
            self._messages.append(Received(mail_from=envelope.mail_from, rcpt_tos=tuple(envelope.rcpt_tos),
                                           raw=bytes(envelope.original_content or envelope.content)))
        if self.delay:
            await asyncio.sleep(self.delay)
        return "250 2.0.0 Message accepted for delivery"

    def wait_for(self, count: int, *, timeout: float = 20.0, until=None) -> list[Received]:
        """The messages once at least ``count`` arrived (or ``until()`` is true, or time is up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = self.messages
            if len(messages) >= count or (until is not None and until()):
                return messages
            time.sleep(0.005)
        return self.messages


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpServer:
    """A started server: ``port``, ``handler`` (its messages) and ``stop()``."""

    def __init__(self, handler: RecordingHandler, port: int | None = None):
        self.handler = handler
        self.port = port or free_port()
        self.controller = Controller(handler, hostname="127.0.0.1", port=self.port, ready_timeout=10)
        self.controller.start()

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    def stop(self) -> None:
        self.controller.stop()
