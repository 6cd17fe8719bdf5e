"""The console's JSON envelope: requests in, replies and pushes out.

Plain functions from text to data and back; the socket loop only moves
strings. A request is {"id": <string or number>, "line": "<command line>"}.
Every request gets exactly one reply carrying its id; pushes carry a `type`
and no id.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_LINE = 4096  # characters in a command line
MAX_ID = 128  # characters in a string id

RequestId = str | int | float | None


class ProtocolError(Exception):
    """A request that cannot be run; becomes an error reply."""

    def __init__(self, code: str, message: str, id: RequestId = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.id = id


def _valid_id(value: Any) -> bool:
    if isinstance(value, bool):  # JSON true/false are not ids
        return False
    if isinstance(value, int):
        return abs(value) < 2**53  # survives a JavaScript number
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str) and len(value) <= MAX_ID


def parse_request(text: str | bytes) -> tuple[RequestId, str]:
    """(id, line) from one text frame, or ProtocolError."""
    if isinstance(text, (bytes, bytearray)):
        raise ProtocolError("bad_request", "binary frames are not accepted: send JSON text frames")
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError("bad_json", "the frame is not valid JSON") from None
    if not isinstance(message, dict):
        raise ProtocolError("bad_request", 'a request is a JSON object: {"id": 1, "line": "status"}')
    raw_id = message.get("id")
    rid = raw_id if _valid_id(raw_id) else None
    if "id" not in message or rid is None:
        raise ProtocolError(
            "bad_request",
            f'"id" must be a string (at most {MAX_ID} characters) or a number',
            None,
        )
    line = message.get("line")
    if not isinstance(line, str):
        raise ProtocolError("bad_request", '"line" must be a string holding a command', rid)
    if len(line) > MAX_LINE:
        raise ProtocolError("bad_request", f"the command line is longer than {MAX_LINE} characters", rid)
    unknown = set(message) - {"id", "line"}
    if unknown:
        raise ProtocolError("bad_request", f"unknown request fields: {', '.join(sorted(unknown))[:200]}", rid)
    return rid, line


def _dumps(obj: dict) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str)


def reply_ok(id: RequestId, result: Any) -> str:
    return _dumps({"id": id, "ok": True, "result": result})


def reply_error(id: RequestId, code: str, message: str, **extra: Any) -> str:
    return _dumps({"id": id, "ok": False, "error": {"code": code, "message": message, **extra}})


def push(type: str, **fields: Any) -> str:
    return _dumps({"type": type, **fields})
