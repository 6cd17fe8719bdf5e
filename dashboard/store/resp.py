"""A small Redis client for the agent: the commands it uses, over RESP2, in a few hundred kB.

redis-py costs the agent 23 MB of memory just to import (its asyncio client,
cluster support and command tables come with it), more than the rest of the
agent together. This speaks the same protocol for the commands `RedisStore`,
`FleetStore` and `RedisNotifyStore` send from an agent, with redis-py's method
names and answers (strings decoded, XRANGE entries as (id, dict), HGETALL as a
dict), a pool of plain sockets (so greenlets never share one), pipelines,
MULTI/EXEC, scripts by SHA and pub/sub. Errors are `RedisError`s; lost
connections are also `OSError`s, as the callers expect. The web app keeps
redis-py (`redis_client.connect` picks).
"""

from __future__ import annotations

import hashlib
from urllib.parse import unquote, urlsplit

# gevent's sockets, not the standard ones: the agent's greenlets wait on Redis
# without the whole standard library being patched (gevent's patch_all costs
# the agent 12 MB of memory). They behave as blocking sockets outside gevent.
from gevent import socket


class RedisError(Exception):
    pass


class ResponseError(RedisError):
    pass


class ConnectionError(RedisError, OSError):  # noqa: A001  (redis-py's name, and an OSError)
    pass


def _encode(arg) -> bytes:
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, bool):
        return b"1" if arg else b"0"
    if isinstance(arg, float):
        return repr(arg).encode()
    return str(arg).encode()


class _Conn:
    def __init__(self, opts: dict) -> None:
        try:
            sock = socket.create_connection((opts["host"], opts["port"]), timeout=opts["connect_timeout"])
            if opts["tls"]:
                from gevent import ssl  # only for rediss:// (the ssl module is 6 MB)

                # gevent's own context class (its create_default_context answers the
                # standard one, whose sockets would block every greenlet).
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.load_default_certs()
                if not opts["verify"]:
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                sock = ctx.wrap_socket(sock, server_hostname=opts["host"])
            sock.settimeout(opts["timeout"])
        except OSError as exc:
            raise ConnectionError(f"Error connecting to {opts['host']}:{opts['port']}: {exc}") from exc
        self.sock = sock
        self.buf = b""
        if opts["password"] is not None:
            self.call(*(["AUTH"] + ([opts["username"]] if opts["username"] else []) + [opts["password"]]))
        if opts["db"]:
            self.call("SELECT", opts["db"])

    def send(self, *commands) -> None:
        out = []
        for args in commands:
            out.append(b"*%d\r\n" % len(args))
            for a in args:
                b = _encode(a)
                out.append(b"$%d\r\n%b\r\n" % (len(b), b))
        try:
            self.sock.sendall(b"".join(out))
        except OSError as exc:
            raise ConnectionError(f"Error writing to Redis: {exc}") from exc

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _fill(self) -> None:
        try:
            data = self.sock.recv(65536)
        except OSError as exc:
            raise ConnectionError(f"Error reading from Redis: {exc}") from exc
        if not data:
            raise ConnectionError("Connection closed by server.")
        self.buf += data

    def read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return True if rest == b"OK" else rest  # a status: OK is True, as redis-py has it
        if kind == b"-":
            return ResponseError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise ConnectionError(f"Protocol error: {line[:40]!r}")

    def call(self, *args):
        self.send(args)
        reply = self.read()
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _decode(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _pairs(flat) -> dict:
    return dict(zip(flat[::2], flat[1::2]))


def _entries(reply) -> list:
    return [(entry_id, _pairs(fields or [])) for entry_id, fields in reply or []]


# How each command's answer is shaped (after decoding), as redis-py shapes it.
SHAPES = {
    "HGETALL": _pairs, "XRANGE": _entries, "XREVRANGE": _entries,
    "PING": lambda r: r in ("PONG", b"PONG"),
}


class Script:
    def __init__(self, client: "Redis", source: str) -> None:
        self.client, self.source = client, source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, keys=(), args=()):
        try:
            return self.client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        except ResponseError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            return self.client.execute_command("EVAL", self.source, len(keys), *keys, *args)


