"""Small helpers shared by the blueprints."""

from __future__ import annotations

from flask import current_app, jsonify

from .services import Services


def services() -> Services:
    return current_app.extensions["dashboard"]


def error(status: int, code: str, message: str, **extra):
    """The JSON error body every endpoint uses: {"error": {"code", "message"}}."""
    return jsonify({"error": {"code": code, "message": message, **extra}}), status
