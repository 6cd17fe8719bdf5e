import pytest

from dashboard import create_app
from tests.support.server import Server

TOKEN = "operator-token-for-tests"
OBSERVER = "observer-token-for-tests"


@pytest.fixture
def app(tmp_path):
    app = create_app(
        {
            "TESTING": True,
            "HEARTBEAT_SECONDS": 0.2,
            "OPERATOR_TOKEN": TOKEN,
            "OBSERVER_TOKEN": OBSERVER,
            "SECRET_KEY": "test-secret",
            "AUDIT_DB": str(tmp_path / "audit.sqlite3"),
            "DATA_DIR": str(tmp_path / "data"),
        }
    )
    yield app
    app.extensions["dashboard"].shutdown("test finished")


@pytest.fixture
def client(app):
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

    def start(env: dict | None = None, wait: bool = True, **kwargs) -> Server:
        server = Server(tmp_path, env, **kwargs)
        servers.append(server)
        return server.start(wait=wait)

    yield start
    for server in servers:
        server.kill()
    if not request.node.get_closest_marker("tracebacks_expected"):
        for server in servers:
            assert "Traceback" not in server.log(), server.log()[-3000:]


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """Headless Chromium (Debian's), with its own temporary HOME."""
    from playwright.sync_api import sync_playwright

    from tests.support.browser import launch

    home = str(tmp_path_factory.mktemp("chromium-home"))
    with sync_playwright() as pw:
        b = launch(pw, home)
        yield b
        b.close()


@pytest.fixture
def page_errors():
    """Collects console errors and page exceptions of pages passed to watch()."""
    errors: list[str] = []

    def watch(page):
        page.on("console", lambda m: m.type == "error" and errors.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
        return page

    watch.errors = errors
    return watch


@pytest.fixture
def redis_server(tmp_path):
    """A fresh redis-server on a free loopback port (persistence off), stopped by pid."""
    from tests.support.redis_server import RedisServer

    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def store(redis_server):
    from dashboard.store.redis_store import RedisStore

    s = RedisStore(redis_server.url, "test", history_seconds=60)
    yield s
    s.close()
