"""How a server's workers left after a signal, as the server's own log tells it.

An exit's wall time proves little on a busy machine: under load a clean exit can
take as long as the bound a test would set. The ways a worker fails to leave by
itself leave lines in gunicorn's log whatever the load, so tests check those and
bound the time only loosely, against the failure mode (the drain, the graceful
timeout), not against the normal exit.
"""

from __future__ import annotations

# Each means a worker did not leave by itself: it was held until a timeout, then cut or killed.
GAVE_UP = (
    "Worker graceful timeout",  # gunicorn's gevent worker: requests still open at graceful_timeout, cut
    "(graceful_timeout)",  # dashboard.serving.Worker: streams or stores not closed by graceful_timeout
    "was sent SIGKILL",  # the master killed a worker (graceful_timeout over, or a WORKER TIMEOUT)
    "WORKER TIMEOUT",  # the master found a worker unresponsive
    "exited with code",  # a worker that failed on its way out
)


def exited(pid: int) -> str:
    """The line a worker logs itself as it exits (gunicorn's arbiter, in the worker): a killed one never does."""
    return f"Worker exiting (pid: {pid})"


def assert_left_by_themselves(server, pids) -> None:
    """Each worker in pids logged its own exit, and no worker was cut or killed at a timeout."""
    log = server.log()
    for line in GAVE_UP:
        at = log.find(line)
        assert at < 0, f"a worker did not leave by itself ({line!r}):\n{log[max(0, at - 1500):at + 500]}"
    missing = [pid for pid in pids if exited(pid) not in log]
    assert not missing, f"workers {missing} never said they were exiting:\n{log[-3000:]}"
