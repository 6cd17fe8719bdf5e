"""Many EventSource-like viewers at once (asyncio, raw sockets), for restart tests.

Each viewer behaves as a browser's EventSource does: it reads the stream, and
when the stream ends or the connection fails it waits the `retry:` time and
reconnects with Last-Event-ID. Parsing is deliberately light (ids, event
types and `seq`), so a thousand viewers fit in one test process.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from dataclasses import dataclass, field
from tests.support.waiting import eventually

_SEQ = re.compile(rb'"seq":(\d+)')


@dataclass
class Viewer:
    ids: list[str] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    connects: int = 0
    clean_ends: int = 0  # streams that ended with the final chunk
    cut_ends: int = 0  # streams that ended without it
    last_id: str | None = None
    ends: list[float] = field(default_factory=list)  # time.monotonic() of each clean end
    end_retries: list[float | None] = field(default_factory=list)  # the retry: (s) each stream last asked for


class Crowd:
    def __init__(self, port: int, n: int, path: str = "/events") -> None:
        self.port = port
        self.n = n
        self.path = path
        self.viewers = [Viewer() for _ in range(n)]
        self.stopping = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "Crowd":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping = True
        self.thread.join(15)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        tasks = []
        for i, v in enumerate(self.viewers):
            tasks.append(asyncio.create_task(self._viewer(v)))
            if i % 100 == 99:
                await asyncio.sleep(0.05)
        while not self.stopping:
            await asyncio.sleep(0.1)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _viewer(self, v: Viewer) -> None:
        retry = 1.0
        while not self.stopping:
            try:
                retry = await self._once(v) or retry
            except (OSError, asyncio.IncompleteReadError, ValueError):
                pass
            await asyncio.sleep(retry)

    async def _once(self, v: Viewer) -> float | None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            head = (f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nAccept: text/event-stream\r\n"
                    "Authorization: Bearer operator-token-for-tests\r\n")
            if v.last_id:
                head += f"Last-Event-ID: {v.last_id}\r\n"
            writer.write((head + "\r\n").encode())
            status = await reader.readuntil(b"\r\n\r\n")
            if not status.startswith(b"HTTP/1.1 200"):
                return 0.5
            v.connects += 1
            retry = None
            buf = b""
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    v.clean_ends += 1
                    v.ends.append(time.monotonic())
                    v.end_retries.append(retry)
                    return retry
                chunk = await reader.readexactly(size + 2)
                buf += chunk[:-2]
                while b"\n\n" in buf:
                    block, buf = buf.split(b"\n\n", 1)
                    retry = self._block(v, block) or retry
        except (asyncio.IncompleteReadError, ConnectionError):
            v.cut_ends += 1
            raise
        finally:
            writer.close()

    @staticmethod
    def _block(v: Viewer, block: bytes) -> float | None:
        retry = None
        ev_id = ev_type = None
        seq = None
        for line in block.split(b"\n"):
            if line.startswith(b"id: "):
                ev_id = line[4:].decode()
            elif line.startswith(b"event: "):
                ev_type = line[7:].decode()
            elif line.startswith(b"retry: "):
                retry = int(line[7:]) / 1000
            elif line.startswith(b"data: ") and ev_type == "metrics":
                m = _SEQ.search(line)
                seq = int(m.group(1)) if m else None
        if ev_type:
            v.types.append(ev_type)
            if ev_id:
                v.ids.append(ev_id)
                v.last_id = ev_id
            if seq is not None:
                v.seqs.append(seq)
        return retry

    # ---- views for assertions -------------------------------------------------

    def wait(self, predicate, timeout: float) -> bool:
        try:
            return bool(eventually(predicate, timeout, 0.1))
        except AssertionError:
            return bool(predicate())
