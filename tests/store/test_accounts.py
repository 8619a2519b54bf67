"""The console's part of the store (migration 007): users with case-blind names, sessions
that end on expiry, a new password or disabling, the access log's retention, and the
deadline each notice version left (so a notice's history says where its deadline moved)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tendermatch.crawler.parsers.common import finish_record, new_record
from tendermatch.store import AccountError, NoticeFilter, Store


@pytest.fixture
def store():
    opened = Store.memory()
    yield opened
    opened.close()


def test_users_are_unique_case_blind_and_roles_are_checked(store):
    store.add_user("Anna", role="staff", password_hash="h1")
    with pytest.raises(AccountError, match="already exists"):
        store.add_user("anna", role="viewer", password_hash="h2")
    with pytest.raises(AccountError, match="role"):
        store.add_user("bo", role="admin", password_hash="h3")
    assert store.user("ANNA")["password_hash"] == "h1"
    assert [user["name"] for user in store.users()] == ["Anna"] and "password_hash" not in store.users()[0]
    with pytest.raises(AccountError, match="no user"):
        store.set_user_disabled("nobody", True)


def test_a_session_ends_on_expiry_a_new_password_or_disabling(store):
    store.add_user("anna", role="staff", password_hash="h")
    store.add_session("t1", user_name="anna", lifetime=timedelta(hours=1))
    assert store.session_user("t1")["role"] == "staff"
    store.add_session("t0", user_name="anna", lifetime=timedelta(seconds=-1))
    assert store.session_user("t0") is None
    store.set_user_password("anna", "h2")
    assert store.session_user("t1") is None
    store.add_session("t2", user_name="anna", lifetime=timedelta(hours=1))
    store.set_user_disabled("anna", True)
    assert store.session_user("t2") is None and store.user_count() == 0
    store.set_user_disabled("anna", False)
    store.add_session("t3", user_name="anna", lifetime=timedelta(hours=1))
    store.end_session("t3")
    assert store.session_user("t3") is None


def test_the_access_log_keeps_rows_for_the_configured_days(store):
    store.db.execute("INSERT INTO access_log (at, user_name, action, subject) VALUES"
                     " ('2000-01-01T00:00:00+00:00', 'old', 'enterprise', 'x')")
    store.log_access(user_name="anna", action="enterprise", subject="maaltidsvaerkstedet", keep_days=30)
    assert [(row["user_name"], row["subject"]) for row in store.access_log()] == [("anna", "maaltidsvaerkstedet")]


def test_a_notice_history_keeps_each_versions_deadline(store):
    def put(deadline: str, change: str) -> None:
        record = finish_record(new_record(id="x:1", title="Vinduespudsning", deadline=deadline, cpv=["90911300"]))
        store.put_notice(record, keys=["pub:1"], source="test", source_url=None, raw_id=None, change=change,
                         fields=[] if change == "new" else ["deadline"])

    put("2026-03-01T12:00:00", "new")
    put("2026-03-15T12:00:00", "updated")
    store.set_status(["x:1"], "cancelled", source="test", raw_id=None)
    versions = store.console_notice("x:1")["versions"]
    assert [(v["change"], v["previous_deadline"], v["deadline"]) for v in versions] == [
        ("new", None, "2026-03-01T12:00:00"), ("updated", "2026-03-01T12:00:00", "2026-03-15T12:00:00"),
        ("cancelled", "2026-03-15T12:00:00", "2026-03-15T12:00:00")]
    rows, total = store.console_notices(NoticeFilter(search="pudsning", buyer=""), today="2026-01-01", limit=10)
    assert total == 1 and rows[0]["id"] == "x:1"
