"""What every soak connection shares: the counts it adds to, its timeouts, and
the abrupt way of leaving (a reset)."""

from __future__ import annotations

import socket
import struct

CONNECT_TIMEOUT = 10.0
REPLY_TIMEOUT = 10.0


def reset(transport) -> None:
    """Close with a reset: no FIN, unread data and the connection thrown away."""
    sock = transport.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    transport.abort()


class Counts:
    """What happened, by kind; anomalies separately (each one is worth a look)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.anomalies: dict[str, int] = {}

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def anomaly(self, key: str) -> None:
        key = key[:120]
        self.anomalies[key] = self.anomalies.get(key, 0) + 1
