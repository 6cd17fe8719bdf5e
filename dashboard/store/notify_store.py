"""What notifications keep: channels, the outbox, alert history with its evidence, silences.

Two stores with the same methods: `SqliteNotifyStore` (store/notify_sqlite.py:
one SQLite file under DATA_DIR, WAL mode, for the embedded default) and
`RedisNotifyStore` (store/notify_redis.py: shared by every worker, dyno and host
when REDIS_URL is set; the agent loads only that one). Both keep plain dicts;
what they mean is the alerts layer's business.

A transition is recorded together with one outbox entry per channel in one
write, so a message is either queued for every channel or not at all, and a
queued message survives a restart. Entries leave the outbox when delivered or
given up. Channels and silences are counted and added in one step (a
transaction, a Lua script), so racing workers cannot pass a limit. With Redis one process at a time delivers, under a lease
(`claim_delivery`), so each entry is sent once however many processes run.
"""

from __future__ import annotations

from typing import Protocol

HISTORY_KEEP = 5000


class NotifyStore(Protocol):
    """The methods both stores share (what alerts.delivery and the operations use)."""

    def add_channel(self, name: str, url: str, by: str | None,
                    limit: int | None = None) -> dict | None: ...  # ValueError: name taken; None: full
    def remove_channel(self, name: str) -> dict | None: ...
    def channels(self) -> list[dict]: ...
    def status(self) -> dict[str, dict]: ...
    def note(self, name: str, ok: bool, error: str | None = None) -> None: ...
    def record(self, transition: dict, channels: list[str]) -> dict: ...
    def history(self, n: int) -> list[dict]: ...
    def outbox(self) -> list[dict]: ...
    def reschedule(self, ids: list, attempts: int, next_at: float) -> None: ...
    def done(self, ids: list) -> None: ...
    def add_silence(self, silence: dict, limit: int | None = None) -> dict | None: ...  # None: full
    def silences(self, now: float | None = None) -> list[dict]: ...
    def clear_silence(self, silence_id: str) -> dict | None: ...
    def claim_delivery(self, holder: str, seconds: float) -> bool: ...
    def release_delivery(self, holder: str) -> None: ...
    # The NOTIFY_URLS channels (by name) of the process that delivers, for samplers elsewhere (agents).
    def announce_env(self, names: list[str]) -> None: ...
    def announced_env(self) -> list[str]: ...


def status_update(old: dict | None, ok: bool, error: str | None, now: float) -> dict:
    st = dict(old or {"last_ok": None, "last_error": None, "last_error_at": None, "sent": 0, "failed": 0})
    if ok:
        st["last_ok"] = now
        st["sent"] += 1
    else:
        st["last_error"], st["last_error_at"] = error, now
        st["failed"] += 1
    return st
