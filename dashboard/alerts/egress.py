"""Where a notification may connect: one policy, enforced on the socket it opens.

A notification URL is read by Apprise, whose parser is not ours, and may lead
to further connections (redirects, `template=` fetches). So the check is made
where the connection is made: inside `confined(policy)` every IP socket's
`connect`, `connect_ex` and `sendto` resolves its destination once, checks
each address with `refusal`, and connects to the very address it checked (an
IP literal: no second lookup). Outside that mark (the app's own Redis, its
clients) nothing changes. The mark is a context variable: each greenlet has
its own, and Apprise copies it into any worker it hands a send to.

Refused always: link-local (169.254/16, fe80::/10), cloud metadata
(169.254.169.254, fd00:ec2::254, 100.100.100.200, also inside IPv4-mapped,
-compatible, NAT64 and 6to4 IPv6 forms), unspecified, multicast, broadcast,
reserved, the networks of NOTIFY_DENY_NETWORKS, and the Redis the app uses.
Loopback and private addresses only while `allow_private` holds.
"""

from __future__ import annotations

import contextvars
import ipaddress
import socket
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
METADATA = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200"))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_BROADCAST = ipaddress.ip_address("255.255.255.255")


@dataclass(frozen=True)
class Policy:
    allow_private: bool = True
    deny: tuple = ()  # ip_network objects, refused besides the built-in ones
    redis: frozenset = frozenset()  # (ip text, port) of the app's Redis
    redis_local_ports: frozenset = frozenset()  # Redis listens on this host: these ports on any own address
    own_addresses: frozenset = frozenset()  # this host's interface addresses (text)


class Refused(ConnectionRefusedError):
    """A connection the notification egress policy does not allow."""


# ---- the policy: plain functions of data --------------------------------------------


