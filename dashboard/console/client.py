"""Command-line client for the operator console.

    python -m dashboard.console http://127.0.0.1:8000 --token ...      # interactive
    python -m dashboard.console http://127.0.0.1:8000 -c "top 5"        # one command

The token may also come from OPERATOR_TOKEN. Same protocol and grammar as the
browser console; exits non-zero when the command fails (1) or the connection
does (2), so scripts can rely on it.

Everything the server sends is someone else's text (a process names itself), so
it reaches the terminal only through escapes.visible: a control or bidi
character prints as `\\x1b` or `\\u202e`, never raw. The client lays its output
out with line feeds and spaces of its own, added after escaping; a value never
carries a raw line feed or tab (a broadcast's line breaks become indented lines).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import queue
import re
import shutil
import sys
import threading
import time
from urllib.parse import urlsplit, urlunsplit

from simple_websocket import Client, ConnectionClosed
from simple_websocket import ConnectionError as HandshakeRefused

from ..escapes import json_visible, visible
from . import formatting

EXIT_ERROR = 1
EXIT_CONNECTION = 2
WELCOME_SECONDS = 10.0  # how long to wait for the server's welcome before giving up (exit 2)


def socket_url(url: str) -> str:
    """ws(s)://host/console from an http(s) or ws(s) base URL."""
    parts = urlsplit(url if "://" in url else "http://" + url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = parts.path.rstrip("/")
    if not path.endswith("/console"):
        path += "/console"
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def width() -> int:
    """The terminal's width in columns ($COLUMNS first; 80 when there is no terminal)."""
    return shutil.get_terminal_size((80, 24)).columns


def render(result, columns: int | None = None) -> str:
    """A result as text that fits the terminal (formatting.py has the rules)."""
    return formatting.render(result, columns or width())


def signed_in_as(name, role) -> str:
    """"dana (operator)", or "operator" alone when the name is the role's own default."""
    return visible(role) if name == role else f"{visible(name)} ({visible(role)})"


def refused(exc: Exception) -> str:
    """Why the server refused the handshake, in words (simple-websocket says only the status)."""
    status = getattr(exc, "status_code", None)
    why = {
        401: "the token was not accepted (401): check --token or $OPERATOR_TOKEN",
        403: "this login may not open the console (403): it needs an observer or operator token",
        429: "too many failed logins from this address (429): wait a while, then try again",
    }
    return why.get(status, f"the server refused the connection (HTTP {status})")


def render_push(message: dict) -> str:
    """One push as text, every field escaped; a broadcast's line breaks start indented lines,
    so its text can never pass for a line of the client's own."""
    kind = message.get("type")

    def v(key: str, src: dict = message) -> str:
        return visible(src.get(key))

    if kind == "notice":
        text = "\n    ".join(visible(part) for part in re.split(r"\r?\n", str(message.get("message"))))
        return f"[broadcast from {v('by')}] {text}"
    if kind == "alert":
        return f"[alert {v('state')}] {v('message')}"
    if kind == "config":
        return f"[config] {v('change')} by {v('by')}"
    if kind == "audit":
        rec = message.get("record") if isinstance(message.get("record"), dict) else {}
        return f"[{v('operator', rec)}@{v('addr', rec)}] {v('line', rec)} -> {v('outcome', rec)}"
    return f"[{visible(kind)}] {json_visible(json.dumps(message, ensure_ascii=False))}"


def error_lines(err: dict) -> list[str]:
    """An error reply as text: `error <code>: <message>`, and the line that would carry it out."""
    lines = [f"error {visible(err.get('code'))}: {visible(err.get('message'))}"]
    if err.get("confirm"):
        lines.append(f"  to proceed: {visible(err['confirm'])}")
    return lines


class _Client(Client):
    """simple-websocket's client, minus a race: frames that arrive in the same read
    as the server's 101 (our welcome, sent right after it) stay queued inside
    wsproto until more data comes, so the welcome could be missed. They are
    taken out here, before the library's reader thread starts."""

    def handshake(self):
        super().handshake()
        self.connected = self._handle_events()


def connect(url: str, headers: dict, seconds: float):
    """(socket, welcome text) within `seconds` of starting, whatever the server
    does: a server that accepts and never answers, or answers the upgrade and
    stays silent, must not hang a script (the library's handshake has no timeout
    of its own, so it runs in a helper thread that is abandoned on time out)."""
    deadline = time.monotonic() + seconds
    box: queue.Queue = queue.Queue(maxsize=1)

    def attempt() -> None:
        try:
            ws = _Client.connect(url, headers=headers)
            box.put((ws, ws.receive(timeout=max(0.01, deadline - time.monotonic())), None))
        except BaseException as exc:  # handed to the caller
            box.put((None, None, exc))

    threading.Thread(target=attempt, daemon=True).start()
    try:
        ws, greeting, exc = box.get(timeout=seconds)
    except queue.Empty:
        raise ConnectionError(f"no welcome from the server within {seconds:g} s") from None
    if exc is not None:
        raise exc
    if greeting is None:
        ws.close()
        raise ConnectionError(f"no welcome from the server within {seconds:g} s")
    return ws, greeting


class Session:
    """A connection with replies matched to requests by id; pushes go to a callback."""

    def __init__(self, url: str, token: str, name: str | None = None, on_push=print) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        if name:
            headers["X-Operator-Name"] = name
        self.ws, greeting = connect(socket_url(url), headers, WELCOME_SECONDS)
        self.on_push = on_push
        self.ids = itertools.count(1)
        self.waiting: dict[int, queue.Queue] = {}
        self.lock = threading.Lock()
        self.welcome = json.loads(greeting)
        if self.welcome.get("type") != "welcome":
            self.close()
            raise ConnectionError(f"unexpected greeting: {self.welcome}")
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        try:
            while True:
                raw = self.ws.receive()
                if raw is None:
                    continue
                message = json.loads(raw)
                box = self.waiting.pop(message.get("id"), None) if "ok" in message else None
                if box is not None:
                    box.put(message)
                elif "type" in message:
                    self.on_push(message)
        except ConnectionClosed:
            pass
        for box in list(self.waiting.values()):
            box.put(None)

    def request(self, line: str, timeout: float = 30.0) -> dict:
        rid = next(self.ids)
        box: queue.Queue = queue.Queue(maxsize=1)
        self.waiting[rid] = box
        with self.lock:
            self.ws.send(json.dumps({"id": rid, "line": line}))
        try:
            reply = box.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no reply to {line!r} within {timeout:g}s") from None
        if reply is None:
            raise ConnectionError(
                f"connection closed ({self.ws.close_reason} {self.ws.close_message or ''})".strip())
        return reply

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass


def one_shot(session: Session, line: str, as_json: bool) -> int:
    reply = session.request(line)
    if reply["ok"]:
        result = reply["result"]
        print(json_visible(json.dumps(result, ensure_ascii=False)) if as_json else render(result))
        return 0
    print(error_lines(reply["error"])[0], file=sys.stderr)
    return EXIT_ERROR


class Prompt:
    """Where pushes go in the interactive client: above the line being typed, which is redrawn."""

    def __init__(self, readline=None) -> None:
        self.readline = readline
        self.text: str | None = None  # the prompt on screen, while input() waits
        self.lock = threading.Lock()

    def show(self, message: str) -> None:
        with self.lock:
            if self.text is None or not sys.stdout.isatty():
                print(message, flush=True)
                return
            typed = self.readline.get_line_buffer() if self.readline is not None else ""
            # Back to the start of the line, clear it, print the push, then the prompt again.
            sys.stdout.write(f"\r\x1b[K{message}\n{self.text}{typed}")
            sys.stdout.flush()


def interactive(session: Session, prompt_line: "Prompt | None" = None) -> int:
    try:
        import readline
    except ImportError:  # pragma: no cover (not on every platform)
        readline = None
    history = os.path.expanduser("~/.dashboard_console_history")
    names = sorted({c["name"] for c in session.welcome.get("commands", [])})
    if readline is not None:
        try:
            readline.read_history_file(history)
        except OSError:
            pass

        def complete(text, state):
            options = [n for n in names if n.startswith(readline.get_line_buffer().lstrip())]
            options = [n.split()[-1] if " " in readline.get_line_buffer() else n for n in options]
            return options[state] if state < len(options) else None

        readline.set_completer(complete)
        readline.parse_and_bind("tab: complete")
    w = {k: visible(v) for k, v in session.welcome.items() if k in ("server", "version", "operator")}
    who = signed_in_as(session.welcome.get("operator"), session.welcome.get("role"))
    print(f"connected to {w.get('server')} (v{w.get('version')}) as {who}; 'help' lists commands, Ctrl-D quits")
    prompt = f"{w.get('operator')}@{w.get('server')}> "
    if prompt_line is not None:
        prompt_line.readline = readline
    status = 0
    try:
        while True:
            try:
                if prompt_line is not None:
                    prompt_line.text = prompt
                line = input(prompt)
            except EOFError:
                print()
                break
            finally:
                if prompt_line is not None:
                    prompt_line.text = None
            if not line.strip():
                continue
            if line.strip() in ("quit", "exit"):
                break
            reply = session.request(line)
            if reply["ok"]:
                print(render(reply["result"]))
            else:
                print("\n".join(error_lines(reply["error"])))
    except (ConnectionError, TimeoutError) as exc:
        print(f"\n{visible(exc)}", file=sys.stderr)
        status = EXIT_CONNECTION
    finally:
        if readline is not None:
            try:
                readline.write_history_file(history)
            except OSError:
                pass
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboard.console", description=__doc__.split("\n")[0])
    parser.add_argument("url", nargs="?", default=os.environ.get("DASHBOARD_URL", "http://127.0.0.1:8000"),
                        help="the dashboard's address (default: $DASHBOARD_URL or http://127.0.0.1:8000)")
    parser.add_argument("--token", default=os.environ.get("OPERATOR_TOKEN"),
                        help="operator or observer token (default: $OPERATOR_TOKEN)")
    parser.add_argument("--name", help="name to appear under in the audit log (default: cli)")
    parser.add_argument("-c", "--command", help="run one command, print its result and exit")
    parser.add_argument("--json", action="store_true", help="with -c: print the result as JSON")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("a token is needed: --token or OPERATOR_TOKEN")

    prompt = Prompt()

    def show_push(message: dict) -> None:
        if args.command:
            print(render_push(message), file=sys.stderr, flush=True)
        else:
            prompt.show(render_push(message))

    try:
        session = Session(args.url, args.token, args.name, on_push=show_push)
    except HandshakeRefused as exc:
        print(f"cannot connect to {visible(socket_url(args.url))}: {refused(exc)}", file=sys.stderr)
        return EXIT_CONNECTION
    except Exception as exc:  # DNS, TCP, an unexpected greeting...
        print(f"cannot connect to {visible(socket_url(args.url))}: {visible(exc)}", file=sys.stderr)
        return EXIT_CONNECTION
    try:
        if args.command:
            try:
                return one_shot(session, args.command, args.json)
            except (ConnectionError, TimeoutError) as exc:
                print(visible(exc), file=sys.stderr)
                return EXIT_CONNECTION
        return interactive(session, prompt)
    finally:
        session.close()


if __name__ == "__main__":
    sys.exit(main())
