"""Exactly once, through the outbox: a digest is recorded before it is written and marked
sent after; reruns add nothing; a pending digest from an interrupted run goes out on the next
with the same Message-ID; a notice told earlier comes back once when its deadline moves or it
is cancelled; an unsubscribed address gets nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tendermatch.notifier.run import DigestSettings, deliver_pending, plan_digests
from tendermatch.notifier.send import OutboxSender
from tests.matcher.helpers import KANTINE, MADSERVICE_RODOVRE, sample, sample_profile
from tests.notifier.helpers import AS_OF, SECRET, SETTINGS, fill, matched_store, parse_message, recipient

W1, W2, W3 = "2016-W01", "2016-W02", "2016-W03"


@pytest.fixture
def kitchen():
    profile = replace(sample_profile("maaltidsvaerkstedet"), emails=("kontakt@mv.example",))
    store = matched_store([profile], [sample(KANTINE), sample(MADSERVICE_RODOVRE)])
    yield store, recipient(profile)
    store.close()


def run(store, reader, period, outbox, *, settings=SETTINGS):
    planned = plan_digests(store, [reader], period=period, as_of=AS_OF, settings=settings, secret=SECRET,
                           record=True)
    report = deliver_pending(store, OutboxSender(outbox), from_address="udbud@kk.example", retry_delay=0)
    return planned, report


def messages(outbox):
    return {path.name: parse_message(path.read_bytes()) for path in sorted(outbox.glob("*.eml"))}


def test_a_rerun_sends_nothing_new(kitchen, tmp_path):
    store, reader = kitchen
    planned, report = run(store, reader, W1, tmp_path)
    assert len(planned) == 1 and len(report.sent) == 1
    assert planned[0].items == 2
    [delivery] = store.deliveries()
    assert delivery["state"] == "sent" and delivery["items"] == 2 and delivery["sent_at"]
    assert sorted(item["notice_id"] for item in store.delivery_items(delivery["id"])) == \
        ["ted:095237-2016", "ted:433955-2016"]
    planned, report = run(store, reader, W1, tmp_path)
    assert planned == [] and report.sent == []
    assert len(messages(tmp_path)) == 1


def test_matches_told_once_are_not_told_again_next_week(kitchen, tmp_path):
    store, reader = kitchen
    run(store, reader, W1, tmp_path)
    planned, _ = run(store, reader, W2, tmp_path)
    assert planned == []  # nothing new: no e-mail
    planned, _ = run(store, reader, W2, tmp_path, settings=replace(SETTINGS, send_empty=True))
    assert [plan.items for plan in planned] == [0]  # the configurable "nothing this week" note
    note = messages(tmp_path)[f"{W2}-maaltidsvaerkstedet-2.eml"]
    assert note["Subject"] == "Uge 2: ingen nye udbud til Måltidsværkstedet"
    assert "Vi fandt ingen nye udbud til jer i uge 2" in note.get_body(("plain",)).get_content()


def test_a_pending_digest_from_an_interrupted_run_goes_out_once_with_its_message_id(kitchen, tmp_path):
    store, reader = kitchen
    # The run was killed after recording the digest and before the outbox had it.
    [plan] = plan_digests(store, [reader], period=W1, as_of=AS_OF, settings=SETTINGS, secret=SECRET, record=True)
    assert [d["state"] for d in store.deliveries()] == ["pending"] and not list(tmp_path.glob("*.eml"))
    planned, report = run(store, reader, W1, tmp_path)  # the rerun plans nothing and completes the pending one
    assert planned == [] and len(report.sent) == 1
    [message] = messages(tmp_path).values()
    assert message["Message-ID"] == plan.message_id


def test_an_outbox_that_cannot_be_written_leaves_the_digest_pending(kitchen, tmp_path):
    store, reader = kitchen
    blocked = tmp_path / "outbox"
    blocked.write_text("a file where the folder should be")
    plan_digests(store, [reader], period=W1, as_of=AS_OF, settings=SETTINGS, secret=SECRET, record=True)
    report = deliver_pending(store, OutboxSender(blocked), from_address="udbud@kk.example", retries=1,
                             retry_delay=0)
    assert report.sent == [] and len(report.pending) == 1 and report.retries == 1
    [delivery] = store.deliveries()
    assert delivery["state"] == "pending" and str(blocked) in delivery["error"] and delivery["attempts"] == 2
    blocked.unlink()
    report = deliver_pending(store, OutboxSender(blocked), from_address="udbud@kk.example", retry_delay=0)
    assert len(report.sent) == 1 and len(messages(blocked)) == 1


def test_a_moved_deadline_is_told_once_more(kitchen, tmp_path):
    store, reader = kitchen
    run(store, reader, W1, tmp_path)
    moved = sample(KANTINE)
    moved["deadline"] = "2016-04-20T13:00:00"
    fill(store, [moved])
    planned, _ = run(store, reader, W2, tmp_path)
    assert [(plan.items, plan.changed) for plan in planned] == [(0, 1)]
    message = messages(tmp_path)[f"{W2}-maaltidsvaerkstedet-2.eml"]
    assert message["Subject"] == "Uge 2: ændringer i udbud til Måltidsværkstedet"
    text = message.get_body(("plain",)).get_content()
    assert "== Ændret siden sidst ==" in text
    assert "Fristen er flyttet fra 6. april 2016 kl. 13.00 til 20. april 2016 kl. 13.00." in text
    planned, _ = run(store, reader, W3, tmp_path)
    assert planned == []  # told once: not again


def test_the_same_deadline_written_with_its_offset_is_not_a_change(kitchen, tmp_path):
    store, reader = kitchen
    run(store, reader, W1, tmp_path)
    rewritten = sample(KANTINE)
    assert rewritten["deadline"] == "2016-04-06T13:00:00"
    rewritten["deadline"] = "2016-04-06T13:00:00+02:00"  # the same moment in Copenhagen (summer time)
    fill(store, [rewritten])
    assert run(store, reader, W2, tmp_path)[0] == []


def test_a_cancelled_notice_is_told_once_more(kitchen, tmp_path):
    store, reader = kitchen
    run(store, reader, W1, tmp_path)
    store.set_status(["ted:433955-2016"], "cancelled", source="test", raw_id=None)
    planned, _ = run(store, reader, W2, tmp_path)
    assert [(plan.items, plan.changed) for plan in planned] == [(0, 1)]
    text = messages(tmp_path)[f"{W2}-maaltidsvaerkstedet-2.eml"].get_body(("plain",)).get_content()
    assert "Forhåndsmeddelelse om madservice til Rødovre Kommune" in text and "Udbuddet er aflyst." in text
    assert run(store, reader, W3, tmp_path)[0] == []


def test_an_unsubscribed_address_gets_nothing_and_the_others_still_do(tmp_path):
    profile = sample_profile("maaltidsvaerkstedet")  # two addresses
    store = matched_store([profile], [sample(KANTINE)])
    reader = recipient(profile)
    assert store.unsubscribe(profile.id, profile.emails[1].upper(), via="test")
    assert not store.unsubscribe(profile.id, profile.emails[1], via="test")  # already
    planned, _report = run(store, reader, W1, tmp_path)
    assert [plan.email for plan in planned] == [profile.emails[0]]
    assert [message["To"] for message in messages(tmp_path).values()] == [profile.emails[0]]


def test_a_dry_run_records_nothing(kitchen):
    store, reader = kitchen
    planned = plan_digests(store, [reader], period=W1, as_of=AS_OF, settings=SETTINGS, secret=SECRET, record=False)
    assert len(planned) == 1 and planned[0].delivery_id is None
    assert store.deliveries() == []


def test_the_demo_setting_keeps_old_notices_in(kitchen):
    store, reader = kitchen
    later = replace(SETTINGS, check_deadlines=False)
    assert isinstance(later, DigestSettings)
    planned = plan_digests(store, [reader], period="2026-W48", as_of=AS_OF.replace(year=2026), settings=later,
                           secret=SECRET, record=False)
    assert planned[0].items == 2
    planned = plan_digests(store, [reader], period="2026-W48", as_of=AS_OF.replace(year=2026), settings=SETTINGS,
                           secret=SECRET, record=False)
    assert planned[0].items == 1  # the tender's deadline passed; the early notice has none
