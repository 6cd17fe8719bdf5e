"""Live host metrics over server-sent events, steered from a WebSocket console."""

from __future__ import annotations

import logging
import os
import sys

__version__ = "0.1.0"

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def create_app(test_config: dict | None = None):
    """Build the Flask app: defaults, then the environment, then test_config."""
    from flask import Flask
    from werkzeug.exceptions import HTTPException

    from . import api, pages, settings, stream
    from .services import Services
    from .web import error

    app = Flask(
        __name__,
        root_path=ROOT,
        template_folder=os.path.join(ROOT, "templates"),
        static_folder=os.path.join(ROOT, "static"),
    )
    app.config.from_mapping(settings.load())
    if test_config:
        app.config.update(test_config)

    logging.basicConfig(
        stream=sys.stdout,
        level=str(app.config["LOG_LEVEL"]).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("dashboard").setLevel(str(app.config["LOG_LEVEL"]).upper())

    svc = Services(app.config)
    app.extensions["dashboard"] = svc
    # The sampler starts in the process that serves, never at import: gunicorn
    # starts it right after the fork, any other server on the first request.
    app.before_request(svc.ensure_started)

    app.register_blueprint(pages.bp)
    app.register_blueprint(stream.bp)
    app.register_blueprint(api.bp)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = (exc.name or "error").lower().replace(" ", "_")
        return error(exc.code or 500, code, exc.description or exc.name)

    return app
