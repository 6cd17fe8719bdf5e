import re
from pathlib import Path

import pytest

from dashboard import create_app

from dashboard import settings

SETTINGS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "settings.md"


def test_defaults_are_valid_for_their_own_parsers():
    for s in settings.SETTINGS:
        if isinstance(s.default, (int, float)) and not isinstance(s.default, bool):
            assert s.parse(str(s.default)) == s.default, s.name


def test_environment_overrides_defaults_and_test_config_overrides_both(monkeypatch, tmp_path):
    monkeypatch.setenv("SAMPLE_INTERVAL", "2.5")
    monkeypatch.setenv("TOP_PROCESSES", "7")
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "from-env"))
    app = create_app({"TOP_PROCESSES": 3, "DATA_DIR": str(tmp_path / "data")})
    try:
        assert app.config["SAMPLE_INTERVAL"] == 2.5
        assert app.config["TOP_PROCESSES"] == 3
        assert app.config["HISTORY_SECONDS"] == 3600
        assert app.config["DATA_DIR"] == str(tmp_path / "data")
        assert (tmp_path / "data" / "secrets.json").exists() and not (tmp_path / "from-env").exists()
    finally:
        app.extensions["dashboard"].shutdown("test finished")


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("SAMPLE_INTERVAL", "0.1", "between 0.25 and 60"),
        ("SAMPLE_INTERVAL", "fast", "must be a number between 0.25 and 60"),
        ("PORT", "70000", "between 1 and 65535"),
        ("HISTORY_SECONDS", "-5", "between"),
    ],
)
def test_bad_values_name_the_setting(name, value, message):
    with pytest.raises(settings.SettingError) as err:
        settings.load({name: value})
    assert str(err.value).startswith(f"{name}='{value}'")
    assert message in str(err.value)


def test_unknown_environment_variables_are_ignored():
    assert settings.load({"NOT_A_SETTING": "x"}) == settings.defaults()


def test_the_settings_page_documents_every_setting():
    # The page is generated from settings.SETTINGS (python -m docsgen) and
    # tests/test_docs_site.py fails when it is stale; this checks the committed
    # page itself, so a generator that drops or invents a row fails by name.
    text = SETTINGS_PAGE.read_text()
    table = {m.group(1) for m in re.finditer(r"^\| `([A-Z_]+)` \|", text, re.M)}
    missing = [s.name for s in settings.SETTINGS if s.name not in table]
    assert not missing, f"docs/settings.md lacks: {missing}"
    stale = table - {s.name for s in settings.SETTINGS}
    assert not stale, f"docs/settings.md documents settings that do not exist: {stale}"
