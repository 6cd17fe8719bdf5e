"""What the console asks of the server: the one interface its commands use.

The wiring at the top (`dashboard.operations`) implements it; commands and
sessions never see the parts behind it, so they can be read and tested with
any object that has these methods.
"""

from __future__ import annotations

from typing import Any, Iterable, Protocol


class Stream(Protocol):
    """An open event stream, as `clients` lists it."""

    client: str | None
    addr: str
    since: float
    events: int
    host: str | None


class Operations(Protocol):
    process_control: bool  # ALLOW_PROCESS_CONTROL

    # reading
    def status(self) -> dict: ...
    def streams(self) -> Iterable[Stream]: ...
    def consoles(self) -> list[Any]: ...  # ConsoleSession, for `clients` and `drop`
    def process_rows(self, host: str | None = None) -> list[dict]: ...  # KeyError: unknown host
    def hosts(self) -> list[dict]: ...
    def process_details(self, pid: int) -> dict: ...  # LookupError: no such process (this host only)
    def alert_rules(self) -> list[dict]: ...
    # containers: a host's from its latest sample (KeyError: unknown host; None: none in it), and this host's
    def container_section(self, host: str | None = None) -> dict | None: ...
    def container_id(self, name: str) -> str: ...  # LookupError: no such running container
    def container_details(self, cid: str) -> dict: ...  # LookupError: gone
    # another host's: from its samples (KeyError: unknown host; LookupError: no such container), and
    # a restart asked of its sampler over Redis (its reply; TimeoutError when none comes in time)
    def elsewhere(self, host: str | None) -> bool: ...
    def remote_container(self, host: str, name: str) -> dict: ...
    def ask_container_restart(self, host: str, name: str, wait: int, by: str) -> dict: ...
    def audit_latest(self, n: int) -> list[dict]: ...

    # changing (each shows on every dashboard's stream)
    def set_interval(self, seconds: float, by: str | None = None) -> Any: ...
    def set_paused(self, paused: bool, by: str | None = None) -> tuple[bool, Any]: ...
    def add_alert(self, metric: str, op: str, value: float, hold: float, by: str | None,
                  hosts: str | None = None) -> Any: ...
    def remove_alert(self, rule_id: str, by: str | None) -> Any: ...  # KeyError: unknown rule
    def broadcast(self, message: str, by: str | None) -> Any: ...
    def drop_streams(self, name: str) -> int: ...  # by client name, or "all"
    def container_restart(self, cid: str, wait: int) -> None: ...  # through the engine; OSError when it refuses

    # notifications (channels hold secrets: every URL returned is masked)
    def notify_channels(self) -> list[dict]: ...
    def notify_add(self, url: str, name: str | None, by: str | None) -> dict: ...  # ValueError: refused
    def notify_remove(self, name: str, by: str | None) -> dict: ...  # KeyError, PermissionError
    def notify_test(self, name: str | None, by: str | None) -> list[dict]: ...  # KeyError: no such channel
    def alert_history(self, n: int) -> list[dict]: ...
    def silence_add(self, rule: str, seconds: float, reason: str | None, by: str | None) -> dict: ...  # KeyError
    def silences(self) -> list[dict]: ...
    def silence_clear(self, silence_id: str, by: str | None) -> dict: ...  # KeyError
