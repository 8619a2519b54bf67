"""Shared helpers for the notifier tests: a fresh in-memory store holding real notices and
the match log the real matcher wrote for the sample profiles."""

from __future__ import annotations

import email
import email.policy
from datetime import date
from email.message import EmailMessage
from typing import Any

from tendermatch.matcher.profiles import Profile
from tendermatch.matcher.run import match_store
from tendermatch.notifier.digest import Recipient
from tendermatch.notifier.run import DigestSettings
from tendermatch.store import Store
from tests.conftest import SAMPLE
from tests.matcher.helpers import KANTINE, LIMPIEZA, MADSERVICE_RODOVRE, agreement, folder_records, sample

AS_OF = date(2016, 1, 1)
SECRET = b"a-test-secret-of-enough-length"
SETTINGS = DigestSettings(sender="Udbudsvagten <udbud@kk.example>", base_url="https://udbud.kk.example")


def fill(store: Store, records: list[dict[str, Any]]) -> None:
    for record in records:
        store.put_notice(record, keys=[], source="test", source_url=None, raw_id=None, change="new", fields=[],
                         format=record.pop("format", None))


def recipient(profile: Profile) -> Recipient:
    return Recipient(profile_id=profile.id, name=profile.name, emails=profile.emails, language=profile.language,
                     max_items=profile.max_items)


def matched_store(profiles: list[Profile], records: list[dict[str, Any]] | None = None, *,
                  as_of: date = AS_OF) -> Store:
    """A fresh in-memory store with ``records`` (default: the Danish TED sample, the
    reserved cleaning notice and an agreement) matched for ``profiles``."""
    store = Store.memory()
    if records is None:
        records = [*folder_records(SAMPLE / "ted-dk"), sample(LIMPIEZA)]
        for record in records:
            record["format"] = "ted-xml" if record["id"].startswith("ted:") else "eforms"
    fill(store, records)
    match_store(store, profiles, as_of=as_of)
    return store


def parse_message(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


__all__ = ["AS_OF", "KANTINE", "MADSERVICE_RODOVRE", "SECRET", "SETTINGS", "agreement", "fill", "matched_store",
           "parse_message", "recipient", "sample"]
