"""Which notification URLs may be used, and how one is shown.

`check_url` takes a URL only if: it holds no control character (CR, LF, NUL
...), raw or percent-encoded however many times; its scheme is on the
allowlist (`SCHEMES`) or named by NOTIFY_RAW_SCHEMES; no option names a local
file or a non-HTTP URL (`template=` must be http(s), and is fetched under the
same egress policy); redirects are not asked for; Apprise knows it; and the
hosts it names, as we and as Apprise parse them, pass the egress policy. The
real guarantee is the guard on the socket (alerts.egress); this check answers
early and plainly. Errors never echo the URL.

`mask` shows scheme, host (only where the host is a server, not a token),
port, the names of query keys and a keyed fingerprint of the whole URL;
never userinfo, path or values. `scrub` removes a URL's secrets from text.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import socket
from urllib.parse import unquote, urlsplit

from . import egress

# scheme -> what its host is: "http" a server of one's own (must resolve), "mail" a mail domain or
# server, "raw" a server spoken to over a raw socket, "service" a token of a cloud service.
SCHEMES = {
    **dict.fromkeys(("json", "jsons", "form", "forms", "xml", "xmls", "gotify", "gotifys", "matrix",
                     "matrixs", "mmost", "mmosts", "rocket", "rockets", "signal", "signals", "apprise",
                     "apprises", "ntfy", "ntfys"), "http"),
    **dict.fromkeys(("mailto", "mailtos"), "mail"),
    **dict.fromkeys(("slack", "discord", "tgram", "msteams", "pover", "pbul", "zulip", "workflow",
                     "workflows", "pagerduty", "opsgenie", "pushed", "gchat", "lametric", "join",
                     "simplepush", "pushsafer", "ifttt"), "service"),
}
RAW = {"irc": "raw", "ircs": "raw", "rsyslog": "raw", "syslog": "raw", "mqtt": "raw", "mqtts": "raw",
       "growl": "raw", "gntp": "raw", "smpp": "raw", "smpps": "raw", "xmpp": "raw", "xmpps": "raw"}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]{0,19})://")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_KEY = re.compile(r"^[A-Za-z0-9_.+-]{1,40}$")
_HOSTLIKE = re.compile(r"^[A-Za-z0-9.:-]{1,253}$")
_FALSE = {"no", "n", "false", "0", "off", "f", "never"}
_key = [secrets.token_bytes(32)]



def apprise():
    """The Apprise module, imported on first use: it costs about 19 MiB and 0.15 s per process,
    which a dashboard without notification channels never pays."""
    import apprise as module

    return module

def set_fingerprint_key(secret: str) -> None:
    """Key the fingerprints with the app's SECRET_KEY (the same in every process that shares it)."""
    _key[0] = hashlib.sha256(b"notification-url-fingerprint\0" + secret.encode()).digest()


