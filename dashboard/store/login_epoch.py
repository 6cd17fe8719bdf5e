"""The generation every login cookie carries, kept where the logouts are kept.

A logout is a revocation record (store.audit: SQLite, or Redis's `revoked`
set). If that store loses its data (Redis flushed, restarted without
persistence, evicted; the audit file deleted), the record goes and a replayed
logged-out cookie would be a login again. So each cookie also carries the
store's login generation, a random value made by the first login and kept
beside the revocations: a store that lost them lost the generation too, so
every cookie made before is refused (everyone logs in again) and none comes
back. A store that cannot be read raises StoreUnavailable: the caller refuses
the cookie, never accepts it.
"""

from __future__ import annotations

import secrets
import sqlite3

from .audit import AuditStore, StoreUnavailable


class RedisLoginEpoch:
    def __init__(self, store, errors: tuple[type[BaseException], ...]) -> None:
        self.store = store  # store.redis_store.RedisStore
        self.errors = errors

    def current(self) -> str:
        """The generation a new login cookie carries."""
        try:
            return self.store.login_epoch()
        except self.errors as exc:
            raise StoreUnavailable(f"Redis is unreachable: {exc}") from None

    def valid(self, epoch: str | None, session: str) -> bool:
        """True when a cookie of this generation and session id is still a login."""
        try:
            current, revoked = self.store.login_state(session)
        except self.errors as exc:
            raise StoreUnavailable(f"Redis is unreachable: {exc}") from None
        return epoch is not None and epoch == current and not revoked


class SqliteLoginEpoch:
    """The generation in the audit log's own file (its revocations live there), read at start."""

    def __init__(self, path: str, audit: AuditStore) -> None:
        self.audit = audit
        with sqlite3.connect(path, timeout=10) as db:
            db.execute("CREATE TABLE IF NOT EXISTS login_epoch (epoch TEXT NOT NULL)")
            row = db.execute("SELECT epoch FROM login_epoch LIMIT 1").fetchone()
            if row is None:
                row = (secrets.token_urlsafe(12),)
                db.execute("INSERT INTO login_epoch (epoch) VALUES (?)", row)
        self.epoch = row[0]

    def current(self) -> str:
        return self.epoch

    def valid(self, epoch: str | None, session: str) -> bool:
        return epoch == self.epoch and not self.audit.is_revoked(session)
