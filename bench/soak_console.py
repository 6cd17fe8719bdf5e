"""One soak console: a /console connection that opens, sends commands one at a
time and checks each reply, then leaves in one of three ways (close handshake,
FIN, reset). It speaks ws_frames.py's framing over asyncio streams."""

from __future__ import annotations

import asyncio
import json
import time

from . import ws_frames
from .soak_conn import CONNECT_TIMEOUT, REPLY_TIMEOUT, reset

MAX_READS = 10_000_000  # per connection (a safety bound, never reached)


class SoakConsole:
    """One /console connection on asyncio streams; a reader task answers pings and
    hands replies to the request waiting for them. `load` is the soak_client.Load
    it belongs to: its arguments, counts and reply times."""

    def __init__(self, load, name: str) -> None:
        self.load = load
        self.counts = load.counts
        self.name = name
        self.reader = self.writer = None
        self.task = None
        self.pending: dict[int, asyncio.Future] = {}
        self.next_id = 0
        self.alive = False
        self.leaving = False
        self.got_close = asyncio.Event()
        self.welcome = asyncio.get_running_loop().create_future()

    async def open(self) -> bool:
        a, c = self.load.args, self.counts
        head, accept = ws_frames.handshake(a.host, a.port, "/console", {
            "Authorization": f"Bearer {a.token}", "X-Operator-Name": self.name})
        try:
            self.reader, self.writer = await asyncio.wait_for(
                asyncio.open_connection(a.host, a.port, limit=1 << 20), CONNECT_TIMEOUT)
            self.writer.write(head)
            answer = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), CONNECT_TIMEOUT)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            c.anomaly(f"console: handshake failed: {type(exc).__name__}: {exc}"[:120])
            self._abort()
            return False
        refused = ws_frames.refused(answer.decode("latin-1"), accept)
        if refused:
            c.anomaly(f"console: handshake answered {refused}")
            self._abort()
            return False
        self.alive = True
        self.task = asyncio.ensure_future(self._read())
        try:
            await asyncio.wait_for(asyncio.shield(self.welcome), CONNECT_TIMEOUT)
        except (asyncio.TimeoutError, ConnectionError):
            c.anomaly("console: no welcome")
            await self.leave("reset")
            return False
        return True

    def _abort(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()

    async def _read(self) -> None:
        r, c = self.reader, self.counts
        frames = ws_frames.Reader()
        try:
            for _ in range(MAX_READS):  # each read waits for bytes or the end
                data = await r.read(1 << 16)
                if not data:
                    raise ConnectionError("end of stream")
                for opcode, payload in frames.feed(data):
                    if not self._frame(opcode, payload):
                        return
        except ws_frames.ProtocolError as exc:
            c.anomaly(f"console: {exc}")
        except (ConnectionError, OSError):
            if not self.leaving:
                c.anomaly("console: connection ended by the server without a close frame")
        finally:
            self.alive = False
            for fut in self.pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("connection ended"))
            if not self.welcome.done():
                self.welcome.set_exception(ConnectionError("connection ended"))
                self.welcome.exception()  # retrieved: nobody may be waiting any more

    def _frame(self, opcode: int, payload: bytes) -> bool:
        """Handle one frame from the server; False when the connection is over."""
        c = self.counts
        if opcode == ws_frames.TEXT or opcode == ws_frames.BINARY:
            self._message(payload)
        elif opcode == ws_frames.PING:
            self.writer.write(ws_frames.frame(ws_frames.PONG, payload))
            c.add("console pings answered")
        elif opcode == ws_frames.CLOSE:
            if not self.leaving:
                code, reason = ws_frames.close_reason(payload)
                c.anomaly(f"console: closed by the server: {code} {reason}")
                self.writer.write(ws_frames.frame(ws_frames.CLOSE, payload[:2]))  # answer, then our side ends
            self.got_close.set()
            return False
        elif opcode != ws_frames.PONG:
            c.anomaly(f"console: unknown opcode {opcode}")
            return False
        return True

    def _message(self, payload: bytes) -> None:
        c = self.counts
        try:
            msg = json.loads(payload)
        except ValueError:
            c.anomaly("console: frame is not JSON")
            return
        rid = msg.get("id") if isinstance(msg, dict) else None
        if rid is None:
            kind = msg.get("type") if isinstance(msg, dict) else None
            if kind == "welcome" and not self.welcome.done():
                self.welcome.set_result(msg)
            elif kind:
                c.add(f"console {kind} pushes")
            else:
                c.anomaly("console: frame without id or type")
            return
        fut = self.pending.get(rid)
        if fut is None or fut.done():
            c.anomaly("console: reply to no outstanding request")
            return
        fut.set_result(msg)

    async def command(self, line: str) -> None:
        c = self.counts
        if line == "broadcast":
            self.load.broadcasts += 1
            line = f"broadcast soak notice {self.load.broadcasts} from {self.name}"
        verb = line.split()[0]
        self.next_id += 1
        rid = self.next_id
        fut = asyncio.get_running_loop().create_future()
        self.pending[rid] = fut
        t0 = time.perf_counter()
        try:
            self.writer.write(ws_frames.frame(ws_frames.TEXT, json.dumps({"id": rid, "line": line}).encode()))
            msg = await asyncio.wait_for(fut, REPLY_TIMEOUT)
        except asyncio.TimeoutError:
            c.anomaly(f"console: no reply to `{verb}` within {REPLY_TIMEOUT:g} s")
            return
        except (ConnectionError, OSError):
            c.add("console requests cut by the connection's end")
            return
        finally:
            self.pending.pop(rid, None)
        ms = (time.perf_counter() - t0) * 1000.0
        load = self.load
        if len(load.reply_ms) < 1_000_000:
            load.reply_ms.append(ms)
        if ms > load.slowest.get(verb, 0.0):
            load.slowest[verb] = ms
        if ms > 100.0:
            c.add(f"console `{verb}` replies over 100 ms")
        c.add(f"console `{verb}` replies")
        if msg.get("ok") is not True:
            code = (msg.get("error") or {}).get("code", "?")
            c.anomaly(f"console: `{verb}` answered {code}: {(msg.get('error') or {}).get('message', '')[:60]}")

    async def leave(self, how: str) -> None:
        c = self.counts
        self.leaving = True
        if self.writer is None:
            return
        if not self.alive:  # the server ended it (counted by the reader)
            self.writer.close()
        elif how == "close":
            c.add("console left with a close handshake")
            try:
                self.writer.write(ws_frames.frame(ws_frames.CLOSE, ws_frames.NORMAL_CLOSURE))
                await asyncio.wait_for(self.got_close.wait(), 3.0)
            except asyncio.TimeoutError:
                c.anomaly("console: no close frame back within 3 s")
            except (ConnectionError, OSError):
                pass
            self.writer.close()
        elif how == "fin":
            c.add("console left without a close frame (FIN)")
            self.writer.close()
        else:
            c.add("console left abruptly (reset)")
            reset(self.writer.transport)
        if self.task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self.task), 5.0)
            except asyncio.TimeoutError:
                self.task.cancel()
            except Exception:  # the reader's own errors are counted there
                pass
