"""Alert notifications: record each transition with its evidence, then deliver it from one loop.

`Notifier.record` is all the sampler's path does: one write to the store (the
history entry, and one outbox entry per channel unless a silence holds; that
is alerts/recording.py, which the agent uses alone). The
delivery loop, one greenlet per process (with Redis: only in the process that
holds the delivery lease), sends what is due through Apprise: one greenlet per
channel attempt, each under NOTIFY_TIMEOUT, so a slow channel delays no other.
Every send runs inside the egress policy (alerts.egress): each connection it
makes, redirects and template fetches included, is checked where it is made. Transitions within
NOTIFY_GROUP_SECONDS of the first waiting one go out as one message; a failed
attempt is retried with backoff (1 s doubling to 5 min) until the entry is
NOTIFY_RETRY_HOURS old, then given up. Each channel keeps its last success and
last error; errors are scrubbed of the URL's secrets before they are kept or
logged, and Apprise's own log lines never reach the app's log. Channels and
silences are bounded (MAX_NOTIFY_CHANNELS, MAX_SILENCES), checked by the store
in the same step as the write.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import time
from typing import Callable

import gevent
from gevent.event import Event as _Flag

from ..store.redis_trouble import REFUSALS, refuses_writes
from . import egress, notify, urls
from .recording import Recorder
from .rules import Rule, RuleState

log = logging.getLogger("dashboard.notify")
# Apprise logs URLs and payloads; what matters of it is scrubbed and logged by us.
logging.getLogger("apprise").propagate = False

BACKOFF_FIRST, BACKOFF_MAX = 1.0, 300.0
LEASE_SECONDS = 30.0  # at least; renewed before each channel's attempt


def notify_policy(config) -> egress.Policy:
    """The egress policy of the app's settings; also keys URL fingerprints with SECRET_KEY."""
    urls.set_fingerprint_key(config.get("SECRET_KEY") or "")
    return egress.make_policy(allow_private=config["NOTIFY_ALLOW_PRIVATE"], deny=config["NOTIFY_DENY_NETWORKS"],
                              forbid_redis=config["REDIS_URL"], own_addresses=egress.own_addresses())


