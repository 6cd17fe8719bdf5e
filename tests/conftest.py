import os
import shutil
from pathlib import Path

import pytest

from dashboard import create_app
from tests.support.server import Server

TOKEN = "operator-token-for-tests"
OBSERVER = "observer-token-for-tests"
VIEWER = "viewer-token-for-tests"
METRICS = "metrics-token-for-tests"
ALICE = "alice-operator-token-1"  # a named operator token (OPERATOR_TOKENS)
BEARER = {"Authorization": f"Bearer {TOKEN}"}


# bin/run's home: a test that left its secrets here would hand a later bin/run
# a token it never printed (it reuses what it finds, so no login link).
CHECKOUT_VAR = Path(__file__).resolve().parent.parent / "var"
VAR_AT_START = CHECKOUT_VAR.exists()


@pytest.fixture(autouse=True)
def checkout_stays_clean(request):
    """Every test writes under its tmp_path, never into the checkout's var/."""
    yield
    if not VAR_AT_START and CHECKOUT_VAR.exists():
        found = sorted(os.listdir(CHECKOUT_VAR))
        shutil.rmtree(CHECKOUT_VAR, ignore_errors=True)  # so the next culprit is named too
        pytest.fail(f"the checkout's var/ appeared during {request.node.nodeid} "
                    f"(or a test running beside it): {found}")


@pytest.fixture
def app(tmp_path):
    app = create_app(
        {
            "TESTING": True,
            "HEARTBEAT_SECONDS": 0.2,
            "OPERATOR_TOKEN": TOKEN,
            "OBSERVER_TOKEN": OBSERVER,
            "VIEWER_TOKEN": VIEWER,
            "METRICS_TOKEN": METRICS,
            "OPERATOR_TOKENS": (("alice", ALICE),),
            "SECRET_KEY": "test-secret-key-of-length",
            "AUDIT_DB": str(tmp_path / "audit.sqlite3"),
            "DATA_DIR": str(tmp_path / "data"),
            # The test client never closes a response whose body a test did not
            # read, so the per-address budget would count it open for ever.
            "MAX_CONNECTIONS_PER_CLIENT": 1_000_000,
        }
    )
    yield app
    app.extensions["dashboard"].shutdown("test finished")


@pytest.fixture
def client(app):
    """A script logged in as the operator (a bearer token on every request)."""
    c = app.test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = BEARER["Authorization"]
    return c


@pytest.fixture
def anon(app):
    """A visitor who has not logged in."""
    return app.test_client()


@pytest.fixture
def svc(app):
    return app.extensions["dashboard"]


@pytest.fixture
def start_server(tmp_path, request):
    """Start the real app (gunicorn + gevent) on a free loopback port.

    After the test, the server's log must hold no traceback: an error that a
    client never saw is still an error (mark a test `tracebacks_expected` when
    it provokes them on purpose)."""
    servers: list[Server] = []
    request.node.live_servers = servers  # redis_server stops these before Redis (see there)

    def start(env: dict | None = None, wait: bool = True, **kwargs) -> Server:
        server = Server(tmp_path, env, **kwargs)
        servers.append(server)
        return server.start(wait=wait)

    yield start
    for server in servers:
        server.kill()
    if not request.node.get_closest_marker("tracebacks_expected"):
        for server in servers:
            log = server.log()
            at = log.find("Traceback")
            assert at < 0, log[max(0, at - 1500):at + 3000]  # the traceback with what led to it


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """Headless Chromium (Debian's), with its own temporary HOME."""
    from playwright.sync_api import sync_playwright

    from tests.support.browser import launch

    home = str(tmp_path_factory.mktemp("chromium-home"))
    with sync_playwright() as pw:
        b = launch(pw, home)
        yield _TestBrowser(b)
        b.close()


class _TestBrowser:
    """Chromium whose contexts let the test's own helpers run under the page's CSP.

    Playwright's wait_for_function evaluates its predicate with eval, which the
    page's Content-Security-Policy (rightly) forbids. tests/test_access_live.py
    checks the page under the real policy, with bypass_csp=False."""

    def __init__(self, browser) -> None:
        self._browser = browser

    def new_context(self, **kwargs):
        kwargs.setdefault("bypass_csp", True)
        context = self._browser.new_context(**kwargs)
        # Waits without a timeout of their own get a minute: a page load on a busy 2-core
        # machine running three test processes (and their Chromiums) can take many seconds.
        context.set_default_timeout(60_000)
        return context

    def __getattr__(self, name):
        return getattr(self._browser, name)


@pytest.fixture
def page_errors():
    """Collects console errors and page exceptions of pages passed to watch()."""
    errors: list[str] = []

    def watch(page):
        # A request Chromium cut because an interface came or went on the machine (a test
        # container's veth) is the machine's doing, not the page's: see open_with_login_link.
        page.on("console", lambda m: m.type == "error" and "ERR_NETWORK_CHANGED" not in m.text
                and errors.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
        return page

    watch.errors = errors
    return watch


@pytest.fixture
def redis_server(tmp_path, request):
    """A fresh redis-server on a free loopback port (persistence off), stopped by pid."""
    from tests.support.redis_server import RedisServer

    server = RedisServer(tmp_path / "redis").start()
    yield server
    # The app's servers go first: a server left running after Redis stops would
    # log the outage, which is not what the test was about.
    for app_server in getattr(request.node, "live_servers", []):
        app_server.kill()
    server.stop()


@pytest.fixture
def store(redis_server):
    from dashboard.store.redis_store import RedisStore

    s = RedisStore(redis_server.url, "test", history_seconds=60)
    yield s
    s.close()


# ---- the fast part: `bin/test -m "not live"` -------------------------------------------------------

_REAL_PARTS = {"start_server", "redis_server", "store", "browser", "children"}


def pytest_collection_modifyitems(config, items):
    """Mark what runs real parts: `live` (servers, processes, browsers), and `browser` too for Chromium.

    By fixture and by file, so a new test is marked without anyone remembering to:
    a test that starts gunicorn, redis-server, Chromium or child processes, or
    lives in a *_live.py / *_browser.py file or the benchmark's smoke test."""
    for item in items:
        name = item.path.name
        fixtures = set(getattr(item, "fixturenames", ()))
        browser = name.endswith("_browser.py") or "browser" in fixtures
        if browser or fixtures & _REAL_PARTS or name.endswith("_live.py") or name == "test_bench_smoke.py":
            item.add_marker(pytest.mark.live)
        if browser:
            item.add_marker(pytest.mark.browser)