def parse_ip(text: str) -> IP | None:
    """An address from a socket address's host part (brackets and a zone id dropped), or None."""
    try:
        return ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def embedded_v4(ip: IP) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4), if any."""
    if ip.version == 4:
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if int(ip) >> 32 == 0 and int(ip) > 1:  # ::a.b.c.d (deprecated "compatible" form)
        return ipaddress.IPv4Address(int(ip))
    return None


def _always_refused(ip: IP) -> str | None:
    if ip in METADATA:
        return "a cloud metadata address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_unspecified or (ip.version == 4 and ip in ipaddress.ip_network("0.0.0.0/8")):
        return "an unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if ip == _BROADCAST:
        return "the broadcast address"
    return None


def refusal(ip: IP, port: int | None, policy: Policy) -> str | None:
    """Why a notification may not connect to ip:port, or None if it may. An IPv6 address that
    carries an IPv4 one is judged by both (and by the IPv4 one for what is private or reserved)."""
    v4 = embedded_v4(ip)
    forms = [ip] if v4 is None else [ip, v4]
    effective = forms[-1]
    for addr in forms:
        why = _always_refused(addr)
        if why:
            return f"{ip} is {why}"
    if effective.is_reserved and not effective.is_loopback:
        return f"{ip} is a reserved address"
    for addr in forms:
        for net in policy.deny:
            if addr.version == net.version and addr in net:
                return f"{ip} is in NOTIFY_DENY_NETWORKS ({net})"
        if port is not None and (str(addr), port) in policy.redis:
            return f"{ip} port {port} is the app's own Redis"
        local = addr.is_loopback or str(addr) in policy.own_addresses
        if port is not None and local and port in policy.redis_local_ports:
            return f"{ip} port {port} is the app's own Redis (on this host)"
    if not policy.allow_private and (effective.is_loopback or effective.is_private or not effective.is_global):
        return f"{ip} is a loopback or private address (NOTIFY_ALLOW_PRIVATE=0)"
    return None


def redis_endpoints(url: str, resolve) -> set[tuple[str, int]]:
    """(address, port) of each address REDIS_URL's host resolves to; resolve is getaddrinfo-like."""
    if not url:
        return set()
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return set()
    try:
        host, port = parts.hostname or "localhost", parts.port or 6379
    except ValueError:
        return set()
    try:
        infos = resolve(host, port, 0, socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return set()
    return {(str(parse_ip(info[4][0])), port) for info in infos if parse_ip(info[4][0]) is not None}


def make_policy(*, allow_private: bool = True, deny=(), forbid_redis: str = "", resolve=socket.getaddrinfo,
                own_addresses=()) -> Policy:
    """The policy of these settings: Redis resolved now; a Redis on this host has its port refused on
    every loopback and own address (it listens on them too, whatever REDIS_URL names)."""
    own = frozenset(str(a) for a in own_addresses)
    redis = redis_endpoints(forbid_redis, resolve)
    local_ports = {port for ip, port in redis
                   if ipaddress.ip_address(ip).is_loopback or ipaddress.ip_address(ip).is_unspecified or ip in own}
    nets = tuple(d if isinstance(d, (ipaddress.IPv4Network, ipaddress.IPv6Network))
                 else ipaddress.ip_network(d, strict=False) for d in deny)
    return Policy(allow_private, nets, frozenset(redis), frozenset(local_ports), own)


def own_addresses() -> set[str]:
    """This host's interface addresses."""
    import psutil

    out = set()
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family in (socket.AF_INET, socket.AF_INET6) and parse_ip(a.address) is not None:
                out.add(str(parse_ip(a.address)))
    return out


# ---- the guard on the socket ----------------------------------------------------------


@dataclass
class Confinement:
    policy: Policy
    refused: list = field(default_factory=list)  # the reasons, for the delivery's error


_ACTIVE: contextvars.ContextVar[Confinement | None] = contextvars.ContextVar("notification_egress", default=None)


def checked(family: int, type_: int, address, confinement: Confinement):
    """The address to really connect to: the first allowed one its host resolves to (once)."""
    if family not in (socket.AF_INET, socket.AF_INET6):
        raise _refuse(confinement, "notifications connect over IP only")
    host, port = address[0], address[1]
    try:
        infos = socket.getaddrinfo(host, port, family, type_)
    except socket.gaierror as exc:
        raise Refused(f"cannot resolve the host ({exc.strerror})") from None
    first = None
    for info in infos:
        sockaddr = info[4]
        ip = parse_ip(sockaddr[0])
        why = "an address that is not an IP" if ip is None else refusal(ip, port, confinement.policy)
        if why is None:
            return sockaddr if len(address) <= 2 else (sockaddr[0], sockaddr[1], *address[2:])
        first = first or why
    raise _refuse(confinement, first or "the host has no address")


def _refuse(confinement: Confinement, why: str) -> Refused:
    confinement.refused.append(why)
    return Refused(f"refused by the notification egress policy: {why}")


def _guarded(original, address_at: int):
    def method(self, *args):
        confinement = _ACTIVE.get()
        if confinement is not None and len(args) > address_at:
            args = list(args)
            args[address_at] = checked(self.family, self.type, args[address_at], confinement)
        return original(self, *args)

    method.__egress_original__ = original
    return method


def _socket_classes() -> set:
    classes = {socket.socket}
    try:
        from gevent import monkey
        from gevent import socket as gsocket
    except ImportError:
        return classes
    return classes | {monkey.get_original("socket", "socket"), gsocket.socket}


def install() -> None:
    """Wrap connect, connect_ex and sendto of the socket classes in use (std and gevent's); idempotent."""
    for cls in _socket_classes():
        for name, at in (("connect", 0), ("connect_ex", 0)):
            current = getattr(cls, name)
            if not hasattr(current, "__egress_original__"):
                setattr(cls, name, _guarded(current, at))
        current = cls.sendto
        if not hasattr(current, "__egress_original__"):
            def sendto(self, data, *rest, _original=current):
                confinement = _ACTIVE.get()
                if confinement is not None and rest:
                    rest = (*rest[:-1], checked(self.family, self.type, rest[-1], confinement))
                return _original(self, data, *rest)

            sendto.__egress_original__ = current
            cls.sendto = sendto


@contextmanager
def confined(policy: Policy):
    """Every IP connection made in this context (and in workers that copy it) obeys policy."""
    install()
    confinement = Confinement(policy)
    token = _ACTIVE.set(confinement)
    try:
        yield confinement
    finally:
        _ACTIVE.reset(token)
