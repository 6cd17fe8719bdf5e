"""The console's commands, one module per family; importing this registers them all."""

from . import changing, containers, inspecting, notifying, process_control, reading  # noqa: F401  (each registers its commands)
from .registry import (REGISTRY, Command, CommandError, Context, Pending, cost_of, lookup, masked, resolve,
                       run)

__all__ = ["REGISTRY", "Command", "CommandError", "Context", "Pending", "cost_of", "lookup", "masked", "resolve", "run"]
