"""The console's answers to slips: typos get the right suggestion, rules that could never fire are
refused, and asking for nothing to be done says so rather than naming a missing stream."""

import json

import pytest

from dashboard.console import commands
from dashboard.console.commands import CommandError, Context
from dashboard.console.operator import Operator


@pytest.fixture
def ctx(svc):
    svc.sampler.tick()
    return Context(Operator("alice", "operator", "sess-1", "127.0.0.1", "cookie"), svc.ops, connection="c1")


def run(ctx, line):
    cmd, values = commands.resolve(line, ctx.operator)
    return json.loads(json.dumps(commands.run(ctx, cmd, values)))


def fails(ctx, line, code):
    with pytest.raises(CommandError) as err:
        run(ctx, line)
    assert err.value.code == code, (err.value.code, err.value.message)
    return err.value


@pytest.mark.parametrize("line, meant", [
    ("alrt list", ["alert list"]),
    ("alert lst", ["alert list"]),
    ("notfy tset", ["notify test"]),
    ("silnce list", ["silence list"]),
    ("silnce a1 1h", ["silence"]),
    ("prco 12", ["proc"]),
    ("stauts", ["status"]),
])
def test_a_typo_suggests_the_command_meant(ctx, line, meant):
    err = fails(ctx, line, "unknown_command")
    assert err.extra["suggestions"] == meant, err.message
    assert f"did you mean {meant[0]!r}?" in err.message


def test_a_family_with_an_unknown_subcommand_lists_them_all(ctx):
    err = fails(ctx, "alert frobnicate", "unknown_command")
    assert err.extra["suggestions"] == ["alert clear", "alert history", "alert list", "alert set"]
    assert fails(ctx, "xyzzy", "unknown_command").extra["suggestions"] == []


def test_misspelt_options_and_choices_suggest_the_right_one(ctx):
    assert "did you mean --sort?" in fails(ctx, "top 5 --srot mem", "bad_args").message
    assert "did you mean 'mem'?" in fails(ctx, "top 5 --sort memm", "bad_args").message
    assert "did you mean 'sse'?" in fails(ctx, "drop sed all", "bad_args").message


@pytest.mark.parametrize("line", [
    "alert set cpu > 1000", "alert set memory >= 101", "alert set cpu > 100", "alert set disk:/ > 150",
    "alert set load1 < 0", "alert set net_rx > -5", "alert set swap <= -1",
])
def test_rules_that_could_never_fire_are_refused(ctx, line):
    assert "could never fire" in fails(ctx, line, "bad_args").message


def test_a_disk_rule_must_name_a_mount_a_host_reports(ctx):
    err = fails(ctx, "alert set disk:/nosuch > 1", "bad_args")
    assert "'/nosuch'" in err.message and "mounts: " in err.message and "/" in err.message
    assert run(ctx, "alert set disk:/ > 90")["metric"] == "disk:/"
    assert run(ctx, "alert set cpu >= 100")["threshold"] == 100
    assert run(ctx, "alert set load1 > 0")["op"] == ">"


def test_drop_all_with_nothing_open_says_so(ctx):
    assert run(ctx, "drop sse all") == {"dropped": 0, "kind": "sse", "note": "no event stream is open"}
    assert "no event stream named 'web-7'" in fails(ctx, "drop sse web-7", "not_found").message