class Notifier:
    def __init__(self, store, *, env_urls=(), group_seconds: float = 30.0, retry_hours: float = 24.0,
                 timeout: float = 10.0, public_url: str = "", tick: float = 0.5,
                 errors: tuple = (), fallback_sample: Callable[[str], dict | None] = lambda host: None,
                 policy: egress.Policy | None = None, raw_schemes=(), max_channels: int | None = None,
                 max_silences: int | None = None):
        self.store = store
        self.policy = policy or egress.Policy()
        self.raw_schemes = tuple(raw_schemes)
        self.max_channels, self.max_silences = max_channels, max_silences
        self.env = {f"env{i}": url for i, url in enumerate(env_urls, 1)}
        self.group = group_seconds
        self.retry_seconds = retry_hours * 3600
        self.timeout = timeout
        self.lease_seconds = max(LEASE_SECONDS, 3 * timeout)
        self.public_url = public_url
        self.tick = tick
        self.errors = errors  # the store's "unreachable" errors: logged as warnings, loop goes on
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.counts = {"recorded": 0, "silenced": 0, "sent": 0, "failed": 0, "given_up": 0}
        self.pending = 0
        self.delivering = False
        self._inflight: dict[str, gevent.Greenlet] = {}  # channel -> its attempt under way
        self._announced: list[str] | None = None  # the NOTIFY_URLS names last announced (announce_env)
        self._wake = _Flag()
        self._greenlet: gevent.Greenlet | None = None
        for name, url in self.env.items():
            try:
                notify.check_url(url, self.policy, self.raw_schemes)
            except ValueError as exc:
                log.error("NOTIFY_URLS entry %s (%s) is not used: %s", name, notify.mask(url), exc)
                del self.env[name]
        self.recorder = Recorder(store, lambda: self.env, fallback_sample=fallback_sample, counts=self.counts,
                                 wake=self._wake.set)

    # ---- channels ------------------------------------------------------------------

    def channel_urls(self) -> dict[str, str]:
        out = dict(self.env)
        out.update({c["name"]: c["url"] for c in self.store.channels()})
        return out

    def channels(self) -> list[dict]:
        """Every channel, masked, with its last success and last error."""
        status = self.store.status()
        rows = [{"name": n, "url": u, "source": "NOTIFY_URLS", "by": None} for n, u in self.env.items()]
        rows += [{**c, "source": "console"} for c in self.store.channels()]
        out = []
        for c in rows:
            st = status.get(c["name"]) or {}
            out.append({"name": c["name"], "url": notify.mask(c["url"]), "source": c["source"],
                        "by": c.get("by"), "last_ok": st.get("last_ok"), "last_error": st.get("last_error"),
                        "last_error_at": st.get("last_error_at"), "sent": st.get("sent", 0),
                        "failed": st.get("failed", 0)})
        return out

    def add_channel(self, url: str, name: str | None, by: str | None) -> dict:
        url = notify.check_url(url, self.policy, self.raw_schemes)
        taken = set(self.channel_urls())
        if name is None:
            scheme = url.split("://", 1)[0].lower()
            name = next(f"{scheme}{i or ''}" for i in range(len(taken) + 2) if f"{scheme}{i or ''}" not in taken)
        notify.check_name(name)
        if name in taken:
            raise ValueError(f"a channel named {name!r} exists already; see 'notify list'")
        row = self.store.add_channel(name, url, by, limit=self.max_channels)
        if row is None:
            raise ValueError(f"there are already {self.max_channels} notification channels (MAX_NOTIFY_CHANNELS); "
                             "remove one first (notify list, notify remove <name>)")
        return {"name": row["name"], "url": notify.mask(url)}

    def remove_channel(self, name: str) -> dict:
        if name in self.env:
            raise PermissionError(f"{name!r} comes from NOTIFY_URLS; change the setting to remove it")
        row = self.store.remove_channel(name)
        if row is None:
            raise KeyError(name)
        return {"name": name, "url": notify.mask(row["url"])}

    # ---- recording (the sampler's path: one store write, nothing sent) ------------------------

    def record(self, rule: Rule, st: RuleState, change: str, host: str, sample: dict | None,
               why: str = "") -> dict:
        return self.recorder.record(rule, st, change, host, sample, why)

    def silence_for(self, rule_id: str) -> dict | None:
        return self.recorder.silence_for(rule_id)

    def history(self, n: int) -> list[dict]:
        return [self._linked(t) for t in self.store.history(n)]

    def _linked(self, t: dict) -> dict:
        return {**t, "link": notify.link(self.public_url, t.get("id"), t["ts"])}

    # ---- silences ----------------------------------------------------------------------

    def add_silence(self, rule: str, seconds: float, reason: str | None, by: str | None) -> dict:
        now = time.time()
        silence = self.store.add_silence({"rule": rule, "until": now + seconds, "reason": reason, "by": by,
                                          "created": now}, limit=self.max_silences)
        if silence is None:
            raise ValueError(f"there are already {self.max_silences} silences in force (MAX_SILENCES); "
                             "clear one first (silence list, silence clear <id>)")
        self._wake.set()
        return silence

    # ---- delivery ------------------------------------------------------------------------

    def start(self) -> None:
        if self._greenlet is None or self._greenlet.dead:
            self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        """End the loop; with Redis, hand the delivery over at once instead of when the lease expires."""
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None
            for attempt in list(self._inflight.values()):
                attempt.kill(block=False)
            if self.delivering:
                self.delivering = False
                try:
                    self.store.release_delivery(self.holder)
                except self.errors:
                    pass

    def _run(self) -> None:
        trouble = None  # said once when the store goes away, once when it is back
        while True:
            try:
                self.step(wait=False)
                if trouble is not None:
                    log.info("notification outbox working again")
                    if refuses_writes(trouble):
                        REFUSALS.cleared("the notification outbox")
                    trouble = None
            except self.errors as exc:
                if trouble is None:
                    if refuses_writes(exc):  # said once for the whole process
                        REFUSALS.met(exc, "the notification outbox")
                        log.debug("notification outbox refuses writes (%s); delivery waits for it", exc)
                    else:
                        log.warning("notification outbox unreachable (%s); delivery waits for it", exc)
                trouble = exc
            except Exception:
                log.exception("notification delivery failed")
            self._wake.wait(self.tick)
            self._wake.clear()

    def step(self, now: float | None = None, wait: bool = True) -> None:
        """Start an attempt for each channel with something due (and none under way); reschedule what
        failed; give up what is too old. wait: return once this round's attempts are over."""
        self.delivering = self.store.claim_delivery(self.holder, self.lease_seconds)
        if not self.delivering:
            self.pending = 0
            return
        if self._announced != list(self.env):  # the channels agents queue for: this deliverer's
            self.store.announce_env(list(self.env))
            self._announced = list(self.env)
        # The channels with an attempt under way before the outbox is read: one that ends while
        # it is read (the read yields) has marked its entries done after this copy was made,
        # and sending them from the copy would send them twice. They wait for the next round.
        busy = set(self._inflight)
        entries = self.store.outbox()
        self.pending = len(entries)
        if not entries:
            return
        now = time.time() if now is None else now
        urls = self.channel_urls()
        silenced = {s["rule"] for s in self.store.silences(now)}
        by_channel: dict[str, list[dict]] = {}
        for e in entries:
            by_channel.setdefault(e["channel"], []).append(e)
        due = []
        for name, rows in by_channel.items():
            if name in busy or name in self._inflight:
                continue
            if name not in urls:
                self.store.done([e["id"] for e in rows])
                continue
            old = [e for e in rows if now - e["created"] > self.retry_seconds]
            if old:
                self.store.done([e["id"] for e in old])
                self.counts["given_up"] += len(old)
                log.warning("gave up %d notification(s) to %s after %g h", len(old), name,
                            self.retry_seconds / 3600)
            muted = [e for e in rows if e not in old and
                     ("all" in silenced or e["transition"]["rule"]["id"] in silenced)]
            if muted:
                self.store.done([e["id"] for e in muted])
            rows = [e for e in rows if e not in old and e not in muted]
            if not rows or min(e["next_at"] for e in rows) > now:
                continue
            if now < min(e["created"] for e in rows) + self.group:
                continue  # the group is still open
            due.append((name, rows))
        # Renew first, so no other process takes over while these attempts run (each < lease / 3).
        if due and not self.store.claim_delivery(self.holder, self.lease_seconds):
            self.delivering = False
            return
        started = [self._start(name, urls[name], rows, now) for name, rows in due]
        if wait:
            gevent.joinall(started)

    def _start(self, name: str, url: str, rows: list[dict], now: float) -> gevent.Greenlet:
        def attempt():
            try:
                self._deliver(name, url, rows, now)
            except self.errors as exc:
                log.warning("notification outbox unreachable while noting a send to %s (%s)", name, exc)
            except Exception:
                log.exception("notification delivery to %s failed", name)
            finally:
                self._inflight.pop(name, None)

        self._inflight[name] = gevent.spawn(attempt)
        return self._inflight[name]

    def _deliver(self, name: str, url: str, rows: list[dict], now: float) -> None:
        group = sorted((self._linked(e["transition"]) for e in rows), key=lambda t: t["ts"])
        title, body = notify.compose(group)
        ok, error = self.send(url, title, body)
        ids = [e["id"] for e in rows]
        self.store.note(name, ok, error)
        if ok:
            self.store.done(ids)
            self.counts["sent"] += 1
            log.info("notified %s: %s (%d transition(s))", name, title, len(rows))
            return
        attempts = max(e["attempts"] for e in rows) + 1
        wait = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (attempts - 1)) * random.uniform(0.8, 1.0)
        self.store.reschedule(ids, attempts, now + wait)
        self.counts["failed"] += 1
        log.warning("notification to %s failed (attempt %d, next in %.0f s): %s", name, attempts, wait, error)

    def send(self, url: str, title: str, body: str) -> tuple[bool, str | None]:
        """One attempt through Apprise, under the timeout and the egress policy; (ok, scrubbed error)."""
        try:  # stored URLs too: one kept from before a setting changed is refused now
            notify.check_url(url, self.policy, self.raw_schemes)
        except ValueError as exc:
            return False, notify.scrub(str(exc), [url])
        apprise = notify.apprise()
        # One URL per Apprise object, sent in this greenlet (service_timeout=0: no worker thread; the
        # gevent timeout below interrupts the send itself); redirects are not followed.
        target = apprise.Apprise(asset=apprise.AppriseAsset(async_mode=False, http_redirects=False,
                                                            service_timeout=0))
        error, said = None, ""
        with egress.confined(self.policy) as confinement:
            if not target.add(url):
                return False, "not a notification URL Apprise knows"
            try:
                with gevent.Timeout(self.timeout):
                    result = target.notify(body=body, title=title, body_format=apprise.NotifyFormat.TEXT)
                ok = bool(result)
                said = " ".join(" ".join(entry.message.split()) for entry in result.logs())
            except gevent.Timeout:
                ok, error = False, f"timed out after {self.timeout:g} s"
            except Exception as exc:  # a plugin's bug must not stop the loop
                ok, error = False, f"{type(exc).__name__}: {exc}"
        if confinement.refused:
            ok, error = False, f"refused by the notification egress policy: {confinement.refused[0]}"
        if not ok:
            error = notify.scrub((error or said or "the service refused the message")[:500], [url])
        return ok, error

    def test(self, name: str | None, by: str | None) -> list[dict]:
        """Send a test message now to one channel or all; the outcome of each."""
        urls = self.channel_urls()
        if name is not None:
            if name not in urls:
                raise KeyError(name)
            urls = {name: urls[name]}
        body = (f"A test message sent by {by or 'an operator'} with 'notify test'."
                + (f"\nDashboard: {self.public_url}" if self.public_url else ""))
        attempts = {n: gevent.spawn(self.send, url, "[TEST] dashboard notifications work", body)
                    for n, url in urls.items()}  # all at once: one slow channel delays no other
        gevent.joinall(list(attempts.values()))
        out = []
        for n, attempt in attempts.items():
            ok, error = attempt.value if attempt.successful() else (False, "the attempt failed (see the log)")
            self.store.note(n, ok, error)
            out.append({"name": n, "ok": ok, "error": error})
        return out
