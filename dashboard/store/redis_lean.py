"""The agent's Redis client: the redis-py calls the stores make, over hiredis, in a fraction of the memory.

redis-py loads asyncio, ssl, importlib.metadata and its hundreds of commands:
20 MB of a process whose whole budget is node_exporter's 21 MB (issue: the
agent at most node_exporter's RSS). hiredis (Redis's own C protocol library,
the one redis-py uses when it is installed) packs the commands and parses the
replies; what is left here is the socket and the shapes redis-py gives the
replies the stores read (`hgetall` a dict, `xrange` a list of (id, fields)...),
so a store is the same code over either client. tests/test_redis_lean.py runs
each call through both clients on a real redis-server and compares.

One connection per client, opened at the first call and again after any
failure; not shared between threads. Every failure is an OSError (a reply
error too: `ReplyError`), so `except OSError` in the stores covers it.
"""

from __future__ import annotations

import select
import socket
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis

__all__ = ["LeanRedis", "ReplyError"]


class ReplyError(OSError):
    """Redis answered with an error (`refuses_writes`: OOM under noeviction, or READONLY on a replica)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.refuses_writes = text.startswith(("OOM ", "READONLY "))


def redacted_place(parts) -> str:
    """Where Redis is, for an error's words: host and port, or the socket's path (never the password)."""
    return parts.path if parts.scheme == "unix" else f"{parts.hostname}:{parts.port or 6379}"


def _ok(reply) -> bool:
    return reply in ("OK", b"OK")


def _pairs(reply) -> dict:
    return dict(zip(reply[::2], reply[1::2])) if reply else {}


def _entries(reply) -> list[tuple]:
    return [(entry_id, _pairs(fields)) for entry_id, fields in reply or ()]


def _streams(reply) -> list:
    return [[key, _entries(entries)] for key, entries in reply or ()]


class _Commands:
    """The calls both a client and its pipeline answer: `_run(command, shape)` sends or queues one,
    and `shape` turns the raw reply into what redis-py returns (None: as it comes)."""

    def get(self, name):
        return self._run(("GET", name), None)

    def set(self, name, value, ex=None, px=None, nx=False):
        command = ["SET", name, value] + (["EX", ex] if ex is not None else []) + (
            ["PX", px] if px is not None else []) + (["NX"] if nx else [])
        return self._run(tuple(command), lambda r: True if _ok(r) else None)

    def incr(self, name, amount=1):
        return self._run(("INCRBY", name, amount), None)

    def expire(self, name, seconds):
        return self._run(("EXPIRE", name, int(seconds)), bool)

    def hset(self, name, key=None, value=None, mapping=None):
        items = ([key, value] if key is not None else []) + [x for kv in (mapping or {}).items() for x in kv]
        return self._run(("HSET", name, *items), None)

    def hget(self, name, key):
        return self._run(("HGET", name, key), None)

    def hgetall(self, name):
        return self._run(("HGETALL", name), _pairs)

    def hkeys(self, name):
        return self._run(("HKEYS", name), None)

    def hdel(self, name, *keys):
        return self._run(("HDEL", name, *keys), None)

    def lpush(self, name, *values):
        return self._run(("LPUSH", name, *values), None)

    def ltrim(self, name, start, end):
        return self._run(("LTRIM", name, start, end), _ok)

    def lrange(self, name, start, end):
        return self._run(("LRANGE", name, start, end), None)

    def publish(self, channel, message):
        return self._run(("PUBLISH", channel, message), None)

    def xadd(self, name, fields, id="*", maxlen=None, approximate=True, minid=None):
        trim = (["MAXLEN", "~" if approximate else "=", maxlen] if maxlen is not None else
                ["MINID", "~" if approximate else "=", minid] if minid is not None else [])
        return self._run(("XADD", name, *trim, id, *[x for kv in fields.items() for x in kv]), None)

    def xrange(self, name, min="-", max="+", count=None):
        return self._run(("XRANGE", name, min, max, *(["COUNT", count] if count is not None else [])), _entries)

    def xrevrange(self, name, max="+", min="-", count=None):
        return self._run(("XREVRANGE", name, max, min, *(["COUNT", count] if count is not None else [])), _entries)

    def xlen(self, name):
        return self._run(("XLEN", name), None)


class LeanRedis(_Commands):
    """`redis.Redis.from_url(url, ...)` for the calls the stores make; see the module's doc."""

    def __init__(self, url: str, *, decode_responses: bool = False, socket_timeout: float | None = None,
                 socket_connect_timeout: float | None = None, ssl_cert_reqs: object = "required",
                 **_unused) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"a Redis URL starts redis://, rediss:// or unix://, not {parts.scheme}://")
        self.url = url
        self.options = {"decode_responses": decode_responses, "socket_timeout": socket_timeout,
                        "socket_connect_timeout": socket_connect_timeout, "ssl_cert_reqs": ssl_cert_reqs}
        self._parts = parts
        query = parse_qs(parts.query)
        self._db = int((query.get("db") or [parts.path.strip("/") or 0])[0])
        self._verify = ssl_cert_reqs is not None
        self._encoding = "utf-8" if decode_responses else None
        self.timeout = socket_timeout
        self.connect_timeout = socket_connect_timeout
        self._sock: socket.socket | None = None
        self._reader: hiredis.Reader | None = None

    @classmethod
    def from_url(cls, url: str, **options) -> "LeanRedis":
        return cls(url, **options)

    # ---- the connection ------------------------------------------------------------------

    def _connect(self) -> None:
        parts = self._parts
        if parts.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.connect_timeout)
            sock.connect(parts.path)
        else:
            host = parts.hostname or "localhost"
            # An ASCII name as bytes: a str goes through the idna codec, which loads unicodedata (0.4 MB).
            sock = socket.create_connection((host.encode() if host.isascii() else host, parts.port or 6379),
                                            timeout=self.connect_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if parts.scheme == "rediss":
            import ssl  # only for TLS: 5 MB of memory an agent on plain redis:// does without

            context = ssl.create_default_context()
            if not self._verify:  # REDIS_TLS_VERIFY=0: a self-signed certificate (Heroku's add-on)
                context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            sock = context.wrap_socket(sock, server_hostname=parts.hostname)
        sock.settimeout(self.timeout)
        self._sock, self._reader = sock, hiredis.Reader(encoding=self._encoding)
        hello = []
        if parts.password is not None:
            hello.append(("AUTH", unquote(parts.username), unquote(parts.password)) if parts.username
                         else ("AUTH", unquote(parts.password)))
        if self._db:
            hello.append(("SELECT", self._db))
        for reply in self._exchange(hello) if hello else ():
            if isinstance(reply, ReplyError):  # a wrong password, a database that does not exist
                self.close()
                raise reply

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def _exchange(self, commands: list[tuple], timeout: float | None = None) -> list:
        """Send the commands at once, read one reply each (an error reply as a ReplyError object)."""
        try:
            self._send(commands)
            if timeout is not None:
                self._sock.settimeout(timeout)
            replies = [self._next() for _ in commands]
            if timeout is not None:
                self._sock.settimeout(self.timeout)
            return replies
        except BaseException:
            self.close()  # whatever was half sent or read: the next call starts on a new connection
            raise

    def _send(self, commands: list[tuple]) -> None:
        if self._sock is None:
            self._connect()
        self._sock.sendall(b"".join(hiredis.pack_command(c) for c in commands))

    def _next(self):
        """The next reply, waiting for it on the socket (its timeout applies)."""
        while (reply := self._reader.gets()) is False:
            self._fill()
        return ReplyError(str(reply)) if isinstance(reply, hiredis.ReplyError) else reply

    def _fill(self) -> None:
        data = self._sock.recv(65536)
        if not data:
            raise ConnectionError(f"Redis at {redacted_place(self._parts)} closed the connection")
        self._reader.feed(data)

    def execute_command(self, *command, timeout: float | None = None):
        (reply,) = self._exchange([command], timeout)
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    def _run(self, command: tuple, shape):
        reply = self.execute_command(*command)
        return reply if shape is None else shape(reply)

    # ---- the calls the stores make, answered as redis-py answers them --------------------------

    def ping(self) -> bool:
        return self.execute_command("PING") in ("PONG", b"PONG")

    def pipeline(self, transaction: bool = True) -> "Pipeline":
        return Pipeline(self, transaction)

    def register_script(self, script: str) -> "Script":
        return Script(self, script)

    def pubsub(self, ignore_subscribe_messages: bool = False) -> "PubSub":
        return PubSub(self, ignore_subscribe_messages)

    def xread(self, streams: dict, count: int | None = None, block: int | None = None):
        command = ["XREAD"] + (["COUNT", count] if count is not None else []) + (
            ["BLOCK", block] if block is not None else []) + ["STREAMS", *streams, *streams.values()]
        # A blocking read waits up to `block` ms before Redis answers: the socket waits that long more.
        wait = None if block is None or self.timeout is None else self.timeout + block / 1000
        return _streams(self.execute_command(*command, timeout=wait))

    def blpop(self, keys: list, timeout: int = 0):
        wait = None if self.timeout is None else self.timeout + timeout
        reply = self.execute_command("BLPOP", *keys, timeout, timeout=wait)
        return None if reply is None else tuple(reply)


class Pipeline(_Commands):
    """Commands queued and sent in one round trip; with `transaction`, inside MULTI/EXEC."""

    def __init__(self, client: LeanRedis, transaction: bool) -> None:
        self.client = client
        self.transaction = transaction
        self.queued: list[tuple[tuple, object]] = []

    def _run(self, command: tuple, shape) -> "Pipeline":
        self.queued.append((command, shape))
        return self

    def __len__(self) -> int:
        return len(self.queued)

    def execute(self) -> list:
        """Every command's reply as redis-py gives it; the first error reply is raised (after all ran)."""
        queued, self.queued = self.queued, []
        if not queued:
            return []
        commands = [command for command, _ in queued]
        if self.transaction:
            replies = self.client._exchange([("MULTI",), *commands, ("EXEC",)])
            errors = [r for r in replies[:-1] if isinstance(r, ReplyError)]
            if errors:  # refused when queued: EXEC aborted the lot
                raise errors[0]
            replies = replies[-1]
            if isinstance(replies, ReplyError):
                raise replies
        else:
            replies = self.client._exchange(commands)
        for reply in replies:
            if isinstance(reply, ReplyError):
                raise reply
        return [r if shape is None else shape(r) for r, (_, shape) in zip(replies, queued)]


class Script:
    """A Lua script, called as redis-py's registered scripts are: script(keys=[...], args=[...]).
    Sent whole with EVAL each time (Redis keeps it compiled): no SHA-1 to compute, no NOSCRIPT."""

    def __init__(self, client: LeanRedis, script: str) -> None:
        self.client = client
        self.script = script

    def __call__(self, keys: list = (), args: list = ()):
        return self.client.execute_command("EVAL", self.script, len(keys), *keys, *args)


class PubSub:
    """Subscribed channels on a connection of their own; get_message waits up to `timeout` for one."""

    def __init__(self, client: LeanRedis, ignore_subscribe_messages: bool) -> None:
        self.conn = LeanRedis(client.url, **client.options)
        self.ignore = ignore_subscribe_messages

    def subscribe(self, *channels) -> None:
        try:
            self.conn._send([("SUBSCRIBE", *channels)])
        except BaseException:
            self.conn.close()
            raise

    def get_message(self, timeout: float = 0.0) -> dict | None:
        conn = self.conn
        try:
            while True:
                reply = conn._reader.gets()
                if reply is False:
                    pending = getattr(conn._sock, "pending", None)  # TLS may hold decrypted bytes already
                    if not (pending and pending()) and not select.select([conn._sock], [], [], timeout)[0]:
                        return None
                    conn._fill()
                    reply = conn._reader.gets()
                    if reply is False:
                        return None  # part of a message: the rest comes with the next call
                kind = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
                if kind == "message" or not self.ignore:
                    return {"type": kind, "pattern": None, "channel": reply[1], "data": reply[2]}
        except BaseException:
            conn.close()
            raise

    def close(self) -> None:
        self.conn.close()
