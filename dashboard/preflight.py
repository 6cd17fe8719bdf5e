"""Tried before the server starts: the files the settings name can be created and written.

gunicorn.conf.py runs this in the master, after the settings parsed: a path
that cannot be used stops the start with one line naming the setting, its
value and why, rather than a worker dying on its first write with a long
sqlite3 traceback that names neither.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from .settings import SettingError, audit_db


def check_paths(values: Mapping[str, Any]) -> None:
    """Try, before the server starts, the files the embedded store will write (AUDIT_DB, DATA_DIR):
    a SettingError naming the setting, its value and why, rather than a worker dying on its first
    write. With REDIS_URL the audit log and the store live in Redis and nothing is tried."""
    if values.get("REDIS_URL"):
        return
    for name, path in (("AUDIT_DB", audit_db(values)),
                       ("DATA_DIR", os.path.join(values["DATA_DIR"], "notify.sqlite3"))):
        folder = os.path.dirname(os.path.abspath(path))
        try:
            blocker = next((p for p in _ancestors(folder) if os.path.exists(p) and not os.path.isdir(p)), None)
            if blocker is not None:
                raise NotADirectoryError(20, "Not a directory", blocker)
            os.makedirs(folder, exist_ok=True)
            with open(path, "ab"):  # creates an empty file, which SQLite takes as a new database
                pass
        except OSError as exc:
            why = exc.strerror or str(exc)
            where = f" ({exc.filename})" if exc.filename and exc.filename != path else ""
            shown = values[name] or (f"(empty: {path})" if name == "AUDIT_DB" else "")
            raise SettingError(f"{name}={shown!r}: must be a path this server can create and "
                               f"write; {why.lower()}{where}") from None


def _ancestors(folder: str) -> list[str]:
    out = [folder]
    while os.path.dirname(out[-1]) != out[-1]:
        out.append(os.path.dirname(out[-1]))
    return out
