"""The fleet at a glance on a real redis-server: three agents and a web process."""

import json
import os
import signal
import subprocess
import sys

import redis

from tests.support.server import REPO
from tests.support.sseclient import SSEClient
from tests.support.waiting import eventually
from tests.support.wsclient import Console

AGENTS = ("web-a", "web-b", "db-1")


def start_agents(redis_server, tmp_path, names=AGENTS):
    env = {**os.environ, "REDIS_URL": redis_server.url, "SAMPLE_INTERVAL": "0.5", "SAMPLER_LEASE_SECONDS": "2",
           "PYTHONUNBUFFERED": "1"}
    agents = {}
    for name in names:
        log = open(tmp_path / f"agent-{name}.log", "wb")
        agents[name] = subprocess.Popen([sys.executable, "-m", "dashboard.agent", "--host-name", name],
                                        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
    return agents


def stop_agents(agents):
    for agent in agents.values():
        agent.kill()
        agent.wait(10)


def web_env(redis_server, **extra):
    return {"REDIS_URL": redis_server.url, "SECRET_KEY": "shared-secret-key-of-dynos", "SAMPLE_INTERVAL": "0.5",
            "SAMPLER_LEASE_SECONDS": "2", "HOST_STALE_SECONDS": "3", "HOST_NAME": "front", **extra}


def fleet_state(viewer) -> dict:
    """Every host as the stream's events built it up (each carries only what changed)."""
    state: dict = {}
    for event in viewer.events_of("fleet"):
        for name, fields in event.json["hosts"].items():
            state.setdefault(name, {}).update(fields)
    return state


def test_the_fleet_stream_lists_every_agent_live_and_marks_a_stopped_one_stale(start_server, redis_server,
                                                                                tmp_path):
    server = start_server(web_env(redis_server))
    agents = start_agents(redis_server, tmp_path)
    try:
        def all_up():
            _, body = server.get("/api/fleet")
            hosts = body["hosts"]
            return body if all(hosts.get(n, {}).get("state") == "up" and hosts[n].get("cpu") is not None
                               for n in AGENTS + ("front",)) else None

        body = eventually(all_up, 30, 0.2)
        for name in AGENTS:
            summary = body["hosts"][name]
            assert summary["name"] == name
            assert 0 <= summary["cpu"] <= 100 and 0 < summary["mem"] <= 100 and 0 < summary["disk"] <= 100
            assert summary["load"] >= 0 and summary["rx"] >= 0 and summary["tx"] >= 0
            assert len(summary["spark"]) == 30
        with SSEClient(server.port, path=f"/fleet/events?last_event_id={body['last_event_id']}") as viewer:
            assert viewer.status == 200
            # Live figures keep coming for every agent, each event only what changed.
            assert viewer.wait_for(lambda c: all(
                sum(1 for e in c.events_of("fleet") if n in e.json["hosts"]) >= 3 for n in AGENTS), 20)
            assert not any("name" in fields for e in viewer.events_of("fleet")
                           for fields in e.json["hosts"].values())  # known already: not sent again
            ids = [e.last_event_id for e in viewer.events_of("fleet")]
            assert len(set(ids)) == len(ids)
            agents["db-1"].send_signal(signal.SIGKILL)
            assert viewer.wait_for(lambda c: fleet_state(c).get("db-1", {}).get("state") == "stale", 15)
            assert fleet_state(viewer)["web-a"].get("state", "up") == "up"
            resume_from = viewer.events_of("fleet")[-1].last_event_id
        assert server.get("/api/fleet")[1]["hosts"]["db-1"]["state"] == "stale"
        # Resumable: after the last id seen, only later events come.
        with SSEClient(server.port, path="/fleet/events", headers={"Last-Event-ID": resume_from}) as again:
            again.read_events(1, type="fleet", timeout=10)
            assert not again.events_of("resync")
            assert all(e.last_event_id > resume_from for e in again.events_of("fleet"))
    finally:
        stop_agents(agents)


def test_a_broadcast_is_one_write_and_a_rule_on_a_set_fires_there_only(start_server, redis_server, tmp_path):
    server = start_server(web_env(redis_server))
    agents = start_agents(redis_server, tmp_path)
    r = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        eventually(lambda: set(AGENTS) <= set(r.hgetall("dash:fleet")), 30, 0.2)
        viewers = {name: SSEClient(server.port, path=f"/events?host={name}") for name in ("front",) + AGENTS}
        for v in viewers.values():
            v.read_events(1)
        op = Console(server.port)
        with r.monitor() as monitor:
            op.ok("broadcast one write for the whole fleet")
            writes = []
            for command in monitor.listen():
                text = command["command"]
                if text.upper().startswith("XADD") and " t notice " in text and "one write for the whole" in text:
                    writes.append(text)
                if text.upper().startswith("PUBLISH") and "one write for the whole fleet" in text:
                    break  # the push to consoles comes right after the event
        assert len(writes) == 1 and writes[0].split()[1] == "dash:events"
        for name, v in viewers.items():
            notices = v.read_events(1, type="notice")
            assert notices[0].json["message"] == "one write for the whole fleet", name
        for v in viewers.values():
            v.close()
        # What comes after the notice in each host's stream has a later id (merged in order).
        for name, v in viewers.items():
            kinds = [(e.type, e.last_event_id) for e in v.parser.events if e.type in ("metrics", "notice")]
            keys = [tuple(map(int, i.split("-"))) for _, i in kinds]
            assert keys == sorted(keys) and len(set(keys)) == len(keys), name
        assert json.loads(r.xrange("dash:events")[-1][1]["d"])["message"] == "one write for the whole fleet"
        # A rule on a set of hosts fires on those only, and the fleet shows where.
        rule = op.ok("alert set cpu >= 0 --host 'web-*'")
        assert rule["hosts"] == "web-*"

        def firing_on():
            row = next(row for row in op.ok("alert list")["rows"] if row[0] == rule["id"])
            return row if row[3] == "web-a, web-b" else None

        row = eventually(firing_on, 30, 0.2)
        assert row[1] == "cpu >= 0 on web-*" and row[6] == "web-*"
        assert set(row[4]) == {"web-a", "web-b"}  # evaluated where it applies, nowhere else
        hosts = eventually(lambda: (lambda h: h if h["web-a"]["state"] == h["web-b"]["state"] == "alerts" else None)(
            server.get("/api/fleet")[1]["hosts"]), 15, 0.2)
        assert hosts["db-1"]["state"] == "up" and hosts["front"]["state"] == "up"
    finally:
        stop_agents(agents)
