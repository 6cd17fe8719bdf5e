"""Generated secrets that last: OPERATOR_TOKEN and SECRET_KEY kept in DATA_DIR/secrets.json.

When a secret is not configured the server makes one. Made anew at each start,
every restart would log every browser out (a new cookie key) and break the
printed login link (a new token). So what is generated is written once to an
owner-only file (mode 0600, written whole and renamed into place) and read back
at the next start. A value set in the environment always wins and is never
written here. To rotate: delete the file (new ones are made at the next start)
or set the variable.
"""

from __future__ import annotations

import json
import os
import stat
from typing import Callable, Iterable

from .settings import SettingError

FILE_NAME = "secrets.json"


class Kept:
    """What `keep` decided: the values, which were made now, which came from the file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.values: dict[str, str] = {}
        self.made: list[str] = []
        self.reused: list[str] = []
        self.warnings: list[str] = []


def path_of(data_dir: str) -> str:
    return os.path.join(data_dir, FILE_NAME)


def keep(data_dir: str, names: Iterable[str], make: Callable[[], str]) -> Kept:
    """Values for `names` (the secrets not configured): from the file when it has them,
    else made with `make` and written to it. A file that cannot be written leaves the
    made values in memory only, with a warning (logins then end at restart)."""
    kept = Kept(path_of(data_dir))
    names = list(names)
    if not names:
        return kept
    stored = _read(kept)
    for name in names:
        value = stored.get(name)
        if isinstance(value, str) and len(value) >= 16:
            kept.values[name] = value
            kept.reused.append(name)
        else:
            kept.values[name] = make()
            kept.made.append(name)
    if kept.made:
        try:
            _write(kept.path, {**stored, **kept.values})
        except OSError as exc:
            kept.warnings.append(
                f"could not keep the generated {' and '.join(kept.made)} in {kept.path} "
                f"({exc.strerror or exc}): logins end at the next restart")
    return kept


def _read(kept: Kept) -> dict:
    path = kept.path
    try:
        with open(path, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            raw = f.read()
    except (FileNotFoundError, NotADirectoryError):  # never made yet (or cannot be: said at write)
        return {}
    except OSError as exc:
        raise SettingError(f"DATA_DIR: cannot read {path}: {(exc.strerror or str(exc)).lower()}") from None
    try:
        stored = json.loads(raw)
        if not isinstance(stored, dict):
            raise ValueError("not an object")
    except ValueError:
        # Never overwritten silently: it may hold the only copy of a token someone uses.
        raise SettingError(f"DATA_DIR: {path} is not a JSON object of secrets; delete it to make new "
                           f"ones") from None
    if stat.S_IMODE(mode) & 0o077:
        try:
            os.chmod(path, 0o600)
            kept.warnings.append(f"{path} was readable by others; made owner-only (0600)")
        except OSError as exc:
            kept.warnings.append(f"{path} is readable by others and could not be changed: {exc.strerror}")
    return stored


def _write(path: str, values: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask or a leftover file said
        os.write(fd, json.dumps(values, indent=1).encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)
