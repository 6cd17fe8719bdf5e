"""The house's shape: stages that depend one way, small modules that say their job."""

import ast
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "dashboard"
# The benchmark is held to the app's standards too.
CAPPED = (PACKAGE, REPO / "bench")
MAX_LINES = 400


def test_the_layers_contract_is_kept():
    # lint-imports reads .importlinter: the stages, top to bottom, and that
    # nothing below the web layer imports Flask, and the hub's parts in one
    # direction (hub, sockets, ring, frame). Type-checking imports count.
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 kept, 0 broken" in out.stdout


# Import circles still present, each named by one import in it, to be removed
# when that import is. None is left (the last, wiring taking __version__ from the
# package root, went when the version got a module of its own); a new one fails.
KNOWN_CIRCLES: set[tuple[str, str]] = set()


def import_circles(graph) -> list[list[str]]:
    """Groups of modules that import each other, directly or round a chain
    (the strongly connected components of the import graph with more than one
    module), each sorted; found without recursion."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, imports = work[-1]
            for imported in imports:
                if imported not in index:
                    index[imported] = low[imported] = len(index)
                    stack.append(imported)
                    on_stack.add(imported)
                    work.append((imported, iter(sorted(graph.find_modules_directly_imported_by(imported)))))
                    break
                if imported in on_stack:
                    low[module] = min(low[module], index[imported])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[module])
                if low[module] == index[module]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == module:
                            break
                    if len(group) > 1:
                        circles.append(sorted(group))
    return circles


def test_no_import_circle_inside_the_package():
    # Every import counts, type-checking ones and those inside functions too.
    import grimp

    graph = grimp.build_graph("dashboard", cache_dir=None)
    for importer, imported in KNOWN_CIRCLES:
        assert graph.direct_import_exists(importer=importer, imported=imported), (
            f"{importer} no longer imports {imported}: remove it from KNOWN_CIRCLES")
        graph.remove_import(importer=importer, imported=imported)
    circles = import_circles(graph)
    assert not circles, "modules that import each other: " + "; ".join(
        " <-> ".join(group) + " (" + ", ".join(
            f"{a} -> {b}" for a in group for b in sorted(graph.find_modules_directly_imported_by(a))
            if b in group) + ")"
        for group in circles)


def test_the_circle_finder_finds_circles():
    import grimp

    graph = grimp.ImportGraph()
    for a, b in [("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d"), ("p.d", "p.e"), ("p.e", "p.d"),
                 ("p.f", "p.a")]:
        graph.add_import(importer=a, imported=b)
    assert sorted(import_circles(graph)) == [["p.a", "p.b", "p.c"], ["p.d", "p.e"]]
    graph.remove_import(importer="p.c", imported="p.a")
    graph.remove_import(importer="p.e", imported="p.d")
    assert import_circles(graph) == []


def module_problems(folder: Path) -> list[str]:
    """Modules under folder longer than MAX_LINES or not opening with a docstring of a few words."""
    problems = []
    for path in sorted(folder.rglob("*.py")):
        if "node_modules" in path.parts:
            continue
        source = path.read_text()
        name = path.relative_to(folder.parent)
        lines = source.count("\n")
        if lines > MAX_LINES:
            problems.append(f"{name} has {lines} lines")
        doc = ast.get_docstring(ast.parse(source))
        if not (doc and len(doc.split()) >= 4):
            problems.append(f"{name} does not open with a comment saying its job")
    return problems


def test_no_module_passes_400_lines_and_each_says_its_job():
    for folder in CAPPED:
        assert not module_problems(folder), module_problems(folder)


def test_the_cap_and_the_docstring_rule_catch_an_offending_bench_module(tmp_path):
    # The rule above must be able to fail: a copy of bench/ with one module made
    # too long and one without a docstring is refused, by name.
    bench = tmp_path / "bench"
    bench.mkdir()
    for path in (REPO / "bench").glob("*.py"):
        (bench / path.name).write_text(path.read_text())
    assert module_problems(bench) == []
    (bench / "report.py").write_text((bench / "report.py").read_text() + "\n" * MAX_LINES)
    (bench / "unsaid.py").write_text("X = 1\n")
    problems = module_problems(bench)
    assert len(problems) == 2, problems
    assert problems[0].startswith("bench/report.py has ") and problems[0].endswith(" lines")
    assert problems[1] == "bench/unsaid.py does not open with a comment saying its job"


def test_the_folders_are_the_stages():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == {"sampling", "stream", "alerts", "console", "control", "fleet", "store", "web"}


def test_each_blueprint_declares_the_few_things_it_uses_of_the_process():
    """No module-wide list of what the web layer may touch: each web module names, in a Protocol of its
    own, what it uses of the process it serves (web.common.serving types the instance as that)."""
    import ast

    web = Path(__file__).resolve().parent.parent / "dashboard" / "web"
    users = 0
    for path in sorted(web.glob("*.py")):
        tree = ast.parse(path.read_text())
        protocols = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)
                     and any(getattr(b, "id", None) == "Protocol" for b in node.bases)}
        for call in ast.walk(tree):
            if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "serving" and call.args:
                name = getattr(call.args[0], "id", None)
                assert name in protocols, f"{path.name}: serving({name}) names no Protocol of its own module"
                members = [n for n in protocols[name].body if isinstance(n, (ast.AnnAssign, ast.FunctionDef))]
                assert 1 <= len(members) <= 10, f"{path.name}: {name} lists {len(members)} things; keep it small"
                users += 1
    assert users >= 6  # api, auth, common (host_view), console_socket, events, pages
