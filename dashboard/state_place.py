"""Where this server's state lives, and whether it outlasts a restart (said at start and in /healthz).

History, the event buffer, alert rules, logouts, notification queues and
generated secrets live in Redis (REDIS_URL) or under DATA_DIR and AUDIT_DB.
On a platform whose disk is wiped at every restart or deploy (Heroku's dynos;
Render, Fly and Railway without a volume) the latter are lost each time, and
nothing said so. The platform is recognised by the variables it sets (DYNO,
RENDER, FLY_APP_NAME, RAILWAY_ENVIRONMENT). A folder counts as lasting when
DATA_DIR_LASTS says so, or (auto) when it is on another device than `/`: a
mounted volume (Render's disk, a Fly or Railway volume, `dokku storage:mount`).
Heroku has no volumes, so there only DATA_DIR_LASTS=1 or Redis count.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

# The variable each platform sets in its processes, and its name.
PLATFORMS = (("DYNO", "Heroku"), ("RENDER", "Render"), ("FLY_APP_NAME", "Fly.io"),
             ("RAILWAY_ENVIRONMENT", "Railway"))


def platform(environ: Mapping[str, str]) -> str | None:
    return next((name for var, name in PLATFORMS if environ.get(var)), None)


def _device(path: str) -> int | None:
    """st_dev of path, or of its nearest existing parent."""
    path = os.path.abspath(path)
    while True:
        try:
            return os.stat(path).st_dev
        except OSError:
            parent = os.path.dirname(path)
            if parent == path:
                return None
            path = parent


def describe(cfg: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> dict:
    """{"platform", "store", "path", "lasts", "why"}: where state lives and whether it lasts."""
    environ = os.environ if environ is None else environ
    where = platform(environ)
    if cfg.get("REDIS_URL"):
        return {"platform": where, "store": "redis", "path": None, "lasts": True,
                "why": "REDIS_URL: state lives in Redis, as long as Redis keeps it"}
    path = os.path.abspath(cfg["DATA_DIR"])
    setting = cfg.get("DATA_DIR_LASTS", "auto")
    if setting in ("1", "0"):
        lasts, why = setting == "1", f"DATA_DIR_LASTS={setting}"
    elif where is None:
        lasts, why = True, "no platform with a wiped disk recognised"
    elif where == "Heroku":
        lasts, why = False, "a dyno's disk is wiped at every restart and Heroku has no volumes"
    elif _device(path) not in (None, _device("/")):
        lasts, why = True, "DATA_DIR is on another device than / (a mounted volume)"
    else:
        lasts, why = False, f"DATA_DIR is on the container's own disk, which {where} wipes at every deploy"
    return {"platform": where, "store": "disk", "path": path, "lasts": lasts, "why": why}


def warning(place: dict) -> str | None:
    """The one line said at start when state will not last, else None."""
    if place["lasts"] or place["platform"] is None:
        return None
    return (f"state will not last: on {place['platform']} without REDIS_URL, {place['why']}; history, "
            f"alert rules, logouts and generated secrets under DATA_DIR={place['path']} (and AUDIT_DB) "
            f"are lost at every restart. Set REDIS_URL, or put DATA_DIR and AUDIT_DB on a volume "
            f"(DATA_DIR_LASTS=1 if it is one this check cannot see)")
