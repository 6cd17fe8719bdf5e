"""Text from others, made safe to show: control and bidi characters become visible escapes.

A process names itself, a command line is whatever its author typed, and a
broadcast is an operator's text. Printed raw to a terminal, such text could set
the window's title, clear the screen, write the clipboard (OSC 52) or move the
cursor; in a notification or a terminal alike, a right-to-left override could
make `evil.exe` read as something else. `visible` writes every C0 control (line
feed and tab included: whoever lays text out adds its own), DEL, every C1
control, and the bidi overrides, isolates and marks as `\\x1b`, `\\n` or `\\u202e`,
and leaves all other text as it was. It is idempotent: its output holds none
of those characters, so escaping twice changes nothing.
"""

from __future__ import annotations

import re

# U+061C arabic letter mark, U+200E/F LRM/RLM, U+202A-E embeddings and overrides,
# U+2066-9 isolates.
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
HIDDEN = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")
# What JSON text may still hold raw: json.dumps escapes C0 inside strings, and outside
# them the only controls are its own layout (the line feeds of indent=2).
_HIDDEN_IN_JSON = re.compile(f"[\x7f-\x9f{_BIDI}]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}  # the three everyone reads at sight


def _escape(match: re.Match) -> str:
    char = match.group()
    code = ord(char)
    return _SHORT.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def visible(text: object) -> str:
    """str(text) with each control or bidi character written as a visible escape."""
    return HIDDEN.sub(_escape, str(text))


def json_visible(json_text: str) -> str:
    """JSON text (as json.dumps writes it) with those characters as JSON escapes (\\u202e): the
    same data once parsed. json.dumps already escapes C0 controls; this covers DEL, C1 and bidi."""
    return _HIDDEN_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", json_text)
