"""The notifier's edge with the store: plan each recipient's digest for a period, record
it, then hand it over, so that every address gets each period's digest exactly once.

Exactly once, step by step:
1. ``plan_digests`` renders a digest and records it as a pending delivery together with
   the notices it tells, in one transaction, before anything is sent. The unique
   (profile, address, period) key means a rerun plans nothing twice.
2. ``deliver_pending`` sends every pending delivery (of any period: a run that was
   killed is completed by the next) and marks it sent once the server has accepted it.
   A kill between the two steps resends that one message, with the same Message-ID.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ..errors import TendermatchError
from ..store import Store, StoreError
from .digest import Digest, DigestItem, Recipient, build_digest
from .render import (
    Envelope,
    build_message,
    new_message_id,
    render_digest,
    unsubscribe_links,
)
from .send import (
    DeliveryFailure,
    PermanentFailure,
    Sender,
    SenderSetupError,
    ServerUnreachable,
)
from .tokens import make_token

RECORD_CACHE = 20_000  # notice records kept between recipients (many share notices; a store holds ~15,000 open)


@dataclass(frozen=True)
class DigestSettings:
    """How digests are made ([digest] in the config)."""

    sender: str
    base_url: str
    send_empty: bool = False
    timezone: str = "Europe/Copenhagen"
    check_deadlines: bool = True  # False only for the demo's old bundled notices
    max_message_bytes: int = 1024 * 1024  # [digest] max_message_kb: a relay refuses bigger messages


@dataclass
class PlannedDigest:
    """One digest e-mail: what it says and, once recorded, its delivery id."""

    profile_id: str
    email: str
    period: str
    language: str
    subject: str
    items: int
    changed: int
    message_id: str
    delivery_id: int | None = None
    message: bytes | None = None  # kept only when asked (previews, tests)
    error: str | None = None  # why it could not be made: recorded failed, and the others go on


@dataclass
class DeliveryReport:
    """What one ``deliver_pending`` call did."""

    sent: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)  # refused for good
    pending: list[dict[str, Any]] = field(default_factory=list)  # temporary failure: next run
    retries: int = 0
    stopped: str | None = None  # why the run stopped early (server unreachable, bad setup)


class _Records:
    """Notice records by id, fetched in batches and kept for the next recipients."""

    def __init__(self, store: Store):
        self.store = store
        self.cache: dict[str, dict[str, Any]] = {}

    def get(self, notice_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        wanted = list(dict.fromkeys(notice_ids))
        missing = [notice_id for notice_id in wanted if notice_id not in self.cache]
        if missing:
            if len(self.cache) + len(missing) > RECORD_CACHE:
                self.cache.clear()
            self.cache.update(self.store.notice_records(missing))
        return {notice_id: self.cache[notice_id] for notice_id in wanted if notice_id in self.cache}


def digest_for(store: Store, recipient: Recipient, *, period: str, as_of: date, settings: DigestSettings,
               records: _Records | None = None) -> Digest:
    """The digest ``recipient`` would get for ``period``: untold matches and changes."""
    matches = store.untold_matches(recipient.profile_id)
    changes = store.told_changes(recipient.profile_id)
    found = (records or _Records(store)).get([row["notice_id"] for row in matches] +
                                             [row["notice_id"] for row in changes])
    for change in changes:  # the record's current state is what the digest reports
        if change["notice_id"] in found:
            found[change["notice_id"]] = {**found[change["notice_id"]], "status": change["status"],
                                          "deadline": change["deadline"]}
    return build_digest(recipient, matches=matches, records=found, changes=changes, period=period, as_of=as_of,
                        timezone=settings.timezone, check_deadlines=settings.check_deadlines)


def compose(digest: Digest, *, to: str, settings: DigestSettings, secret: bytes,
            message_id: str | None = None) -> tuple[str, str, bytes, str, str]:
    """(subject, message_id, message bytes, html, text) of a digest for one address."""
    recipient = digest.recipient
    token = make_token(recipient.profile_id, to, secret=secret)
    url, mailto = unsubscribe_links(token, base_url=settings.base_url, sender=settings.sender)
    rendered = render_digest(digest, unsubscribe_url=url)
    message_id = message_id or new_message_id(period=digest.period, sender=settings.sender)
    envelope = Envelope(sender=settings.sender, to=to, message_id=message_id, unsubscribe_url=url,
                        unsubscribe_mailto=mailto)
    return rendered.subject, message_id, build_message(rendered, envelope, language=digest.language), \
        rendered.html, rendered.text


class DigestTooLarge(TendermatchError, ValueError):
    """Raised when even a digest of one notice is over [digest] max_message_kb."""


def _priority(item: DigestItem) -> tuple[bool, int]:
    """The order in which notices keep their place in a digest that must shrink: new ones
    by rank, then the changed ones."""
    return item.section == "changed", item.rank if item.rank is not None else 1 << 30


def _keeping(digest: Digest, kept: list[DigestItem], left_out: int) -> Digest:
    ids = {id(item) for item in kept}
    sections = {name: [item for item in items if id(item) in ids] for name, items in digest.sections.items()}
    return dataclasses.replace(digest, sections=sections, more=digest.more + left_out)


def fit(digest: Digest, *, to: str, settings: DigestSettings,
        secret: bytes) -> tuple[Digest, tuple[str, str, bytes, str, str]]:
    """(the digest as sent, ``compose``'s result) for ``to``: the whole digest when its
    message is within ``settings.max_message_bytes``, else its best notices that fit (found
    by bisection), the rest counted in ``more`` ("and 12 more"): they are not told, so the
    next digest has them. A DigestTooLarge when not even one notice fits."""
    composed = compose(digest, to=to, settings=settings, secret=secret)
    limit = settings.max_message_bytes
    if len(composed[2]) <= limit:
        return digest, composed
    ranked = sorted(digest.items, key=_priority)
    best, low, high = None, 1, len(ranked) - 1
    while low <= high:
        middle = (low + high) // 2
        trial = _keeping(digest, ranked[:middle], len(ranked) - middle)
        trial_composed = compose(trial, to=to, settings=settings, secret=secret, message_id=composed[1])
        if len(trial_composed[2]) <= limit:
            best, low = (trial, trial_composed), middle + 1
        else:
            high = middle - 1
    if best is None:
        raise DigestTooLarge(f"even with one notice the message is over [digest] max_message_kb"
                             f" ({limit // 1024} KiB; {len(composed[2]) // 1024} KiB with all"
                             f" {len(ranked)})")
    return best


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def plan_digests(store: Store, recipients: list[Recipient], *, period: str, as_of: date, settings: DigestSettings,
                 secret: bytes, record: bool, run_id: int | None = None,
                 keep_messages: bool = False) -> list[PlannedDigest]:
    """The digests due for ``period``: one per active address of each recipient that has
    none for the period yet and has news (or ``send_empty``). With ``record`` each is
    stored as a pending delivery (what ``--send`` does); without, nothing is written.

    A digest that cannot be made (a broken value, an address that is not one, too big even
    with one notice) costs only itself: it is returned with its ``error`` (and recorded as
    failed, telling nothing) and every other digest is made. Only the store failing stops
    the run."""
    unsubscribed = store.unsubscribed()
    records = _Records(store)
    planned: list[PlannedDigest] = []
    for recipient in recipients:
        addresses = [address for address in recipient.emails
                     if (recipient.profile_id, address.lower()) not in unsubscribed]
        if not addresses:
            continue
        done = store.period_addresses(recipient.profile_id, period)
        addresses = [address for address in addresses if address.lower() not in done]
        if not addresses:
            continue
        try:
            digest: Digest | None = digest_for(store, recipient, period=period, as_of=as_of, settings=settings,
                                               records=records)
            failure = None
        except StoreError:
            raise
        except Exception as error:
            digest, failure = None, f"the digest could not be made: {_one_line(error)}"
        if digest is not None and digest.is_empty and not settings.send_empty:
            continue
        for address in addresses:
            plan = _plan_one(store, recipient, digest, failure, to=address, period=period, settings=settings,
                             secret=secret, record=record, run_id=run_id, keep_messages=keep_messages)
            if plan is not None:
                planned.append(plan)
    return planned


def _plan_one(store: Store, recipient: Recipient, digest: Digest | None, failure: str | None, *, to: str,
              period: str, settings: DigestSettings, secret: bytes, record: bool, run_id: int | None,
              keep_messages: bool) -> PlannedDigest | None:
    """One address's digest, made and (with ``record``) recorded; None if another run
    recorded it meanwhile."""
    language = digest.language if digest is not None else recipient.language
    if digest is not None:
        try:
            digest, (subject, message_id, message, _, _) = fit(digest, to=to, settings=settings, secret=secret)
        except Exception as error:
            failure = f"the digest could not be made: {_one_line(error)}"
    if failure is not None or digest is None:
        plan = PlannedDigest(profile_id=recipient.profile_id, email=to, period=period, language=language,
                             subject="", items=0, changed=0, message_id="", error=failure)
        if record:
            plan.delivery_id = store.add_failed_delivery(
                {"profile_id": recipient.profile_id, "email": to, "period": period, "language": language,
                 "run_id": run_id}, error=plan.error or "")
            if plan.delivery_id is None:
                return None
        return plan
    plan = PlannedDigest(profile_id=recipient.profile_id, email=to, period=period, language=digest.language,
                         subject=subject, items=digest.new_count, changed=digest.changed_count,
                         message_id=message_id, message=message if keep_messages else None)
    if record:
        told = [{"notice_id": item.notice_id, "section": item.section, "rank": item.rank,
                 "deadline": item.deadline_iso, "status": item.status, "reasons": item.reasons}
                for item in digest.items]
        plan.delivery_id = store.add_delivery(
            {"profile_id": recipient.profile_id, "email": to, "period": period, "language": digest.language,
             "message_id": message_id, "subject": subject, "items": digest.new_count,
             "changed": digest.changed_count, "message": message, "run_id": run_id}, told)
        if plan.delivery_id is None:  # another run recorded it meanwhile
            return None
    return plan


def outbox_name(delivery: dict[str, Any]) -> str:
    """The outbox file name of a delivery (stable, so a resend overwrites it)."""
    return f"{delivery['period']}-{delivery['profile_id']}-{delivery['id']}"


def deliver_pending(store: Store, sender: Sender, *, from_address: str, retries: int = 3, retry_delay: float = 2.0,
                    sleep: Callable[[float], None] = time.sleep,
                    progress: Callable[[dict[str, Any], str, str | None], None] | None = None,
                    stop: threading.Event | None = None) -> DeliveryReport:
    """Send every pending delivery, oldest first. A temporary failure is retried
    ``retries`` times, waiting ``retry_delay`` seconds and doubling; if it persists the
    delivery stays pending for the next run. A permanent refusal marks that delivery
    failed and the others go on. An unreachable server or a setup error stops the run.
    Once ``stop`` is set no further delivery is tried: they stay pending for the next run."""
    report = DeliveryReport()
    # One sender at a time per store: a second run (a CLI beside the worker) waits, then
    # finds the first one's deliveries sent.
    with store.exclusive("sending"), closing(sender):
        for delivery in store.pending_deliveries():
            if stop is not None and stop.is_set():
                report.stopped = report.stopped or "asked to stop"
                break  # the rest are untouched, still pending
            if report.stopped:  # not tried: say why in its record
                not_tried = f"not tried: {report.stopped}"
                store.mark_delivery(delivery["id"], state="pending", error=not_tried, tried=False)
                report.pending.append({**{k: v for k, v in delivery.items() if k != "message"}, "error": not_tried})
                continue
            if not store.still_pending(delivery["id"]):  # another run sent it meanwhile
                continue
            outcome, error = _deliver_one(store, sender, delivery, from_address=from_address, retries=retries,
                                          retry_delay=retry_delay, sleep=sleep, report=report)
            if progress:
                progress(delivery, outcome, error)
    return report


def _deliver_one(store: Store, sender: Sender, delivery: dict[str, Any], *, from_address: str, retries: int,
                 retry_delay: float, sleep: Callable[[float], None], report: DeliveryReport) -> tuple[str, str | None]:
    summary = {key: value for key, value in delivery.items() if key != "message"}
    for attempt in range(retries + 1):
        try:
            sender.send(delivery["message"], sender=from_address, to=delivery["email"], name=outbox_name(delivery))
        except PermanentFailure as error:
            store.mark_delivery(delivery["id"], state="failed", error=str(error))
            report.failed.append({**summary, "error": str(error)})
            return "failed", str(error)
        except SenderSetupError as error:
            store.mark_delivery(delivery["id"], state="pending", error=str(error))
            report.pending.append({**summary, "error": str(error)})
            report.stopped = str(error)
            return "pending", str(error)
        except DeliveryFailure as error:
            # Each try is counted and its error kept, so `deliveries` shows a retry waiting.
            store.mark_delivery(delivery["id"], state="pending", error=str(error))
            if attempt < retries:
                report.retries += 1
                sleep(retry_delay * 2 ** attempt)
                continue
            report.pending.append({**summary, "error": str(error)})
            if isinstance(error, ServerUnreachable):
                report.stopped = str(error)
            return "pending", str(error)
        except Exception as error:
            sender.close()  # the connection may be mid-transaction: the next message starts afresh
            reason = f"cannot be sent: {_one_line(error)}"
            store.mark_delivery(delivery["id"], state="failed", error=reason)
            report.failed.append({**summary, "error": reason})
            return "failed", reason
        store.mark_delivery(delivery["id"], state="sent")
        report.sent.append(summary)
        return "sent", None
    raise AssertionError("unreachable")  # the loop always returns
