"""GET /: the dashboard page (metrics on one side, the operator console on the other)."""

from __future__ import annotations

from flask import Blueprint, Response, render_template

from .auth import may_see_host
from .common import services

bp = Blueprint("pages", __name__)


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
