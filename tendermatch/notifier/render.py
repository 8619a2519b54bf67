"""Rendering a ``Digest`` into the e-mail a person reads: a subject, an HTML body and a
plain-text body from the same data (jinja2 templates in ``templates/``), and the message
with its headers. Nothing here sends.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from dataclasses import dataclass
from email.utils import formataddr, formatdate, getaddresses
from functools import lru_cache
from urllib.parse import quote

import jinja2

from . import texts
from .digest import SECTIONS, Digest, clean

SUBJECT_TITLE_CHARS = 60
_LINE_BREAKS = re.compile(r"[\r\n\x00]")


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
    values = {"week": digest.week, "count": digest.new_count, "name": clean(recipient.name)}
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
        "name": clean(digest.recipient.name), "unsubscribe_url": unsubscribe_url,
    }
    return RenderedDigest(subject=subject_of(digest), html=env.get_template("digest.html").render(context),
                          text=env.get_template("digest.txt").render(context))


def mailbox(address: str) -> str:
    """The bare address of "Name <box@host>": the SMTP envelope sender, the mailto target."""
    return getaddresses([address])[0][1]


def new_message_id(*, period: str, sender: str) -> str:
    """A unique Message-ID in the sender's domain; it stays with the digest across retries.
    Short, so the header stays on one line."""
    domain = mailbox(sender).rpartition("@")[2].strip() or "tendermatch.invalid"
    return f"<{uuid.uuid4().hex}.{period}@{domain}>"


def unsubscribe_links(token: str, *, base_url: str, sender: str) -> tuple[str, str]:
    """(https one-click URL, mailto URL), both carrying the signed token."""
    url = f"{base_url.rstrip('/')}/unsubscribe?token={quote(token, safe='')}"
    mailto = f"mailto:{mailbox(sender)}?subject={quote('unsubscribe ' + token, safe='')}"
    return url, mailto


def _header_value(name: str, value: str) -> str:
    """A header value checked to be one line: crawled text never reaches a header
    unchecked (``clean`` has run on the subject; addresses were validated on load)."""
    if _LINE_BREAKS.search(value):
        raise ValueError(f"{name} header would contain a line break: {value!r}")
    return value


def encode_words(text: str, *, name: str) -> str:
    """A header value: as is when it is printable ASCII and fits a line, else RFC 2047
    encoded words (UTF-8, base64) of at most 45 bytes each, never splitting a character."""
    if text.isascii() and len(name) + 2 + len(text) <= 78 and text.isprintable():
        return text
    words, chunk = [], b""
    for char in text:
        encoded = char.encode("utf-8")
        if len(chunk) + len(encoded) > 45:
            words.append(chunk)
            chunk = b""
        chunk += encoded
    words.append(chunk)
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(word).decode('ascii')}?=" for word in words)


def _address(value: str, *, name: str) -> str:
    """An address header: the display name encoded when it is not plain ASCII."""
    display, mailbox = getaddresses([value])[0]
    if not display:
        return mailbox
    if display.isascii() and display.isprintable():
        return formataddr((display, mailbox))
    return f"{encode_words(display, name=name)} <{mailbox}>"


def _quoted_printable(text: str) -> bytes:
    """A body in quoted-printable with CRLF line ends (binascii's C encoder: the email
    package's pure-Python one took most of a digest's time)."""
    encoded = binascii.b2a_qp(text.replace("\r\n", "\n").encode("utf-8"), istext=True)
    return encoded.replace(b"\n", b"\r\n")


def build_message(rendered: RenderedDigest, envelope: Envelope, *, language: str, date: str | None = None) -> bytes:
    """The digest as an RFC 5322 message: multipart/alternative (text, then HTML) with
    List-Unsubscribe and one-click List-Unsubscribe-Post (RFC 8058).

    Written out directly rather than through ``email.message.EmailMessage``, which was
    two thirds of the time of a digest; ``tests/notifier/test_render.py`` checks that the
    standard parser reads it back to the same headers and bodies."""
    boundary = f"==tendermatch=={uuid.uuid4().hex}"
    headers = [
        ("From", _address(envelope.sender, name="From")),
        ("To", envelope.to),
        ("Subject", encode_words(clean(rendered.subject), name="Subject")),
        ("Date", date or formatdate(localtime=True)),
        ("Message-ID", envelope.message_id),
        ("Content-Language", language),
        # Folded between the two links, so each line stays as short as the links allow.
        ("List-Unsubscribe", f"<{envelope.unsubscribe_url}>,\r\n <{envelope.unsubscribe_mailto}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ("Auto-Submitted", "auto-generated"),
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
    ]
    lines = []
    for name, value in headers:
        _header_value(name, value.replace("\r\n ", ""))  # our own folds are the only line breaks
        lines.append(f"{name}: {value}\r\n")
    head = "".join(lines)
    parts = []
    for subtype, body in (("plain", rendered.text), ("html", rendered.html)):
        parts.append(f"--{boundary}\r\nContent-Type: text/{subtype}; charset=\"utf-8\"\r\n"
                     f"Content-Transfer-Encoding: quoted-printable\r\n\r\n".encode("ascii")
                     + _quoted_printable(body) + b"\r\n")
    return head.encode("ascii") + b"\r\n" + b"".join(parts) + f"--{boundary}--\r\n".encode("ascii")
