"""Rendering a ``Digest`` into the e-mail a person reads: a subject, an HTML body and a
plain-text body from the same data (jinja2 templates in ``templates/``), and the message
with its headers. Nothing here sends.
"""

from __future__ import annotations

import email.policy
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, getaddresses
from functools import lru_cache
from urllib.parse import quote

import jinja2

from . import texts
from .digest import Digest, clean

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
        "sections": [(name, digest.sections[name]) for name in ("open", "planning", "agreements", "changed")
                     if digest.sections.get(name)],
        "name": clean(digest.recipient.name), "unsubscribe_url": unsubscribe_url,
    }
    return RenderedDigest(subject=subject_of(digest), html=env.get_template("digest.html").render(context),
                          text=env.get_template("digest.txt").render(context))


def new_message_id(*, period: str, sender: str) -> str:
    """A unique Message-ID in the sender's domain; it stays with the digest across retries.
    Short, so the header stays on one line."""
    domain = getaddresses([sender])[0][1].rpartition("@")[2].strip() or "tendermatch.invalid"
    return f"<{uuid.uuid4().hex}.{period}@{domain}>"


def unsubscribe_links(token: str, *, base_url: str, sender: str) -> tuple[str, str]:
    """(https one-click URL, mailto URL), both carrying the signed token."""
    url = f"{base_url.rstrip('/')}/unsubscribe?token={quote(token, safe='')}"
    mailbox = getaddresses([sender])[0][1]
    mailto = f"mailto:{mailbox}?subject={quote('unsubscribe ' + token, safe='')}"
    return url, mailto


def build_message(rendered: RenderedDigest, envelope: Envelope, *, language: str, date: str | None = None) -> bytes:
    """The digest as an RFC 5322 message: multipart/alternative (text, then HTML) with
    List-Unsubscribe and one-click List-Unsubscribe-Post (RFC 8058)."""
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = envelope.sender
    message["To"] = envelope.to
    # The header API refuses CR/LF; clean() has already made the subject one line.
    message["Subject"] = clean(rendered.subject)
    message["Date"] = date or formatdate(localtime=True)
    message["Message-ID"] = envelope.message_id
    message["List-Unsubscribe"] = f"<{envelope.unsubscribe_url}>, <{envelope.unsubscribe_mailto}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(rendered.html, subtype="html", charset="utf-8", cte="quoted-printable")
    # After the parts: making the message multipart moves Content-* headers into its first part.
    message["Content-Language"] = language
    return message.as_bytes()
