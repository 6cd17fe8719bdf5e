"""The documentation site: generated pages match their sources, it builds in strict mode,
and no built page links to a page or anchor that is not there."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from docsgen import __main__ as docsgen
from docsgen import layers_page, performance_page, settings_page
from tests.test_layers import MAX_LINES, module_problems

REPO = Path(__file__).resolve().parents[1]


def test_generated_pages_match_their_sources():
    assert docsgen.stale() == [], "run python -m docsgen and commit docs/"


def test_the_settings_page_lists_every_setting_with_its_default_and_help():
    from dashboard import settings

    page = (REPO / "docs" / "settings.md").read_text()
    for s in settings.SETTINGS:
        row = next((line for line in page.splitlines() if line.startswith(f"| `{s.name}` |")), None)
        assert row, f"{s.name} missing from docs/settings.md"
        assert s.help.replace("|", "\\|") in row, s.name
    assert "| `AUDIT_DB` | (empty: `DATA_DIR/audit.sqlite3`) |" in page


def test_the_check_catches_a_setting_whose_help_changed(monkeypatch):
    # The check must be able to fail: a setting re-described in settings.py
    # makes the committed page stale, by name.
    from dashboard import settings

    first = settings.SETTINGS[0]
    changed = settings.Setting(first.name, first.default, first.help + " Changed.", first.parse, first.secret)
    monkeypatch.setattr(settings, "SETTINGS", (changed,) + settings.SETTINGS[1:])
    assert docsgen.stale() == ["settings.md"]


def test_the_performance_tables_come_from_the_kept_run(tmp_path, monkeypatch):
    import json
    import shutil

    shutil.copy(performance_page.RESULTS / "latest.json", tmp_path / "latest.json")
    run = json.loads((tmp_path / "latest.json").read_text())
    run["summary"]["ours"]["5000"]["server_cpu_percent"].update(median=99.25, min=99.0, max=99.5)
    (tmp_path / "latest.json").write_text(json.dumps(run))
    monkeypatch.setattr(performance_page, "RESULTS", tmp_path)
    page = performance_page.render((REPO / "docs" / "performance.md").read_text())
    assert "| 5,000 | ours | 99.2 (99.0-99.5) |" in page
    assert docsgen.stale() == ["performance.md"]
    assert f"Run of {run['created'][:10]}, app at commit `{run['git'].get('app_commit') or run['git']['head']}`" in page


def test_the_layer_table_names_every_module_of_every_layer():
    table = layers_page.table()
    for path in sorted((REPO / "dashboard").rglob("*.py")):
        assert f"`{path.relative_to(REPO / 'dashboard')}`" in table, path
    assert [m for layer in layers_page.layers() for m in layer][:3] == ["dashboard.agent", "dashboard.serving",
                                                                        "dashboard.wiring"]


def test_the_generators_keep_the_house_rules():
    assert not module_problems(REPO / "docsgen"), module_problems(REPO / "docsgen")
    assert MAX_LINES == 400


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        for key in ("href", "src"):
            if attrs.get(key):
                self.hrefs.append(attrs[key])


def _dead_links(site: Path) -> list[str]:
    """Internal links of the built site whose page, file or anchor does not exist."""
    pages: dict[Path, _Links] = {}
    for html in site.rglob("*.html"):
        if html.name == "404.html":  # served at any depth, so it links from the site's root
            continue
        parser = _Links()
        parser.feed(html.read_text())
        pages[html] = parser
    dead = []
    for html, parser in pages.items():
        for href in parser.hrefs:
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or href.startswith(("mailto:", "javascript:")):
                continue
            if not parts.path:
                target = html
            elif parts.path.startswith("/"):
                target = (site / unquote(parts.path).lstrip("/")).resolve()
            else:
                target = (html.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                dead.append(f"{html.relative_to(site)}: {href}")
                continue
            if parts.fragment and target.suffix == ".html" and target in pages:
                if unquote(parts.fragment) not in pages[target].ids:
                    dead.append(f"{html.relative_to(site)}: {href} (no such anchor)")
    return dead


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    mkdocs = Path(sys.executable).with_name("mkdocs")
    done = subprocess.run([str(mkdocs), "build", "--strict", "--site-dir", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_the_site_builds_in_strict_mode(site):
    for page in ("index.html", "settings/index.html", "deploy/fly/index.html", "operating/index.html"):
        assert (site / page).exists(), page


def test_no_built_page_links_to_a_missing_page_or_anchor(site):
    assert _dead_links(site) == []


def test_the_link_check_finds_a_dead_link(site, tmp_path):
    # The checker must be able to fail: a page pointing at a missing page and a missing anchor.
    import shutil

    copy = tmp_path / "site"
    shutil.copytree(site, copy)
    index = copy / "index.html"
    index.write_text(index.read_text().replace(
        "</body>", '<a href="nowhere/">x</a><a href="settings/#no-such-anchor">y</a></body>'))
    assert _dead_links(copy) == ["index.html: nowhere/", "index.html: settings/#no-such-anchor (no such anchor)"]


def _text(html: str) -> str:
    import html as html_module

    return html_module.unescape(re.sub(r"<[^>]+>", "", html))


@pytest.mark.parametrize("page, source", [
    ("deploy/fly", "deploy/fly.toml"), ("deploy/render", "deploy/render.yaml"),
    ("deploy/railway", "deploy/railway.json"), ("deploy/nginx", "deploy/nginx-subpath.conf"),
    ("deploy/index", "deploy/prometheus.yml"), ("deploy/index", "Procfile"), ("deploy/heroku", "app.json"),
])
def test_the_deploy_pages_show_the_files_in_deploy_as_they_are(site, page, source):
    built = site / page / "index.html" if not page.endswith("index") else site / "deploy" / "index.html"
    assert (REPO / source).read_text().strip() in _text(built.read_text()), source


def test_the_heroku_button_names_its_template():
    page = (REPO / "docs" / "deploy" / "heroku.md").read_text()
    assert "(https://heroku.com/deploy?template=https://github.com/" in page


def test_the_event_stream_page_warns_python_readers_of_the_empty_first_event():
    page = (REPO / "docs" / "events.md").read_text()
    assert "httpx-sse" in page and "if not event.data:" in page


def test_the_readme_links_resolve_from_the_repositorys_root():
    # README.md is the short front page; its links into docs/ are written from the root.
    text = (REPO / "README.md").read_text()
    links = [link for link in re.findall(r"\]\(([^)#\s]+)", text) if not urlsplit(link).scheme]
    assert links and all((REPO / link).exists() for link in links), [l for l in links if not (REPO / l).exists()]
    assert len(text.splitlines()) < 120


def test_the_storm_and_history_blocks_say_what_the_kept_run_measured_or_that_it_did_not():
    run = {"mode": "full", "git": {"app_commit": "abc1234"}}
    assert "Not measured" in performance_page.storm(run) and "Not measured" in performance_page.history(run)
    storm_run = {"viewers": 5000, "drain": 20.0, "opens": 200, "runs": [
        {"label": "drain 20 s, 200/s", "ends_first": 0.01, "ends_last": 19.9, "peak_opens_per_s": 251, "deferred": 10,
         "all_back_s": 26.6, "b_cpu_s": 10.3, "seq_gaps": 0, "seq_repeats": 0, "missing": 0}],
        "targets": [{"target": "peak opens a second", "goal": "<= 250", "measured": 251, "met": False}]}
    block = performance_page.storm({**run, "storm": {"storm": storm_run, "open_cost": {
        "medians_us_per_open": {"ours": 700.0, "node": 150.0}, "ours_over_node": 4.67}}})
    assert "| drain 20 s, 200/s | 0.01-19.9 | 251 | 10 | 26.6 | 10.3 | 0 / 0 | - / - |" in block
    assert "peak opens a second 251 (goal <= 250): **missed**" in block and "4.67x" in block
