"""Every setting the app reads, declared once: name, default, help.

Settings come from environment variables (the platform way: Heroku, Dokku and
Render all configure apps this way). `create_app` layers them: these defaults,
then the environment, then a test's dict. docs/settings.md, made from these
declarations by `python -m docsgen`, documents each one; a test checks that it
does.

This module imports nothing heavy so `gunicorn.conf.py` can read it in the
master process before the gevent worker patches the standard library.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from . import setting_kinds as kinds


class SettingError(ValueError):
    """A setting's value from the environment could not be used."""


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str
    secret: bool = False  # never printed or logged


SETTINGS: tuple[Setting, ...] = (
    Setting("HOST", "0.0.0.0", "Address gunicorn binds to. The run script uses 127.0.0.1."),
    Setting("PORT", 8000, "TCP port to listen on; platforms set it.", kinds.ranged(int, 1, 65535)),
    Setting("WEB_CONCURRENCY", 1,
            "gunicorn worker processes. Above 1 only with REDIS_URL (each would keep its own sampler, "
            "buffer and state otherwise); without it the app warns and runs one worker.",
            kinds.ranged(int, 1, 64)),
    Setting("WORKER_CONNECTIONS", kinds.default_worker_connections(),
            "Open connections one gevent worker serves (streams, sockets and plain requests together); "
            "past it, 503 server_full. Default: the open-files limit minus 256 and minus the stat files the "
            "process table keeps open (4,096, or a quarter of a lower limit).", kinds.ranged(int, 10, 1_000_000)),
    Setting("GRACEFUL_TIMEOUT", 25,
            "Seconds a worker gets to finish after SIGTERM; must be more than DRAIN_SECONDS (the drain, "
            "then the stores' last writes). Heroku kills at 30 s.", kinds.ranged(int, 1, 600)),
    Setting("DRAIN_SECONDS", 20.0,
            "After SIGTERM, event streams (each with a jittered retry:) and consoles (close 1012) end at "
            "random moments spread over this many seconds, so viewers come back spread out rather than "
            "all at once; /healthz says draining (503). 0: all at once. Keep it below the platform's "
            "kill time minus a few seconds (Heroku 30 s, Render 30 s by default, Railway 3 s by "
            "default).", kinds.ranged(float, 0.0, 590.0)),
    Setting("KEEPALIVE_SECONDS", 100,
            "How long an idle HTTP connection is kept open for its next request (gunicorn's keepalive). "
            "Above a router's own idle limit (Heroku's Router 2.0 keeps connections to the app up to 90 "
            "s), so the app never closes one the router is about to reuse. Idle ones are closed when the "
            "worker leaves. 0: one request per connection.", kinds.ranged(int, 0, 3600)),
    Setting("SAMPLE_INTERVAL", 1.0,
            "Seconds between samples at start (0.25 to 60). Operators change it at run time.",
            kinds.ranged(float, 0.25, 60.0)),
    Setting("HISTORY_SECONDS", 3600,
            "How much history the charts keep at full resolution (every sample), and this process's "
            "event buffer in memory. Past RESUME_SECONDS the stores keep only the charts' numbers of it, "
            "packed a minute at a time.", kinds.ranged(int, 10, 7 * 24 * 3600)),
    Setting("RESUME_SECONDS", 300,
            "How long whole events (every process, disk and interface of each sample) are kept in SQLite "
            "or Redis: a viewer whose last event is younger resumes without a gap, after a restart or a "
            "deploy too. Longer than a restart storm takes to reconnect everyone and than the longest "
            "pause a phone or a proxy puts between two connections; at most HISTORY_SECONDS. Each 60 s "
            "costs a host about 30 KB of Redis.", kinds.ranged(int, 120, 7 * 24 * 3600)),
    Setting("HEARTBEAT_SECONDS", 15.0,
            "Longest silence on an event stream before a heartbeat comment is sent (Heroku's router cuts "
            "connections idle for 55 s).", kinds.ranged(float, 0.05, 50.0)),
    Setting("SSE_RETRY_MS", 2000,
            "Reconnect delay the event stream asks browsers to use (the `retry:` field).",
            kinds.ranged(int, 100, 600_000)),
    Setting("STREAM_MAX_SECONDS", 270.0,
            "An event stream ends by itself after a random 90-100 % of this (243-270 s by default), with "
            "a jittered retry:, and the client resumes with Last-Event-ID, missing nothing: before a "
            "proxy cuts it (Railway ends every request at 5 min) and spread out, never all at once. 0: "
            "never.", kinds.ranged(float, 0.0, 7 * 86400.0)),
    Setting("STREAM_OPENS_PER_SECOND", 500,
            "New event streams admitted a second (at once: a quarter of that, so no second admits more than "
            "1.25 times it); past it a stream gets a short 200 "
            "answer with a random retry: (longer the bigger the crowd) and comes back by itself with its "
            "Last-Event-ID: after a restart every viewer returns within seconds, and opening a stream "
            "costs far more than keeping one. 0: no limit.", kinds.ranged(int, 0, 1_000_000)),
    Setting("VIEWER_BACKLOG", 64,
            "Events a slow viewer may fall behind before its stream is closed. Backlogs are positions in "
            "the shared buffer, never copies.", kinds.ranged(int, 1, 100_000)),
    Setting("VIEWER_SEND_BUFFER", 65536,
            "Kernel send buffer per event stream, in bytes (0: the system's autotuning, up to megabytes). "
            "Bounds what a stalled viewer holds before its backlog starts counting.",
            kinds.ranged(int, 0, 16 * 1024 * 1024)),
    Setting("VIEWER_WRITE_TIMEOUT", 10.0,
            "Seconds a stalled viewer may block one write before its stream is closed.",
            kinds.ranged(float, 0.1, 600.0)),
    Setting("TOP_PROCESSES", 10,
            "Processes listed in each sample's top-by-CPU and top-by-memory tables.",
            kinds.ranged(int, 1, 100)),
    Setting("CONTAINERS", "auto",
            "auto: list the host's running containers from their cgroups, named by the engine's API "
            "(Docker or Podman) when its socket can be read; off: no containers collector.",
            kinds.choice("auto", "off")),
    Setting("CONTAINER_SOCKET", "",
            "The engine's unix socket (a path or unix://path). Empty: DOCKER_HOST, else "
            "/var/run/docker.sock, else /run/podman/podman.sock. Root-equivalent: the dashboard only reads "
            "through it, except `container restart`.", str),
    Setting("CONTAINERS_SHOWN", 100,
            "Containers in each sample's table at most (the heaviest by CPU); the counts cover them all.",
            kinds.ranged(int, 1, 1000)),
    Setting("NET_EXCLUDE", ("veth*",),
            "Comma-separated shell patterns of network interfaces left out of the host's list and totals. "
            "The default leaves out containers' veth ends: each container's traffic is in its own row, and "
            "the totals count the physical interfaces anyway. Empty: list every interface.", kinds.list),
    Setting("HOST_NAME", "",
            "Name this host's metrics are published under. Default: the machine's hostname."),
    Setting("LOG_LEVEL", "info", "Python log level: debug, info, warning or error.",
            kinds.choice("debug", "info", "warning", "error")),
    Setting("LOG_FORMAT", "json",
            "json: one JSON object per line (request id, fields), for log tools; text: for a terminal.",
            kinds.choice("json", "text")),
    Setting("ALLOWED_HOSTS", (),
            "Comma-separated Host names the app answers to (\".example.com\" allows subdomains; \"*\" any). "
            "Empty: only loopback names when bound to loopback (defeats DNS rebinding), any host "
            "otherwise.", kinds.list),
    Setting("FORWARDED_ALLOW_IPS", "127.0.0.1",
            "Proxies (comma-separated IPs, or *) whose X-Forwarded-For/-Proto/-Host/-Prefix headers are "
            "trusted; gunicorn reads it too. Heroku sets *."),
    Setting("DASHBOARD_ACCESS", "login",
            "login: nothing about the host without a login (page, /events, /api/*, /metrics); public: "
            "anyone who reaches the port sees the dashboard (logged as a warning at start). The console "
            "always needs a login.", kinds.choice("login", "public")),
    Setting("OPERATOR_TOKEN", "",
            "Token that logs an operator in (all commands; at least 16 characters). Unset, and no "
            "OPERATOR_TOKENS: one is generated at the first start, kept in DATA_DIR/secrets.json (0600) "
            "for later starts, and a login URL printed once. Delete the file or set this to rotate it.",
            kinds.secret, secret=True),
    Setting("OBSERVER_TOKEN", "",
            "Optional token for observers: the dashboard and read-only console commands (status, top, ps, "
            "audit...).", kinds.secret, secret=True),
    Setting("VIEWER_TOKEN", "",
            "Optional token for viewers: every dashboard, no console.", kinds.secret, secret=True),
    Setting("OPERATOR_TOKENS", (),
            "Named operator logins, `alice:<token>,bob:<token>`: the audit log names whoever logged in "
            "with a token, and a claimed name cannot change it.", kinds.named_tokens, secret=True),
    Setting("OBSERVER_TOKENS", (),
            "Named observer logins, as OPERATOR_TOKENS.", kinds.named_tokens, secret=True),
    Setting("VIEWER_TOKENS", (), "Named viewer logins, as OPERATOR_TOKENS.", kinds.named_tokens, secret=True),
    Setting("METRICS_TOKEN", "",
            "Bearer token that opens /metrics and nothing else (for Prometheus: `authorization: "
            "{credentials: <token>}`).", kinds.secret, secret=True),
    Setting("LOGIN_FAILURES_ALLOWED", 5,
            "Failed logins (wrong token on POST /login, a bearer header or a console handshake) one "
            "address may make before it must wait: 429 with Retry-After, 1 s and doubling up to 5 min.",
            kinds.ranged(int, 1, 1000)),
    Setting("LOGIN_FAILURES_PER_MINUTE", 100,
            "Failed logins from all addresses together within a minute; past it every address gets 429 "
            "with Retry-After until that minute is over (many addresses guessing at once).",
            kinds.ranged(int, 1, 1_000_000)),
    Setting("SECRET_KEY", "",
            "Key that signs session cookies (at least 16 characters). Unset: generated at the first start "
            "and kept in DATA_DIR/secrets.json (0600), so logins last across restarts; delete the file or "
            "set this to rotate it.", kinds.secret, secret=True),
    Setting("SESSION_HOURS", 12.0, "How long a login lasts.", kinds.ranged(float, 0.05, 24 * 30)),
    Setting("ALLOWED_ORIGINS", (),
            "Comma-separated origins, besides the app's own, whose pages may open the console (exact "
            "match, e.g. https://ops.example.com).", kinds.list),
    Setting("ALLOW_PROCESS_CONTROL", False,
            "1 enables the `kill` and `container restart` commands (still confirmed and audited).", kinds.bool),
    Setting("AUDIT_DB", "",
            "SQLite file of the audit log (WAL mode). Empty: audit.sqlite3 in DATA_DIR, so one mounted "
            "folder keeps every file of the embedded store."),
    Setting("AUDIT_SYNC", "normal",
            "normal: each record survives a killed server; full: also a power cut (waits for the disk).",
            kinds.choice("normal", "full")),
    Setting("DATA_DIR", "var",
            "Folder for the embedded store's SQLite files (history, state, audit log). Created if "
            "missing."),
    Setting("DATA_DIR_LASTS", "auto",
            "Whether DATA_DIR and AUDIT_DB outlast a restart. auto: yes unless a platform that wipes its "
            "disk is recognised (DYNO, RENDER, FLY_APP_NAME, RAILWAY_ENVIRONMENT) and DATA_DIR is not on "
            "a mounted volume (another device than /; never on Heroku); then, without REDIS_URL, one "
            "warning at start. 1: it lasts; 0: it does not.", kinds.choice("auto", "1", "0")),
    Setting("NOTIFY_URLS", (),
            "Apprise URLs that receive every alert (mailto://, slack://, ntfy://, tgram://, json://...), "
            "separated by spaces or commas; operators add more with `notify add`.", kinds.words, secret=True),
    Setting("NOTIFY_GROUP_SECONDS", 30.0,
            "Transitions within this many seconds of the first one go out as one message, so a flapping "
            "rule cannot flood a phone (0: send at once; what waits together goes as one).",
            kinds.ranged(float, 0.0, 3600.0)),
    Setting("NOTIFY_RETRY_HOURS", 24.0,
            "How long an undelivered message is retried (with backoff, from 1 s doubling to 5 min) before "
            "it is given up.", kinds.ranged(float, 0.001, 24 * 30)),
    Setting("NOTIFY_TIMEOUT", 10.0,
            "Seconds one delivery attempt to one channel may take before it counts as failed.",
            kinds.ranged(float, 0.5, 300.0)),
    Setting("NOTIFY_ALLOW_PRIVATE", True,
            "1 lets notifications reach loopback and private addresses (a receiver on this host or the "
            "LAN); 0 allows only public addresses. Metadata, link-local and the app's Redis are refused "
            "either way.", kinds.bool),
    Setting("NOTIFY_DENY_NETWORKS", (),
            "Comma-separated addresses or networks (10.20.0.0/16, 127.0.0.2) notifications never connect "
            "to, besides the built-in ones.", kinds.networks),
    Setting("NOTIFY_RAW_SCHEMES", (),
            "Comma-separated Apprise schemes outside the allowlist that may be used, such as irc, rsyslog "
            "or mqtt (raw-socket protocols; off unless named here).", kinds.schemes),
    Setting("MAX_NOTIFY_CHANNELS", 50,
            "Channels `notify add` may create in all; past it answers bad_args (NOTIFY_URLS ones not "
            "counted).", kinds.ranged(int, 1, 10_000)),
    Setting("MAX_SILENCES", 100,
            "Silences that may be in force at once; `silence` past it answers bad_args.",
            kinds.ranged(int, 1, 100_000)),
    Setting("PUBLIC_URL", "",
            "Address people reach the dashboard at (e.g. https://dash.example.com), for the link in each "
            "notification. Empty: messages carry no link."),
    Setting("HISTORY_STORE", True,
            "1 keeps chart roll-ups, the event buffer, the interval, pause and alert rules in "
            "DATA_DIR/history.sqlite3 (or Redis), so they survive restarts; 0 keeps them in memory only.",
            kinds.bool),
    Setting("MINUTE_HISTORY_DAYS", 30.0,
            "Days of per-minute roll-ups (min, mean, max of each chart series) kept.",
            kinds.ranged(float, 0.01, 3650)),
    Setting("HOUR_HISTORY_DAYS", 365.0, "Days of per-hour roll-ups kept.", kinds.ranged(float, 0.1, 36500)),
    Setting("HOST_BUDGET_BYTES", 5_000_000,
            "With REDIS_URL: the most one host's history may take in Redis (its stream, process table and "
            "roll-ups, as MEMORY USAGE counts them); over it, its oldest roll-ups are trimmed first.",
            kinds.ranged(int, 100_000, 10 ** 12)),
    Setting("CONSOLE_RATE", 20.0,
            "Console requests per second per connection.", kinds.ranged(float, 0.1, 100_000)),
    Setting("CONSOLE_BURST", 40,
            "Console requests a connection may send at once.", kinds.ranged(int, 1, 100_000)),
    Setting("CONSOLE_OUTBOX", 256,
            "Frames queued for one console before it counts as not reading and is closed (1008).",
            kinds.ranged(int, 8, 100_000)),
    Setting("CONSOLE_MAX_MESSAGE", 65536,
            "Largest console message in bytes; bigger ones close the socket with 1009.",
            kinds.ranged(int, 1024, 16 * 1024 * 1024)),
    Setting("REDIS_URL", "",
            "redis:// or rediss:// URL of a shared Redis. Unset: one process keeps everything (the "
            "embedded default). Set: several workers, dynos and hosts share streams, state and the audit "
            "log through it.", secret=True),
    Setting("REDIS_PREFIX", "dash", "Prefix of every Redis key, to share one Redis between apps."),
    Setting("REDIS_TLS_VERIFY", True,
            "0 accepts a rediss:// server's self-signed certificate (Heroku's Redis add-on needs it).",
            kinds.bool),
    Setting("SAMPLER_LEASE_SECONDS", 5.0,
            "With Redis, one process per host samples it, under a lease this long; when that process dies "
            "another takes over within about this time.", kinds.ranged(float, 1.0, 120.0)),
    Setting("HOST_STALE_SECONDS", 15.0,
            "A host not heard from for this long (or three of its intervals) is shown as stale.",
            kinds.ranged(float, 1.0, 86400.0)),
    Setting("MAX_BODY_BYTES", 16384,
            "Largest request body accepted, in bytes (the app takes only small JSON bodies); a larger "
            "declared or received body gets 413 and the connection is closed.",
            kinds.ranged(int, 1024, 64 * 1024 * 1024)),
    Setting("BODY_TIMEOUT_SECONDS", 10.0,
            "Seconds a request body may take to arrive in full after its headers; slower bodies get 408 "
            "and the connection is closed.", kinds.ranged(float, 0.1, 600.0)),
    Setting("MAX_CONNECTIONS_PER_CLIENT", 100,
            "Requests, event streams and console sockets one client address (after the trusted proxies) "
            "may have open at once; more get 429 with Retry-After.", kinds.ranged(int, 1, 1_000_000)),
    Setting("MAX_CONSOLES_PER_LOGIN", 10,
            "Console sockets one login may have open at once (a cookie session, or a bearer token from "
            "one address); more get 429 with Retry-After before the upgrade.",
            kinds.ranged(int, 1, 1_000_000)),
    Setting("CONSOLE_LOGIN_RATE", 50.0,
            "Console requests per second per login, across all its sockets and reconnects.",
            kinds.ranged(float, 0.1, 1_000_000)),
    Setting("CONSOLE_LOGIN_BURST", 100,
            "Console requests one login may send at once, across all its sockets and reconnects.",
            kinds.ranged(int, 1, 1_000_000)),
    Setting("HISTORY_BUILDS_PER_MINUTE", 60,
            "/api/history answers one login may have built a minute (a quarter of them at once); answers "
            "the cache already holds are free. Past it, 429 too_many_requests with Retry-After.",
            kinds.ranged(int, 1, 1_000_000)),
    Setting("MAX_ALERT_RULES", 100,
            "Alert rules that may exist at once; `alert set` past it answers bad_args.",
            kinds.ranged(int, 1, 100_000)),
    Setting("AUDIT_RETENTION_DAYS", 90.0,
            "Days of audit records kept; older ones are trimmed in the background (SQLite and Redis).",
            kinds.ranged(float, 0.0001, 36500)),
    Setting("AUDIT_SUMMARY_SECONDS", 60.0,
            "Window over which failed and repeated read-only console requests are counted and written as "
            "one summarising audit record per login, command and outcome.", kinds.ranged(float, 0.1, 86400)),
    Setting("CONSOLE_PING_SECONDS", 25.0,
            "WebSocket ping interval (Heroku's router drops sockets idle for 55 s); a missed pong closes "
            "the socket with 1008.", kinds.ranged(float, 0.5, 50.0)),
)

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}


def defaults() -> dict[str, Any]:
    return {s.name: s.default for s in SETTINGS}


def from_environ(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Parse every setting present in the environment; unknown names are ignored."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.name not in environ:
            continue
        raw = environ[setting.name]
        try:
            values[setting.name] = setting.parse(raw)
        except ValueError as exc:
            shown = "(hidden)" if setting.secret else repr(raw)
            raise SettingError(f"{setting.name}={shown}: {exc}") from None
    return values


def audit_db(values: Mapping[str, Any]) -> str:
    """The audit log's file: AUDIT_DB, or audit.sqlite3 in DATA_DIR when AUDIT_DB is empty."""
    return values["AUDIT_DB"] or os.path.join(values["DATA_DIR"], "audit.sqlite3")


def load(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Defaults overlaid with the environment."""
    values = defaults()
    values.update(from_environ(environ))
    return values
