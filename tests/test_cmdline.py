import pytest

from dashboard.console import cmdline
from dashboard.console.cmdline import Arg, ArgError, Opt


def test_split_follows_shell_quoting_without_running_anything():
    assert cmdline.split('broadcast "two words" and\\ more') == ["broadcast", "two words", "and more"]
    assert cmdline.split("ps 'a;b' $(rm -rf /) `x` #no-comment") == ["ps", "a;b", "$(rm", "-rf", "/)", "`x`", "#no-comment"]
    with pytest.raises(ArgError, match="closing quotation"):
        cmdline.split('top "5')


SPEC = (
    Arg("n", cmdline.integer(1, 100), required=False),
    Opt("sort", cmdline.choice("cpu", "mem"), "cpu"),
)


def test_positionals_options_and_defaults():
    assert cmdline.parse(SPEC, []) == {"n": None, "sort": "cpu"}
    assert cmdline.parse(SPEC, ["5", "--sort", "mem"]) == {"n": 5, "sort": "mem"}
    assert cmdline.parse(SPEC, ["--sort=MEM", "7"]) == {"n": 7, "sort": "mem"}


@pytest.mark.parametrize(
    "words, message",
    [
        (["0"], "n: must be between 1 and 100"),
        (["five"], "n: expected a whole number"),
        (["5", "6"], "unexpected argument '6'"),
        (["--sort"], "--sort needs a value"),
        (["--sort", "disk"], "sort: must be one of cpu, mem"),
        (["--limit", "3"], "unknown option --limit"),
    ],
)
def test_errors_say_which_argument_and_why(words, message):
    with pytest.raises(ArgError) as err:
        cmdline.parse(SPEC, words)
    assert message in str(err.value)


def test_required_rest_and_double_dash():
    spec = (Arg("metric"), Arg("value", cmdline.number()))
    with pytest.raises(ArgError, match="missing <value>"):
        cmdline.parse(spec, ["cpu"])
    assert cmdline.parse(spec, ["cpu", "--", "-5"]) == {"metric": "cpu", "value": -5.0}
    rest = (Arg("message", cmdline.text(10), rest=True),)
    assert cmdline.parse(rest, ["a", "b"]) == {"message": "a b"}
    with pytest.raises(ArgError, match="at most 10"):
        cmdline.parse(rest, ["x" * 11])


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "1e999"])
def test_numbers_must_be_finite(bad):
    with pytest.raises(ValueError):
        cmdline.number()(bad)


def test_usage_text():
    assert cmdline.usage("top", SPEC) == "top [<n>] [--sort <value>]"
