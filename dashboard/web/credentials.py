"""Who a token is: every configured token with its role and, for named ones, its name.

Tokens come from OPERATOR_TOKEN, OBSERVER_TOKEN and VIEWER_TOKEN (one each, the
name is claimed at login), the named lists OPERATOR_TOKENS, OBSERVER_TOKENS and
VIEWER_TOKENS (`alice:<token>,...`: the name comes from the token and cannot be
claimed otherwise), and METRICS_TOKEN (opens /metrics, nothing else).

A presented token is compared with every configured one in constant time, as
SHA-256 digests (so not even its length leaks), without stopping at a match.
A login remembers which credential it used by a fingerprint (a truncated
digest, useless for logging in): when that token is changed or removed, the
fingerprint no longer matches and the login ends.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from ..console.operator import ROLES

METRICS = "metrics"  # a role of its own: /metrics only


@dataclass(frozen=True)
class Credential:
    role: str  # viewer, observer, operator or metrics
    name: str | None  # from a named token; None when the name is claimed at login
    id: str  # fingerprint, kept in the session cookie


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def fingerprint(token: str) -> str:
    return hashlib.sha256(b"dashboard-login\0" + token.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def at_least(role: str, wanted: str) -> bool:
    """True when role may do what `wanted` may (metrics is only itself)."""
    if role == METRICS or wanted == METRICS:
        return role == wanted
    return ROLES[role] >= ROLES[wanted]


class Tokens:
    def __init__(self, config: dict) -> None:
        entries: list[tuple[str, str | None, str]] = []
        for role in ROLES:
            single = config.get(f"{role.upper()}_TOKEN") or ""
            if single:
                entries.append((role, None, single))
            entries += [(role, name, token) for name, token in config.get(f"{role.upper()}_TOKENS") or ()]
        if config.get("METRICS_TOKEN"):
            entries.append((METRICS, None, config["METRICS_TOKEN"]))
        if not any(role == "operator" for role, _, _ in entries):
            raise ValueError("an operator token is required (OPERATOR_TOKEN or OPERATOR_TOKENS)")
        seen: dict[bytes, str] = {}
        for role, name, token in entries:
            d = _digest(token)
            if d in seen:
                raise ValueError(f"the same token is given to two logins ({seen[d]} and {name or role}); "
                                 "each login needs its own")
            seen[d] = name or role
        self._entries = [(_digest(token), Credential(role, name, fingerprint(token)))
                         for role, name, token in entries]
        self._by_id = {c.id: c for _, c in self._entries}

    def match(self, presented: str | None) -> Credential | None:
        """The credential a presented token is, or None. Constant time in the token."""
        given = _digest(presented or "")
        found = None
        for digest, credential in self._entries:
            if hmac.compare_digest(given, digest) and found is None:
                found = credential
        return found if presented else None

    def role_for(self, presented: str | None) -> str | None:
        credential = self.match(presented)
        return credential.role if credential else None

    def by_id(self, fingerprint_id: str | None) -> Credential | None:
        """The credential a login was made with, if that token is still configured."""
        return self._by_id.get(fingerprint_id or "")
