"""Where state lives, whether it lasts, and the one warning at start when it will not."""

import json

from dashboard import settings, state_place

CFG = {**settings.defaults(), "DATA_DIR": "/dashboard-data-that-is-not-there"}  # on / itself


def test_without_a_platform_the_disk_is_taken_to_last():
    place = state_place.describe(CFG, {})
    assert place["lasts"] and place["platform"] is None and state_place.warning(place) is None


def test_on_heroku_only_redis_or_the_setting_makes_state_last():
    heroku = {"DYNO": "web.1"}
    place = state_place.describe(CFG, heroku)
    assert (place["platform"], place["store"], place["lasts"]) == ("Heroku", "disk", False)
    line = state_place.warning(place)
    assert line.startswith("state will not last: on Heroku without REDIS_URL") and "\n" not in line
    # Heroku has no volumes: another device does not count there.
    assert not state_place.describe({**CFG, "DATA_DIR": "/proc/dashboard"}, heroku)["lasts"]
    assert state_place.describe({**CFG, "REDIS_URL": "redis://127.0.0.1:1"}, heroku)["store"] == "redis"
    assert state_place.warning(state_place.describe({**CFG, "REDIS_URL": "redis://127.0.0.1:1"}, heroku)) is None
    assert state_place.warning(state_place.describe({**CFG, "DATA_DIR_LASTS": "1"}, heroku)) is None


def test_elsewhere_a_mounted_volume_is_recognised_by_its_device():
    for var, name in (("RENDER", "Render"), ("FLY_APP_NAME", "Fly.io"), ("RAILWAY_ENVIRONMENT", "Railway")):
        on_root = state_place.describe(CFG, {var: "x"})
        assert (on_root["platform"], on_root["lasts"]) == (name, False)
        volume = state_place.describe({**CFG, "DATA_DIR": "/proc/dashboard"}, {var: "x"})  # another device
        assert volume["lasts"] and "another device" in volume["why"]
        assert not state_place.describe({**CFG, "DATA_DIR": "/proc/dashboard", "DATA_DIR_LASTS": "0"},
                                        {var: "x"})["lasts"]


def _warnings(server) -> list[str]:
    return [json.loads(line)["msg"] for line in server.log().splitlines() if "state will not last" in line]


def test_the_warning_appears_exactly_when_state_will_not_last(start_server):
    wiped = start_server({"DYNO": "web.1"}, name="wiped")
    assert len(_warnings(wiped)) == 1
    status, body = wiped.get("/healthz?details=1")
    assert status == 200 and body["state"]["lasts"] is False and body["state"]["platform"] == "Heroku"
    assert body["state"]["path"] == wiped.env["DATA_DIR"]
    assert "state" not in wiped.get("/healthz")[1]  # only on request
    kept = start_server({"DYNO": "web.1", "DATA_DIR_LASTS": "1"}, name="kept")
    assert _warnings(kept) == []
    assert kept.get("/healthz?details=1")[1]["state"]["lasts"] is True
    plain = start_server({}, name="plain")
    assert _warnings(plain) == []
