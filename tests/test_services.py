"""A process's services start in order and stop in reverse, each stop tried once."""

from __future__ import annotations

from dashboard.control.services import Services, Step, Task


def test_services_start_in_order_and_stop_in_reverse_even_past_a_failing_stop(caplog):
    seen = []

    def broken():
        seen.append("stop b")
        raise OSError("disk full")

    services = Services([Step("a", lambda: seen.append("start a"), lambda: seen.append("stop a")),
                         Step("b", lambda: seen.append("start b"), broken),
                         Step("c", stop=lambda: seen.append("stop c"))])
    services.start()
    assert services.stop() is True and services.stopping
    assert seen == ["start a", "start b", "stop c", "stop b", "stop a"]
    assert "could not stop b cleanly: disk full" in caplog.text
    assert services.stop() is False and seen[-1] == "stop a"  # once only


def test_a_task_runs_its_loop_in_a_greenlet_until_stopped():
    import gevent

    ticks = []

    def loop():
        while True:
            ticks.append(1)
            gevent.sleep(0.01)

    task = Task("loop", loop)
    task.start()
    while len(ticks) < 3:
        gevent.sleep(0.01)
    task.stop()
    task.greenlet.join(timeout=10)
    assert task.greenlet.dead


def test_the_web_process_stops_the_body_guard_first_and_the_lasting_store_last(svc):
    assert svc.services.names() == [
        "lasting history", "process table", "shared state (this process)", "heartbeats", "fleet board", "notifier",
        "audit upkeep", "audit summary", "audit summary flush", "request bodies"]
