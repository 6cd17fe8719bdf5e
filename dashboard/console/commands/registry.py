"""The console's command registry: (name, arguments, role, handler), lookup and parsing.

Handlers (reading.py, changing.py, process_control.py) are plain functions of
(context, arguments) that return JSON-able data or raise CommandError; they
know nothing of sockets, and reach the server only through `ctx.ops`, the
narrow `Operations` interface the wiring provides. `run` turns one
command line into a result: split, look up, check the role, parse arguments,
then call. Nothing here runs a shell or builds a command line for one.

Tabular results are {"columns": [...], "rows": [[...], ...]}, which both the
browser and the command-line client render as tables.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import cmdline
from ..cmdline import Arg, ArgError
from ..operations import Operations
from ..operator import ROLES, Operator


class CommandError(Exception):
    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra
        self.command: str | None = None  # set once the line named a known command


@dataclass
class Pending:
    """A destructive action waiting for `confirm <code>` on the same connection."""

    action: Callable[[], Any]
    expires: float


@dataclass
class Context:
    operator: Operator
    ops: Operations
    confirmations: dict[str, Pending] = field(default_factory=dict)
    connection: str = "-"
    # What to do once this command's reply is queued (closing the asking console, for one).
    after_reply: list[Callable[[], None]] = field(default_factory=list)


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    role: str
    handler: Callable[[Context, dict], Any]
    args: tuple = ()
    changes: bool = False  # changes shared state: audited as pending first, echoed to other consoles
    verbatim: bool = False  # the rest of the line is one argument, quotes optional
    audited: bool = True
    mask: Callable[[str], str] | None = None  # how the line is written to the audit log (hides secrets)
    cost: int = 1  # what one request takes from the console rate limits (a `ping` is 1)
    join: Callable[[list[str]], list[str]] | None = None  # words that are one argument as typed

    @property
    def usage(self) -> str:
        return cmdline.usage(self.name, self.args)

    def public(self) -> dict:
        return {"name": self.name, "usage": self.usage, "help": self.help, "role": self.role}


REGISTRY: dict[str, Command] = {}


def command(name: str, help: str, *args, role: str = "observer", changes: bool = False,
            verbatim: bool = False, audited: bool = True, mask: Callable[[str], str] | None = None,
            cost: int = 1, join: Callable[[list[str]], list[str]] | None = None):
    def register(fn):
        REGISTRY[name] = Command(name, help, role, fn, tuple(args), changes, verbatim, audited, mask, cost, join)
        return fn

    return register


def lookup(words: list[str]) -> tuple[Command, int]:
    """The command the first words name (two-word names first), and how many words it used."""
    if len(words) >= 2 and f"{words[0]} {words[1]}" in REGISTRY:
        return REGISTRY[f"{words[0]} {words[1]}"], 2
    if words[0] in REGISTRY:
        return REGISTRY[words[0]], 1
    subs = sorted(n for n in REGISTRY if n.startswith(words[0] + " "))
    if subs:  # a family's name with a wrong second word: `alert lst`
        close = _closest(f"{words[0]} {words[1]}", subs) if len(words) > 1 else []
        hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else f"try: {', '.join(subs)}"
        raise CommandError(
            "unknown_command", f"{' '.join(words[:2])[:60]!r} is not a command; {hint}",
            suggestions=close or subs)
    # A misspelt first word, of a command or of a family (`alrt list` is `alert list`).
    close = []
    for near in difflib.get_close_matches(words[0], sorted({n.split()[0] for n in REGISTRY}), n=3, cutoff=0.6):
        family = sorted(n for n in REGISTRY if n.startswith(near + " "))
        sub = _closest(f"{near} {words[1]}", family) if len(words) > 1 and family else []
        close += sub or ([near] if near in REGISTRY else family)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "; type 'help'"
    typed = " ".join(words[:2]) if any(" " in c for c in close) and len(words) > 1 else words[0]
    raise CommandError("unknown_command", f"unknown command {typed[:60]!r}{hint}", suggestions=close)


def _closest(name: str, names: list[str]) -> list[str]:
    """The subcommand whose second word is nearest the one typed (the first words are the same)."""
    second = {n.split(" ", 1)[1]: n for n in names}
    near = difflib.get_close_matches(name.split(" ", 1)[1], list(second), n=1, cutoff=0.6)
    return [second[near[0]]] if near else []


def cost_of(line: str) -> int:
    """What a request line takes from the rate limits: its command's cost, 1 when it names none
    (a typo costs what a ping does; it is answered without running anything)."""
    head = line.split(None, 2)
    if not head:
        return 1
    cmd = REGISTRY.get(" ".join(head[:2])) or REGISTRY.get(head[0])
    return cmd.cost if cmd is not None else 1


def masked(line: str) -> str:
    """The line as the audit log keeps it: a command that holds secrets masks them, even when the
    line does not parse (the record of a refused `notify add` must not hold the URL either)."""
    head = line.split(None, 2)
    if not head:
        return line
    cmd = REGISTRY.get(" ".join(head[:2])) or REGISTRY.get(head[0])
    if cmd is None:  # a misspelt one (`NOTIFY add ...`) is masked like the family it resembles
        cmd = next((c for c in REGISTRY.values() if c.mask is not None and
                    c.name.split()[0] == head[0].lower()), None)
    return cmd.mask(line) if cmd is not None and cmd.mask is not None else line


def resolve(line: str, operator: Operator) -> tuple[Command, dict]:
    """Parse a line into its command and argument values, or CommandError."""
    head = line.split(None, 2)
    if not head:
        raise CommandError("bad_request", "empty command line; type 'help'")
    cmd, used = lookup(head)
    if ROLES[operator.role] < ROLES[cmd.role]:
        err = CommandError("forbidden", f"{cmd.name!r} needs the {cmd.role} role; you are {operator.role}")
        err.command = cmd.name
        raise err
    parts = line.split(None, used)
    rest = parts[used] if len(parts) > used else ""
    try:
        if cmd.verbatim:
            values = {cmd.args[0].name: _verbatim(rest, cmd.args[0])}
        else:
            words = cmdline.split(rest)
            values = cmdline.parse(cmd.args, cmd.join(words) if cmd.join else words)
    except ArgError as exc:
        err = CommandError("bad_args", f"{exc}; usage: {cmd.usage}", usage=cmd.usage)
        err.command = cmd.name
        raise err from None
    return cmd, values


def _verbatim(rest: str, arg: Arg) -> Any:
    # The rest of the line as typed, so "it's down" needs no quoting; one
    # quoted string is taken without its quotes (the way to send line breaks).
    text = rest.strip()
    if text[:1] in ("'", '"'):
        try:
            words = cmdline.split(text)
        except ArgError:
            words = []
        if len(words) == 1:
            text = words[0]
    if not text.strip():
        raise ArgError(f"missing <{arg.name}>")
    return cmdline.convert(arg.name, arg.kind, text)


def run(ctx: Context, cmd: Command, values: dict) -> Any:
    return cmd.handler(ctx, values)
