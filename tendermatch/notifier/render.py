"""Rendering a ``Digest`` into the e-mail a person reads: a subject, an HTML body and a
plain-text body from the same data (jinja2 templates in ``templates/``), and the message
with its headers. Nothing here sends.
"""

from __future__ import annotations

import binascii
import email.charset
import email.policy
import uuid
from dataclasses import dataclass
from email.header import Header
from email.headerregistry import HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import Policy
from email.utils import formatdate, getaddresses
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import jinja2

from . import texts
from .addresses import wire_address, wire_mailbox
from .digest import NAME_CHARS, SECTIONS, Digest, bounded, clean

SUBJECT_TITLE_CHARS = 60


@dataclass(frozen=True)
class RenderedDigest:
    """A digest as text, ready to become a message."""

    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class Envelope:
    """Who a digest comes from and goes to, and how to leave the list."""

    sender: str  # "Udbudsvagten <udbud@kk.example>"
    to: str
    message_id: str
    unsubscribe_url: str  # https one-click link with the signed token
    unsubscribe_mailto: str  # mailto: with the token in the subject


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The templates, autoescaping HTML (every notice text is untrusted web content);
    the text template is not escaped, its untrusted text is ``clean``-ed to one line."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("tendermatch.notifier", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=True),
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )


def subject_of(digest: Digest) -> str:
    """Subject line: week, count and who it is for, then the best item's title (cleaned of
    newlines and control characters, shortened)."""
    language, recipient = digest.language, digest.recipient
    values = {"week": digest.week, "count": digest.new_count, "name": bounded(recipient.name, NAME_CHARS)}
    if digest.new_count == 0:
        return texts.label(language, "subject_changed" if digest.changed_count else "subject_none", **values)
    subject = texts.label(language, "subject_one" if digest.new_count == 1 else "subject", **values)
    top = digest.items[0].title
    if len(top) > SUBJECT_TITLE_CHARS:
        top = top[:SUBJECT_TITLE_CHARS - 1].rstrip() + "…"
    return clean(subject + texts.label(language, "subject_top", title=top))


def render_digest(digest: Digest, *, unsubscribe_url: str) -> RenderedDigest:
    """The subject and both bodies of a digest."""
    env = environment()
    language = digest.language
    context = {
        "digest": digest, "language": language, "t": lambda key, **values: texts.label(language, key, **values),
        "sections": [(name, digest.sections[name]) for name in SECTIONS if digest.sections.get(name)],
        "name": bounded(digest.recipient.name, NAME_CHARS), "unsubscribe_url": unsubscribe_url,
    }
    return RenderedDigest(subject=subject_of(digest), html=env.get_template("digest.html").render(context),
                          text=env.get_template("digest.txt").render(context))


def mailbox(address: str) -> str:
    """The bare address of "Name <box@host>": the SMTP envelope sender, the mailto target."""
    return getaddresses([address])[0][1]


def new_message_id(*, period: str, sender: str) -> str:
    """A unique Message-ID in the sender's domain; it stays with the digest across retries.
    Short, so the header stays on one line."""
    domain = wire_mailbox(mailbox(sender)).rpartition("@")[2].strip() or "tendermatch.invalid"
    return f"<{uuid.uuid4().hex}.{period}@{domain}>"


def unsubscribe_links(token: str, *, base_url: str, sender: str) -> tuple[str, str]:
    """(https one-click URL, mailto URL), both carrying the signed token."""
    url = f"{base_url.rstrip('/')}/unsubscribe?token={quote(token, safe='')}"
    mailto = f"mailto:{quote(wire_mailbox(mailbox(sender)), safe='@')}?subject={quote('unsubscribe ' + token, safe='')}"
    return url, mailto


class _LinksHeader(UnstructuredHeader):
    """List-Unsubscribe: folded between its links, never inside one. The email package
    folds an unstructured header by turning a word longer than a line into encoded words,
    and no mail client reads an encoded word as a link."""

    name: str  # set by the header registry, which builds the class with BaseHeader at run time

    def fold(self, *, policy: Policy) -> str:
        links = [link.strip() for link in str(self).split(",")]
        return f"{self.name}: " + ("," + policy.linesep + " ").join(links) + policy.linesep


class _TextHeader(UnstructuredHeader):
    """Subject: crawled text, shown as it is. The stock parser decodes whatever looks like an
    RFC 2047 encoded word in a value ("=?utf-8?q?=0D=0ABcc:...?=" becomes a line break and a
    Bcc header, which its folder then writes out); such text, and any non-ASCII text, is
    kept literal and encoded whole by ``email.header.Header`` (also twice as fast as the
    stock folder, the largest cost of a digest's headers)."""

    name: str  # set by the header registry, which builds the class with BaseHeader at run time

    @classmethod
    def parse(cls, value: str, kwds: dict[str, Any]) -> None:
        if _plain(value):
            super().parse(value, kwds)
        else:  # folded by ``Header`` below: the stock parse tree is never used
            kwds["parse_tree"] = cls.value_parser("")
        kwds["decoded"] = str(value)

    def fold(self, *, policy: Policy) -> str:
        text = str(self)
        if _plain(text) or (getattr(policy, "utf8", False) and "=?" not in text):
            if _plain(text):
                return super().fold(policy=policy)  # type: ignore[misc]  # BaseHeader.fold, mixed in at run time
            return f"{self.name}: {text}{policy.linesep}"
        encoded = Header(str(self), charset=_BASE64_UTF8, header_name=self.name).encode(linesep=policy.linesep)
        return f"{self.name}: {encoded}{policy.linesep}"


