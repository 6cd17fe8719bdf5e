"""Who is at a console: name, role and login, as authentication established them."""

from __future__ import annotations

from dataclasses import dataclass

# Each role may do what the roles below it may. A viewer sees the dashboards
# but opens no console; commands need observer or operator.
ROLES = {"viewer": 0, "observer": 1, "operator": 2}


@dataclass(frozen=True)
class Operator:
    name: str
    role: str  # viewer, observer or operator
    session: str  # random id of this login (cookie) or connection (bearer)
    addr: str
    via: str  # cookie or bearer

    @property
    def login(self) -> str:
        """What budgets are kept by: the cookie session, or for a bearer token (a new
        login on every connection) the token's role and the client's address."""
        return self.session if self.via == "cookie" else f"bearer:{self.role}:{self.addr}"
