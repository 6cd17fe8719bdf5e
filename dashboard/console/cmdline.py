"""Command lines: shell-like words, then each command's argument spec.

The browser console and the command-line client send the same text; the
server alone splits it (shlex, POSIX rules: quotes group words, nothing is
expanded or executed) and checks it against the command's declared
positionals and options. Errors say which argument and why.
"""

from __future__ import annotations

import difflib
import shlex
from dataclasses import dataclass
from typing import Any, Callable, Sequence


class ArgError(ValueError):
    """The words do not fit the command's arguments."""


def split(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=False)
    lexer.whitespace_split = True
    lexer.commenters = ""  # '#' is an ordinary character (a broadcast may hold one)
    try:
        return list(lexer)
    except ValueError as exc:  # "No closing quotation", "No escaped character"
        raise ArgError(f"cannot split the line: {str(exc).lower()}") from None


@dataclass(frozen=True)
class Arg:
    """A positional argument. `rest` takes every remaining word, joined by spaces."""

    name: str
    kind: Callable[[str], Any] = str
    required: bool = True
    rest: bool = False
    help: str = ""

    def usage(self) -> str:
        text = f"<{self.name}>" + ("..." if self.rest else "")
        return text if self.required else f"[{text}]"


@dataclass(frozen=True)
class Opt:
    """An option: --name VALUE (or --name=VALUE)."""

    name: str
    kind: Callable[[str], Any] = str
    default: Any = None
    help: str = ""
    metavar: str = "value"

    def usage(self) -> str:
        return f"[--{self.name} <{self.metavar}>]"


Spec = Sequence[Arg | Opt]


def usage(name: str, spec: Spec) -> str:
    return " ".join([name] + [p.usage() for p in spec])


def parse(spec: Spec, words: Sequence[str]) -> dict[str, Any]:
    """Values for every argument in spec (defaults filled in), or ArgError."""
    positionals = [p for p in spec if isinstance(p, Arg)]
    options = {p.name: p for p in spec if isinstance(p, Opt)}
    values: dict[str, Any] = {o.name: o.default for o in options.values()}
    values.update({a.name: None for a in positionals})
    given: list[str] = []
    words = list(words)
    i = 0
    only_positionals = False
    while i < len(words):
        word = words[i]
        i += 1
        if not only_positionals and word == "--":
            only_positionals = True
            continue
        if not only_positionals and word.startswith("--") and len(word) > 2:
            name, eq, value = word[2:].partition("=")
            option = options.get(name)
            if option is None:
                known = ", ".join("--" + o for o in options) or "none"
                close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
                hint = f"; did you mean --{close[0]}?" if close else ""
                raise ArgError(f"unknown option --{name[:40]} (options: {known}){hint}")
            if not eq:
                if i >= len(words):
                    raise ArgError(f"--{name} needs a value")
                value = words[i]
                i += 1
            values[name] = convert(option.name, option.kind, value)
            continue
        given.append(word)
    for arg in positionals:
        if arg.rest:
            if given:
                values[arg.name] = convert(arg.name, arg.kind, " ".join(given))
                given = []
            elif arg.required:
                raise ArgError(f"missing <{arg.name}>")
        elif given:
            values[arg.name] = convert(arg.name, arg.kind, given.pop(0))
        elif arg.required:
            raise ArgError(f"missing <{arg.name}>")
    if given:
        raise ArgError(f"unexpected argument {given[0]!r}")
    return values


def convert(name: str, kind: Callable[[str], Any], text: str) -> Any:
    try:
        return kind(text)
    except (ValueError, TypeError) as exc:
        detail = str(exc) or "invalid value"
        raise ArgError(f"{name}: {detail}") from None


# ---- argument kinds (callables from text to value; ValueError says why) ----


def number(low: float | None = None, high: float | None = None) -> Callable[[str], float]:
    def parse_number(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {text[:40]!r}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("expected a finite number")
        if low is not None and value < low or high is not None and value > high:
            raise ValueError(f"must be between {low:g} and {high:g}, got {value:g}")
        return value

    return parse_number


def integer(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    def parse_integer(text: str) -> int:
        if not text.strip().lstrip("+-").isdigit():
            raise ValueError(f"expected a whole number, got {text[:40]!r}")
        value = int(text)
        if low is not None and value < low or high is not None and value > high:
            raise ValueError(f"must be between {low} and {high}, got {value}")
        return value

    return parse_integer


def choice(*options: str) -> Callable[[str], str]:
    def parse_choice(text: str) -> str:
        value = text.lower()
        if value not in options:
            close = difflib.get_close_matches(value, list(options), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"must be one of {', '.join(options)}, got {text[:40]!r}{hint}")
        return value

    return parse_choice


def text(max_length: int) -> Callable[[str], str]:
    def parse_text(value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        if len(value) > max_length:
            raise ValueError(f"at most {max_length} characters, got {len(value)}")
        return value

    return parse_text
