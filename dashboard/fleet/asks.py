"""Asking another host's sampler to act, over Redis: `container restart <name> --host`.

The console that asks adds one entry to the host's asks stream
(`{p}:asks:{host}`, the last ASKS_KEPT) and waits for its reply on a list of
its own (`{p}:reply:{id}`, expiring) for at most its timeout. Every process
that samples hosts reads its host's stream with one blocking read at a time;
only the holder of the host's sampler lease acts, and only as that host was
started: with ALLOW_PROCESS_CONTROL=1 there (the host's operator decides, not
the asker). An ask older than ASK_SECONDS when read is refused, so a host that
comes back never acts on old asks. Replies are plain dicts: `ok`, and `code`
and `message` when not.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from typing import Callable

from ..store.redis_store import RedisStore

log = logging.getLogger("dashboard.fleet")

ASK_SECONDS = 30.0
ASKS_KEPT = 100
REPLY_SECONDS = 60
_READ_MS = 5000  # one blocking read; the reader's socket allows 10 s more
_ID = re.compile(r"[0-9a-f]{16}")


class NoAnswer(TimeoutError):
    """The host's sampler did not reply in time (not running), or Redis did not carry the ask."""


class Asks:
    def __init__(self, store: RedisStore, host: str, act: Callable[[dict], dict] | None,
                 holding: Callable[[], bool]) -> None:
        self.store = store
        self.host = host
        self.act = act  # None: this process never acts (it only asks)
        self.holding = holding  # True while this process samples its host
        self.answered = 0
        self.stopped = False  # run() ends after its current read (a services Task kills it sooner)
        self.read_ms = _READ_MS
        self.last = "$"  # the id of the last ask read ("$": none yet, start at the stream's end)

    def ask(self, host: str, what: dict, timeout: float) -> dict:
        """Send `what` to host's sampler; its reply, or NoAnswer after `timeout` seconds."""
        rid = os.urandom(8).hex()  # as secrets.token_hex, without loading OpenSSL into the agent
        body = json.dumps({**what, "id": rid, "at": time.time()}, separators=(",", ":"))
        deadline = time.monotonic() + timeout
        try:
            self.store.r.xadd(self.store.key("asks", host), {"ask": body}, maxlen=ASKS_KEPT, approximate=True)
            while (left := deadline - time.monotonic()) > 0:
                found = self.store.reader.blpop([self.store.key("reply", rid)], timeout=max(1, min(5, int(left))))
                if found is not None:
                    return json.loads(found[1])
        except self.store.errors as exc:
            raise NoAnswer(f"Redis did not carry the ask to {host} ({type(exc).__name__})") from None
        raise NoAnswer(f"{host} did not answer within {timeout:g} s (is its sampler running?)")

    def run(self) -> None:
        """Answer this host's asks while the process lives (a services Task)."""
        if self.act is None:
            return
        key, backoff = self.store.key("asks", self.host), 1.0
        while not self.stopped:
            try:
                found = self.store.reader.xread({key: self.last}, count=10, block=self.read_ms)
                backoff = 1.0
            except self.store.errors as exc:
                log.debug("asks of %s cannot be read (%s); retrying in %g s", self.host, exc, backoff)
                time.sleep(backoff)  # a web process's: cooperative, gevent patched it
                backoff = min(30.0, backoff * 2)
                continue
            self._answer_all(found)

    def poll(self) -> None:
        """Answer the asks that came since the last look, without waiting (the agent's one loop)."""
        key = self.store.key("asks", self.host)
        if self.last == "$":  # where the stream ends now: asks made from here on are answered
            newest = self.store.r.xrevrange(key, count=1)
            self.last = newest[0][0] if newest else "0-0"
        self._answer_all(self.store.r.xread({key: self.last}, count=10))

    def _answer_all(self, found) -> None:
        for _stream, entries in found or ():
            for entry_id, fields in entries:
                self.last = entry_id
                self.answer(fields.get("ask"))

    def answer(self, body: str | None) -> dict | None:
        """Act on one ask and reply to it (None: not this process's to answer, or no reply address)."""
        if not self.holding():
            return None
        try:
            ask = json.loads(body or "")
        except ValueError:
            return None
        if not isinstance(ask, dict) or not isinstance(ask.get("id"), str) or not _ID.fullmatch(ask["id"]):
            return None
        at = ask.get("at")
        if not isinstance(at, (int, float)) or time.time() - at > ASK_SECONDS:
            reply = {"ok": False, "code": "stale", "message": f"the ask reached {self.host} over {ASK_SECONDS:g} s late"}
        else:
            try:
                reply = self.act(ask)
            except Exception as exc:  # the reply says so; the loop goes on
                log.exception("an ask to %s failed", self.host)
                reply = {"ok": False, "code": "internal", "message": f"{self.host} failed: {type(exc).__name__}"}
        try:
            pipe = self.store.r.pipeline(transaction=False)
            pipe.lpush(self.store.key("reply", ask["id"]), json.dumps(reply, separators=(",", ":")))
            pipe.expire(self.store.key("reply", ask["id"]), REPLY_SECONDS)
            pipe.execute()
            self.answered += 1
        except self.store.errors as exc:
            log.warning("the reply to an ask to %s was lost: %s", self.host, exc)
        return reply
