"""The rendered e-mail: multipart/alternative with the same items in text and HTML, the
headers a mail client needs (one-click unsubscribe, RFC 8058), and crawled text made harmless
in the HTML, the plain text and the Subject."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from tendermatch.notifier.run import compose, digest_for
from tendermatch.notifier.tokens import read_token
from tests.matcher.helpers import KANTINE, MADSERVICE_RODOVRE, sample, sample_profile
from tests.notifier.helpers import AS_OF, SECRET, SETTINGS, matched_store, parse_message, recipient

PERIOD = "2016-W01"
HOSTILE = 'Kantinedrift <script>alert("x")</script>\r\nBcc: victim@evil.example\n<img src="https://evil.example/t.png">'


def _message(profile_id="maaltidsvaerkstedet", records=None, **changes):
    profile = sample_profile(profile_id, **changes)
    store = matched_store([profile], records)
    digest = digest_for(store, recipient(profile), period=PERIOD, as_of=AS_OF, settings=SETTINGS)
    store.close()
    _subject, _message_id, raw, html, text = compose(digest, to=profile.emails[0], settings=SETTINGS, secret=SECRET)
    return digest, parse_message(raw), html, text


def test_multipart_alternative_with_text_and_html_parts_in_danish():
    digest, message, html, text = _message()
    assert message.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    plain = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    body = message.get_body(("html",)).get_content().replace("\r\n", "\n")
    assert plain == text and body == html
    for item in digest.items:  # the same items, in the same order, in both parts
        assert item.title in plain and item.title in body
    titles = [item.title for item in digest.items]
    assert [plain.index(title) for title in titles] == sorted(plain.index(title) for title in titles)
    assert "== Åbne udbud ==" in plain and "Forhåndsmeddelelser" in plain
    assert "Frist: 6. april 2016 kl. 13.00 (om 96 dage)" in plain
    assert message["Content-Language"] == "da"


def test_headers_for_mail_clients_and_one_click_unsubscribe():
    digest, message, _, _ = _message()
    assert message["From"] == "Udbudsvagten <udbud@kk.example>"
    assert message["To"] == "kontakt@maaltidsvaerkstedet.example"
    assert message["Subject"].startswith(f"Uge 1: {digest.new_count} nye udbud til Måltidsværkstedet – ")
    assert message["Date"] and re.fullmatch(r"<[^<>@\s]+@kk\.example>", message["Message-ID"])
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    links = re.findall(r"<([^<>]+)>", message["List-Unsubscribe"])
    assert links[0].startswith("https://udbud.kk.example/unsubscribe?token=")
    assert links[1].startswith("mailto:udbud@kk.example?subject=unsubscribe%20")
    token = links[0].split("token=", 1)[1]
    assert read_token(token, secret=SECRET) == ("maaltidsvaerkstedet", "kontakt@maaltidsvaerkstedet.example")
    assert token in links[1]  # the mailto carries the same token


def test_english_profile_gets_english_everything():
    digest, message, html, text = _message(language="en")
    assert message["Content-Language"] == "en" and '<html lang="en">' in html
    assert message["Subject"].startswith(f"Week 1: {digest.new_count} new tenders for Måltidsværkstedet")
    assert "== Open tenders ==" in text and "Deadline: 6 April 2016 at 13:00 (in 96 days)" in text
    assert "Unsubscribe" in html and "Afmeld" not in html


def test_no_remote_images_and_only_inline_css():
    _, _, html, _ = _message()
    assert "<img" not in html and "url(" not in html
    assert "<link" not in html and "<style" not in html  # mail clients drop <style> and remote CSS


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.hrefs += [value for name, value in attrs if name == "href"]


@pytest.fixture
def hostile_digest():
    record = sample(KANTINE)
    record["title"] = HOSTILE
    record["buyer"]["name"] = "HOFOR <b>A/S</b>\nX-Injected: yes"
    record["url"] = "javascript:alert(document.cookie)"
    return _message(records=[record, sample(MADSERVICE_RODOVRE)])


def test_hostile_text_is_escaped_in_the_html(hostile_digest):
    digest, _, html, _ = hostile_digest
    assert digest.items[0].title.startswith("Kantinedrift <script>")  # the hostile notice is the top item
    elements = _Elements()
    elements.feed(html)
    assert "script" not in elements.tags and "img" not in elements.tags and "b" not in elements.tags
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert not any(href.startswith("javascript:") for href in elements.hrefs)
    assert "https://ted.europa.eu/da/notice/-/detail/95237-2016" in elements.hrefs  # the safe link instead


def test_hostile_text_cannot_inject_headers(hostile_digest):
    _, message, _, text = hostile_digest
    assert "Bcc" not in message and "X-Injected" not in message
    subject = message["Subject"]
    assert "\n" not in subject and "\r" not in subject
    assert subject.startswith("Uge 1: 2 nye udbud til Måltidsværkstedet – Kantinedrift <script>")
    raw_headers = message.as_bytes().split(b"\n\n", 1)[0].decode("ascii")
    assert not re.search(r"^(Bcc|X-Injected):", raw_headers, flags=re.MULTILINE | re.IGNORECASE)
    # The plain text keeps each field on its own line: no line starts with the injected text.
    assert not any(line.lstrip().startswith(("Bcc:", "X-Injected:")) for line in text.splitlines())
    assert "HOFOR <b>A/S</b> X-Injected: yes" in text


def test_each_address_gets_its_own_unsubscribe_token():
    profile = sample_profile("maaltidsvaerkstedet")
    store = matched_store([profile])
    digest = digest_for(store, recipient(profile), period=PERIOD, as_of=AS_OF, settings=SETTINGS)
    tokens = set()
    for address in profile.emails:
        message = parse_message(compose(digest, to=address, settings=SETTINGS, secret=SECRET)[2])
        token = re.search(r"token=([^>]+)>", message["List-Unsubscribe"])[1]
        assert read_token(token, secret=SECRET) == (profile.id, address)
        tokens.add(token)
    assert len(tokens) == 2


def _reference_message(rendered, envelope, *, language, date):
    """The same message built with the standard library's EmailMessage the plain way
    (quoted-printable bodies, the stock generator)."""
    import email.policy
    from email.message import EmailMessage

    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = envelope.sender
    message["To"] = envelope.to
    message["Subject"] = rendered.subject
    message["Date"] = date
    message["Message-ID"] = envelope.message_id
    message["List-Unsubscribe"] = f"<{envelope.unsubscribe_url}>, <{envelope.unsubscribe_mailto}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(rendered.html, subtype="html", charset="utf-8", cte="quoted-printable")
    message["Content-Language"] = language
    return parse_message(message.as_bytes())


@pytest.mark.parametrize("subject", [
    "Uge 48: 3 nye udbud til Måltidsværkstedet – Kantinedrift på Amagerværket og i Vejlandshuset…",
    "Week 48: 1 new tender for Byens Cykelbud",
    "Week 48: " + "a very long plain ASCII subject " * 4,
    "Uge 48: ænder, øl og ål – 日本語 – emoji 🍲 " * 3,
])
@pytest.mark.parametrize("sender", ["Udbudsvagten <udbud@kk.example>", "Udbudsvagten – København <udbud@kk.example>",
                                    "udbud@kk.example"])
def test_the_written_message_reads_back_like_one_from_the_email_package(subject, sender):
    from tendermatch.notifier.render import Envelope, RenderedDigest, build_message, digest_message

    text = "Hej Måltidsværkstedet\n\n1. Kantinedrift – ÆØÅ\n   Frist: 6. april 2016\n" + "lang linje " * 30 + "\n"
    html = '<p style="margin:0">Æ &amp; Ø</p>\n<a href="https://udbud.kk.example/x?a=1&amp;b=2">x</a>\n' * 20
    rendered = RenderedDigest(subject=subject, html=html, text=text)
    envelope = Envelope(sender=sender, to="kontakt@mv.example", message_id="<abc.2026-W48@kk.example>",
                        unsubscribe_url="https://udbud.kk.example/unsubscribe?token=u1.abc.def",
                        unsubscribe_mailto="mailto:udbud@kk.example?subject=unsubscribe%20u1.abc.def")
    date = "Mon, 23 Nov 2026 07:00:00 +0100"
    raw = build_message(rendered, envelope, language="da", date=date)
    # The fast serialisation writes exactly what the email package's generator writes.
    assert raw == digest_message(rendered, envelope, language="da", date=date).as_bytes()
    ours, reference = parse_message(raw), _reference_message(rendered, envelope, language="da", date=date)
    for name in ("From", "To", "Subject", "Date", "Message-ID", "Content-Language", "List-Unsubscribe",
                 "List-Unsubscribe-Post", "Auto-Submitted"):
        assert " ".join(str(ours[name]).split()) == " ".join(str(reference[name]).split()), name
    assert ours.get_content_type() == "multipart/alternative"
    for kind in ("plain", "html"):
        assert ours.get_body((kind,)).get_content() == reference.get_body((kind,)).get_content()
    assert not ours.defects and all(not part.defects for part in ours.walk())
    lines = raw.split(b"\r\n")
    assert all(len(line) <= 998 for line in lines) and b"\n" not in raw.replace(b"\r\n", b"")
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()


@pytest.mark.parametrize("to", ["kontakt@mv.example", "søren@mv.example"])  # SMTP and SMTPUTF8 policies
@pytest.mark.parametrize("subject", ["Week 48: 1 new tender: Kantinedrift =?utf-8?q?=0D=0ABcc:_ew@evil.example?=",
                                     "Uge 48: 1 nyt udbud – =?utf-8?b?DQpCY2M6IGV3MkBldmlsLmV4YW1wbGU=?="])
def test_text_that_looks_like_an_encoded_word_reaches_the_reader_literally(subject, to):
    # The email package decodes such text in a header value it is given, and its folder
    # then wrote the decoded CR LF and "Bcc:" into the message.
    import email
    import email.policy

    from tendermatch.notifier.render import Envelope, RenderedDigest, build_message

    envelope = Envelope(sender="Udbudsvagten <udbud@kk.example>", to=to, message_id="<abc.2026-W48@kk.example>",
                        unsubscribe_url="https://udbud.kk.example/unsubscribe?token=t",
                        unsubscribe_mailto="mailto:udbud@kk.example?subject=unsubscribe%20t")
    raw = build_message(RenderedDigest(subject=subject, html="<p>x</p>", text="x\n"), envelope, language="da")
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"^bcc:", head, re.IGNORECASE | re.MULTILINE), head
    message = email.message_from_string(raw.decode("utf-8"), policy=email.policy.default)
    assert str(message["Subject"]) == subject and message["Bcc"] is None
