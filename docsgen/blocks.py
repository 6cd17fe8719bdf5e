"""Marked blocks in a hand-written page, made again from their source.

A block is `<!-- generated: name -->` ... `<!-- end generated -->`; what is
between the markers is replaced by what the named generator returns, the
prose around it is left as written."""

from __future__ import annotations

import re
from typing import Callable, Mapping

BLOCK = re.compile(r"(<!-- generated: (\w+) -->\n)(.*?)(<!-- end generated -->)", re.S)


def fill(page: str, current: str, generators: Mapping[str, Callable[[], str]]) -> str:
    """current with every marked block made again; a block no generator knows is an error."""
    def block(match: re.Match) -> str:
        name = match.group(2)
        if name not in generators:
            raise KeyError(f"{page}: no generator for block {name!r}")
        return match.group(1) + generators[name]() + match.group(4)

    return BLOCK.sub(block, current)