def fingerprint(url: str) -> str:
    """A few hex characters that tell two URLs apart without saying anything about either."""
    return hmac.new(_key[0], url.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()[:8]


def scheme_of(url: str) -> str | None:
    m = _SCHEME.match(url)
    return m.group(1).lower() if m else None


def kind_of(scheme: str | None, raw_schemes=()) -> str | None:
    if scheme in SCHEMES:
        return SCHEMES[scheme]
    if scheme in raw_schemes:
        return RAW.get(scheme, "service")
    return None


def _decodings(text: str) -> list[str]:
    """text, and each percent-decoding of it until it stops changing."""
    out = [text]
    for _ in range(8):
        nxt = unquote(out[-1], errors="surrogateescape")
        if nxt == out[-1]:
            break
        out.append(nxt)
    return out


def _query(url: str) -> list[tuple[str, str]]:
    """(key, value) pairs of the query as text (raw, not decoded), '+' kept as typed."""
    query = url.split("?", 1)[1].split("#", 1)[0] if "?" in url else ""
    return [(p.split("=", 1)[0], p.split("=", 1)[1] if "=" in p else "") for p in query.split("&") if p]


def _check_options(url: str, parsed_qsd: dict) -> None:
    pairs = [(unquote(k).lstrip("+-:").lower(), v) for k, v in _query(url)]
    pairs += [(str(k).lstrip("+-:").lower(), str(v)) for k, v in (parsed_qsd or {}).items()]
    for key, value in pairs:
        final = _decodings(value)[-1].strip()
        low = final.lower()
        if key == "redirect" and low not in _FALSE:
            raise ValueError("redirects are never followed; leave out redirect=")
        if key == "template" and final and not (low.startswith("http://") or low.startswith("https://")):
            raise ValueError("a template= must be an http:// or https:// URL; local files are never read")
        if low.startswith("file:") or "file://" in low:
            raise ValueError("options may not name local files (file:)")
        inner = scheme_of(final)
        if inner is not None and inner not in ("http", "https"):
            raise ValueError(f"an option's URL must be http:// or https://, not {inner[:10]}://")


def _hosts(url: str, parsed: dict | None, plugin) -> list[tuple[str, int | None, bool]]:
    """(host, port, must resolve) for each host the URL names, as we and as Apprise read it."""
    out = []
    try:
        parts = urlsplit(url)
        if parts.hostname:
            out.append((parts.hostname, parts.port, False))
    except ValueError:
        pass
    for source in (parsed or {}, {"host": getattr(plugin, "host", None), "port": getattr(plugin, "port", None)}):
        if source.get("host"):
            out.append((str(source["host"]), source.get("port"), True))
    for key, value in (parsed or {}).get("qsd", {}).items():
        if str(key).lower() in ("smtp", "host", "server") and value:
            host, port = _split_host_port(str(value))
            out.append((host, port, True))
    return out


def _split_host_port(text: str) -> tuple[str, int | None]:
    m = re.match(r"^\[([^\]]+)\](?::(\d+))?$", text) or re.match(r"^([^:]+):(\d+)$", text)
    if m:
        return m.group(1), int(m.group(2)) if m.group(2) else None
    return text, None


def _check_host(host: str, port: int | None, must_resolve: bool, policy: egress.Policy) -> None:
    host = host.strip("[]")
    if not _HOSTLIKE.match(host.split("%", 1)[0]):
        if must_resolve:
            raise ValueError("the URL names a host that is not a valid name or address")
        return
    try:
        infos = socket.getaddrinfo(host, port or None, 0, socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        if must_resolve:
            raise ValueError("the URL's host does not resolve") from None
        return
    for info in infos:
        ip = egress.parse_ip(info[4][0])
        why = "an address that is not an IP" if ip is None else egress.refusal(ip, port, policy)
        if why:
            raise ValueError(f"refused: {why}")


def check_url(url: str, policy: egress.Policy | None = None, raw_schemes=()) -> str:
    """The URL if it may be used, else ValueError with the reason (never echoing the URL)."""
    policy = policy or egress.Policy()
    url = url.strip()
    if not url or len(url) > 2000:
        raise ValueError("a notification URL is 1 to 2000 characters")
    if any(_CONTROL.search(form) for form in _decodings(url)):
        raise ValueError("a notification URL may not hold control characters (CR, LF, NUL...), "
                         "percent-encoded or not")
    scheme = scheme_of(url)
    kind = kind_of(scheme, raw_schemes)
    if kind is None:
        hint = " (a raw-socket scheme: NOTIFY_RAW_SCHEMES must name it)" if scheme in RAW else ""
        raise ValueError(f"scheme {str(scheme)[:20]!r} is not allowed for notifications{hint}; "
                         "see docs/notifications.md for the list")
    from apprise.utils.parse import parse_url

    parsed = parse_url(url, verify_host=False) or {}
    _check_options(url, parsed.get("qsd") or {})
    with egress.confined(policy):  # nothing should connect while Apprise reads a URL; if it did, checked
        plugin = apprise().Apprise.instantiate(url)
    if plugin is None:
        raise ValueError(f"not a {scheme} URL Apprise can use; see the Apprise wiki for the URL of each service")
    if kind != "service":  # a service's "host" is a token: never looked up, never shown
        for host, port, must in _hosts(url, parsed, plugin):
            _check_host(host, port, must and kind in ("http", "raw"), policy)
    return url


def mask(url: str) -> str:
    """scheme://[***@]host[:port][/***][?key=***&...]#fp:<fingerprint>: never userinfo, path or values."""
    scheme = scheme_of(url)
    shown = f"{scheme or '?'}://"
    kind = SCHEMES.get(scheme) or RAW.get(scheme) or "service"
    try:
        parts = urlsplit(url.split("#", 1)[0])
        host, port = parts.hostname, parts.port
    except ValueError:
        parts, host, port = None, None, None
    if parts is not None and "@" in parts.netloc:
        shown += "***@"
    path = parts.path.strip("/") if parts is not None else ""
    show_host = kind in ("http", "mail", "raw") and not (scheme in ("ntfy", "ntfys") and not path)
    if show_host and host and _HOSTLIKE.match(host):
        shown += f"[{host}]" if ":" in host else host
        shown += f":{port}" if port else ""
    else:
        shown += "***"
    if path:
        shown += "/***"
    keys = [k if _KEY.match(k) else "?" for k, _v in _query(url)][:12]
    if keys:
        shown += "?" + "&".join(f"{k}=***" for k in keys)
    return f"{shown}#fp:{fingerprint(url)}"


_SPLIT = re.compile(r"[/:@?&=#,;+\s]+")


def secrets_of(url: str) -> set[str]:
    """The pieces of a URL that its masked form leaves out (tokens, passwords, header values)."""
    shown = set(_SPLIT.split(mask(url)))
    try:
        parts = urlsplit(url)
        pieces = set(_SPLIT.split(parts.netloc + "/" + parts.path))
    except ValueError:
        pieces = set(_SPLIT.split(url))
    for _key_, value in _query(url):
        pieces |= {value, unquote(value), *_SPLIT.split(value), *_SPLIT.split(unquote(value))}
    return {p for p in pieces if len(p) >= 3 and p not in shown and p.lower() != scheme_of(url)}


def scrub(text: str, urls) -> str:
    """text with every secret of the given URLs replaced by ***."""
    for url in urls:
        for secret in sorted(secrets_of(url), key=len, reverse=True):
            text = text.replace(secret, "***")
    return text


def mask_line(line: str) -> str:
    """A command line with each URL in it masked (for the audit log)."""
    return " ".join(mask(w.strip("'\"")) if "://" in w else w for w in line.split(" "))
