"""GET /: the dashboard page (metrics on one side, the operator console on the other)."""

from __future__ import annotations

from typing import Protocol

from flask import Blueprint, Response, render_template

from .auth import may_see_host
from ..stream.windows import Windows
from .common import serving

bp = Blueprint("pages", __name__)


class Serves(Protocol):
    """What the pages use of the process they serve."""

    host: str
    version: str
    config: dict
    windows: Windows


def services() -> Serves:
    return serving(Serves)


@bp.get("/")
def index():
    svc = services()
    if not may_see_host():
        # The login form and nothing of the host: no name, no numbers.
        return render_template("index.html", locked=True, host="", version="",
                               history_seconds=svc.config["HISTORY_SECONDS"])
    return render_template(
        "index.html",
        locked=False,
        host=svc.host,
        version=svc.version,
        history_seconds=svc.config["HISTORY_SECONDS"],
        longest_seconds=int(svc.windows.longest),
        reach_seconds=int(svc.windows.reach(svc.host)),
    )


@bp.get("/favicon.ico")
def favicon():
    # The page draws its own icon (with the alert count); JSON pages opened in
    # a browser would otherwise fill logs with 404s for this.
    return Response(status=204)