class _Commands:
    """redis-py's argument shapes for the commands with options."""

    def execute_command(self, *args):
        raise NotImplementedError

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args: self.execute_command(name.upper(), *args)

    def set(self, name, value, ex=None, px=None, nx=False):
        args = ["SET", name, value]
        if ex is not None:
            args += ["EX", int(ex)]
        if px is not None:
            args += ["PX", int(px)]
        if nx:
            args.append("NX")
        return self.execute_command(*args)

    def hset(self, name, key=None, value=None, mapping=None):
        items = ([key, value] if key is not None else []) + [x for kv in (mapping or {}).items() for x in kv]
        return self.execute_command("HSET", name, *items)

    def xadd(self, name, fields, id="*", maxlen=None, minid=None, approximate=True):
        args = ["XADD", name]
        if maxlen is not None:
            args += ["MAXLEN", "~" if approximate else "=", maxlen]
        if minid is not None:
            args += ["MINID", "~" if approximate else "=", minid]
        args.append(id)
        return self.execute_command(*args, *[x for kv in fields.items() for x in kv])

    def xrange(self, name, min="-", max="+", count=None):
        return self.execute_command("XRANGE", name, min, max, *(["COUNT", count] if count else []))

    def xrevrange(self, name, max="+", min="-", count=None):
        return self.execute_command("XREVRANGE", name, max, min, *(["COUNT", count] if count else []))


class Pipeline(_Commands):
    def __init__(self, client: "Redis", transaction: bool) -> None:
        self.client, self.transaction, self.commands = client, transaction, []

    def execute_command(self, *args):
        self.commands.append(args)
        return self

    def __len__(self) -> int:
        return len(self.commands)

    def execute(self):
        commands, self.commands = self.commands, []
        if not commands:
            return []
        wire = [("MULTI",), *commands, ("EXEC",)] if self.transaction else commands
        conn = self.client._take()
        try:
            conn.send(*wire)
            replies = [conn.read() for _ in wire]
        except BaseException:
            conn.close()
            raise
        self.client._give(conn)
        if self.transaction:
            replies = replies[-1] if isinstance(replies[-1], list) else [replies[-1]]
        for r in replies:
            if isinstance(r, ResponseError):
                raise r
        return [self.client._shape(args[0], r) for args, r in zip(commands, replies)]


class PubSub:
    def __init__(self, client: "Redis", ignore_subscribe_messages: bool) -> None:
        self.client, self.ignore = client, ignore_subscribe_messages
        self.conn: _Conn | None = None

    def subscribe(self, *channels) -> None:
        if self.conn is None:
            self.conn = _Conn(self.client.opts)
        self.conn.send(("SUBSCRIBE", *channels))

    def get_message(self, timeout: float = 0.0):
        conn = self.conn
        if not conn.buf:
            conn.sock.settimeout(timeout)
            try:
                conn._fill()
            except ConnectionError as exc:
                if isinstance(exc.__cause__, (socket.timeout, TimeoutError)):
                    return None
                raise
            finally:
                conn.sock.settimeout(self.client.opts["timeout"])
        kind, channel, data = _decode(conn.read())
        if kind != "message" and self.ignore:
            return None
        return {"type": kind, "channel": channel, "data": data if self.client.decode else _encode(data)}

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Redis(_Commands):
    """A client for one URL, with redis-py's `from_url` and the options RedisStore passes."""

    def __init__(self, opts: dict, decode_responses: bool) -> None:
        self.opts, self.decode = opts, decode_responses
        self._idle: list[_Conn] = []

    @classmethod
    def from_url(cls, url: str, decode_responses: bool = False, socket_timeout: float | None = None,
                 socket_connect_timeout: float | None = None, ssl_cert_reqs=..., **_ignored) -> "Redis":
        parts = urlsplit(url)
        db = parts.path.lstrip("/")
        opts = {"host": parts.hostname or "localhost", "port": parts.port or 6379, "db": int(db or 0),
                "username": unquote(parts.username) if parts.username else None,
                "password": unquote(parts.password) if parts.password is not None else None,
                "tls": parts.scheme == "rediss", "verify": ssl_cert_reqs is ..., "timeout": socket_timeout,
                "connect_timeout": socket_connect_timeout or socket_timeout}
        return cls(opts, decode_responses)

    def _take(self) -> _Conn:
        return self._idle.pop() if self._idle else _Conn(self.opts)

    def _give(self, conn: _Conn) -> None:
        self._idle.append(conn)

    def _shape(self, command: str, reply):
        reply = _decode(reply) if self.decode else reply
        shape = SHAPES.get(command.upper())
        return shape(reply) if shape else reply

    def execute_command(self, *args):
        conn = self._take()
        try:
            reply = conn.call(*args)
        except ResponseError:
            self._give(conn)
            raise
        except BaseException:
            conn.close()
            raise
        self._give(conn)
        return self._shape(args[0], reply)

    def pipeline(self, transaction: bool = True) -> Pipeline:
        return Pipeline(self, transaction)

    def register_script(self, source: str) -> Script:
        return Script(self, source)

    def pubsub(self, ignore_subscribe_messages: bool = False) -> PubSub:
        return PubSub(self, ignore_subscribe_messages)

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
