"""Small helpers shared by the blueprints."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app, jsonify

if TYPE_CHECKING:  # pragma: no cover
    from .services import Services


def services() -> "Services":
    return current_app.extensions["dashboard"]


def error(status: int, code: str, message: str, **extra):
    """The JSON error body every endpoint uses: {"error": {"code", "message"}}."""
    return jsonify({"error": {"code": code, "message": message, **extra}}), status
