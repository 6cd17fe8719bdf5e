"""Lasting state below every stage: the audit log (SQLite or Redis) and the Redis keys."""
