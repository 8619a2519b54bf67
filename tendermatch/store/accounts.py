"""Staff accounts for the console: users, their sessions, and the access log (who opened
which enterprise's page or exported personal data). The store keeps password hashes and
the hashes of session tokens only; hashing and checking passwords is the web's business."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

from .connection import Connection, StoreError, utc_now

ROLES = ("staff", "viewer")  # staff: everything; viewer: no personal data


class AccountError(StoreError, ValueError):
    """A user that does not exist, already exists, or a role that is not one of ROLES."""


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


class Accounts(Connection):
    """Users, sessions and the access log."""

    # -- users ---------------------------------------------------------------------------

    def add_user(self, name: str, *, role: str, password_hash: str) -> None:
        """A new user; AccountError if the name is taken (names are compared case-blind)."""
        if role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        try:
            with self.transaction():
                self.db.execute("INSERT INTO users (name, role, password_hash, disabled, created_at, password_set_at)"
                                " VALUES (?, ?, ?, 0, ?, ?)", [name, role, password_hash, utc_now(), utc_now()])
        except StoreError as error:
            if isinstance(error.__cause__, sqlite3.IntegrityError):
                raise AccountError(f"a user named {name!r} already exists") from None
            raise

    def user(self, name: str) -> dict[str, Any] | None:
        """A user by name (case-blind), with its password hash; None if there is none."""
        rows = list(self.db.query("SELECT * FROM users WHERE name = ? COLLATE NOCASE", [name]))
        return rows[0] if rows else None

    def users(self) -> list[dict[str, Any]]:
        """Every user without the password hash, by name, with the time of the last login."""
        return list(self.db.query(
            "SELECT u.name, u.role, u.disabled, u.created_at, u.password_set_at,"
            " (SELECT max(s.created_at) FROM sessions AS s WHERE s.user_name = u.name) AS last_login"
            " FROM users AS u ORDER BY u.name COLLATE NOCASE"))

    def user_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM users WHERE NOT disabled").fetchone()[0]

    def set_user_password(self, name: str, password_hash: str) -> None:
        """Replace a user's password hash; the user's sessions end (a changed password logs out)."""
        with self.transaction():
            user = self._existing(name)
            self.db.execute("UPDATE users SET password_hash = ?, password_set_at = ? WHERE name = ?",
                            [password_hash, utc_now(), user])
            self.db.execute("DELETE FROM sessions WHERE user_name = ?", [user])

    def set_user_disabled(self, name: str, disabled: bool) -> None:
        """Disable (or enable again) a user; a disabled user's sessions end at once."""
        with self.transaction():
            user = self._existing(name)
            self.db.execute("UPDATE users SET disabled = ? WHERE name = ?", [int(disabled), user])
            if disabled:
                self.db.execute("DELETE FROM sessions WHERE user_name = ?", [user])

    def _existing(self, name: str) -> str:
        row = self.db.execute("SELECT name FROM users WHERE name = ? COLLATE NOCASE", [name]).fetchone()
        if row is None:
            raise AccountError(f"no user named {name!r} (see `tendermatch users list`)")
        return str(row[0])

    # -- sessions ------------------------------------------------------------------------

    def add_session(self, token_hash: str, *, user_name: str, lifetime: timedelta) -> None:
        """A session for a user, ending after ``lifetime``; expired sessions are dropped here."""
        now = datetime.now(UTC)
        with self.transaction():
            self.db.execute("DELETE FROM sessions WHERE expires_at < ?", [_timestamp(now)])
            self.db.execute("INSERT INTO sessions (token_hash, user_name, created_at, expires_at)"
                            " VALUES (?, ?, ?, ?)",
                            [token_hash, user_name, _timestamp(now), _timestamp(now + lifetime)])

    def session_user(self, token_hash: str) -> dict[str, Any] | None:
        """The user (name, role) of a session that has not expired, whose user is enabled; else None."""
        rows = list(self.db.query(
            "SELECT u.name, u.role, s.expires_at FROM sessions AS s JOIN users AS u ON u.name = s.user_name"
            " WHERE s.token_hash = ? AND s.expires_at > ? AND NOT u.disabled", [token_hash, utc_now()]))
        return rows[0] if rows else None

    def end_session(self, token_hash: str) -> None:
        self.db.execute("DELETE FROM sessions WHERE token_hash = ?", [token_hash])
        self.db.conn.commit()

    # -- access log ----------------------------------------------------------------------

    def log_access(self, *, user_name: str, action: str, subject: str, keep_days: int) -> None:
        """Record that a user looked at or exported personal data (``action``: ``enterprise``
        or ``export``; ``subject``: the enterprise's id or the export's name); rows older
        than ``keep_days`` days go in the same transaction."""
        now = datetime.now(UTC)
        with self.transaction():
            self.db.execute("DELETE FROM access_log WHERE at < ?", [_timestamp(now - timedelta(days=keep_days))])
            self.db.execute("INSERT INTO access_log (at, user_name, action, subject) VALUES (?, ?, ?, ?)",
                            [_timestamp(now), user_name, action, subject])

    def access_log(self, *, limit: int = 200, user_name: str | None = None) -> list[dict[str, Any]]:
        """The newest access-log rows first."""
        sql, params = "SELECT at, user_name, action, subject FROM access_log", []
        if user_name:
            sql += " WHERE user_name = ?"
            params.append(user_name)
        return list(self.db.query(sql + " ORDER BY id DESC LIMIT ?", [*params, int(limit)]))