# Encoded words in base64, not the shortest of base64 and quoted-printable: the email
# package works quoted-printable out a character at a time in Python, a tenth of a digest
# run's time. Mail clients decode both alike.
_BASE64_UTF8 = email.charset.Charset("utf-8")
_BASE64_UTF8.header_encoding = email.charset.BASE64


def _plain(text: str) -> bool:
    return text.isascii() and "=?" not in text


class _Headers(HeaderRegistry):
    """The standard header classes, each made once (the stock registry makes a new class
    for every header of every message: a third of a digest's header time)."""

    def __init__(self) -> None:
        super().__init__()
        # Mixins of BaseHeader as the registry expects; typeshed cannot say so.
        self.map_to_type("list-unsubscribe", _LinksHeader)  # type: ignore[arg-type]
        self.map_to_type("subject", _TextHeader)  # type: ignore[arg-type]

    @lru_cache(maxsize=64)  # noqa: B019 -- one registry for the process's life: nothing to leak
    def __getitem__(self, name: str) -> type:
        return super().__getitem__(name)


# SMTP: CRLF line ends, non-ASCII header text as RFC 2047 encoded words; SMTPUTF8: header
# text as UTF-8, for a recipient whose local part is not ASCII (only sent over SMTPUTF8).
_POLICIES = {utf8: (email.policy.SMTPUTF8 if utf8 else email.policy.SMTP).clone(header_factory=_Headers())
             for utf8 in (False, True)}
# A fixed boundary is safe: it starts with "--" on its line and a base64 line never can.
BOUNDARY = "=_tendermatch_alternative"


def _base64_lines(text: str, linesep: str) -> str:
    """A body as UTF-8 in base64, 76 characters a line (binascii's C encoder: the email
    package's quoted-printable, pure Python, took two thirds of a digest's time)."""
    encoded = binascii.b2a_base64(text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8"),
                                  newline=False).decode("ascii")
    return linesep.join([encoded[start:start + 76] for start in range(0, len(encoded), 76)])


@lru_cache(maxsize=1024)
def _header(utf8: bool, name: str, value: str) -> Any:
    """A header parsed (and checked) by the policy, kept: most of a digest's headers are
    the same in every message of a run."""
    return _POLICIES[utf8].header_store_parse(name, value)[1]


@lru_cache(maxsize=1024)
def _folded(utf8: bool, name: str, header: Any) -> bytes:
    """A header as the policy writes it, kept for the same reason."""
    return _POLICIES[utf8].fold_binary(name, header)


def digest_message(rendered: RenderedDigest, envelope: Envelope, *, language: str,
                   date: str | None = None) -> EmailMessage:
    """The digest as an ``EmailMessage``: multipart/alternative (text, then HTML, each
    UTF-8 in base64) with List-Unsubscribe and one-click List-Unsubscribe-Post (RFC 8058).
    The policy encodes non-ASCII header text and refuses a line break in any header; the
    recipient must be one plain address (an AddressError otherwise), its domain is sent
    as its A-label."""
    to = wire_address(envelope.to)
    utf8 = to.smtputf8
    sender_mailbox = mailbox(envelope.sender)
    message = EmailMessage(policy=_POLICIES[utf8])
    for name, value in (
            ("From", envelope.sender.replace(sender_mailbox, wire_mailbox(sender_mailbox))),
            ("To", to.text),
            ("Subject", clean(rendered.subject)),
            ("Date", date or formatdate(localtime=True)),
            ("Message-ID", envelope.message_id),
            ("Content-Language", language),
            ("List-Unsubscribe", f"<{envelope.unsubscribe_url}>, <{envelope.unsubscribe_mailto}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            ("Auto-Submitted", "auto-generated"),
            ("MIME-Version", "1.0"),
            ("Content-Type", f'multipart/alternative; boundary="{BOUNDARY}"')):
        message[name] = _header(utf8, name, value)
    parts = []
    for subtype, body in (("plain", rendered.text), ("html", rendered.html)):
        part = EmailMessage(policy=message.policy)
        part["Content-Type"] = _header(utf8, "Content-Type", f'text/{subtype}; charset="utf-8"')
        part["Content-Transfer-Encoding"] = _header(utf8, "Content-Transfer-Encoding", "base64")
        part.set_payload(_base64_lines(body, message.policy.linesep))
        parts.append(part)
    message.set_payload(parts)  # type: ignore[arg-type]  # typeshed's list is invariant; parts are messages
    return message


def serialise(message: EmailMessage) -> bytes:
    """The bytes ``message.as_bytes()`` gives for a ``digest_message``, without the
    generator's line-by-line copy of the bodies (a third of a digest's time): each header
    is folded by the message's policy, each body (base64, ASCII) is written whole.
    ``tests/notifier/test_render.py`` checks the two are the same bytes."""
    utf8 = bool(getattr(message.policy, "utf8", False))
    linesep = message.policy.linesep.encode("ascii")
    boundary = b"--" + (message.get_boundary() or "").encode("ascii")
    out = [_folded(utf8, name, value) for name, value in message.items()]
    for part in message.iter_parts():  # the blank line after the headers, or the end of the last body
        out.append(linesep + boundary + linesep)
        out += [_folded(utf8, name, value) for name, value in part.items()]
        out.append(linesep + str(part.get_payload()).encode("ascii"))
    out.append(linesep + boundary + b"--" + linesep)
    return b"".join(out)


def build_message(rendered: RenderedDigest, envelope: Envelope, *, language: str, date: str | None = None) -> bytes:
    """The digest as the bytes handed to the server (see ``digest_message``)."""
    return serialise(digest_message(rendered, envelope, language=language, date=date))
