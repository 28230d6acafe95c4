"""The shape of the product code, read with ``ast`` (no imports, no TensorFlow: runs in the
edge venv): no product file over MAX_LINES lines, no import circle between product modules
(counting imports under ``if TYPE_CHECKING:`` and inside functions), and library code never
imports the CLI layer (cli.py files, *_cli.py / cli_*.py, edge/clikit.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT_DIRS = ("edge", "train", "convert", "benchmarks", "scripts")
MAX_LINES = 400
CLI_KIT = "edge.clikit"

# Files exempt from all three checks while being split or moved (a circle is exempt when one
# of its modules is; a key ending in "/" exempts a folder): each entry with its reason. Empty
# since issue 22's rooms were filled; keep it one obvious constant, and empty.
NOT_YET_CLEAN: dict[str, str] = {}


def _exempt(rel: str) -> bool:
    return any(rel == key or (key.endswith("/") and rel.startswith(key))
               for key in NOT_YET_CLEAN)


def product_files() -> list[Path]:
    return sorted(p for d in PRODUCT_DIRS for p in (ROOT / d).rglob("*.py")
                  if "__pycache__" not in p.parts)


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _resolve(node: ast.ImportFrom, module: str, package: bool) -> str:
    """The absolute module a ``from X import ...`` names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Every product module ``path`` imports anywhere in the file (module level, functions,
    TYPE_CHECKING blocks): ``from pkg import name`` counts as pkg.name when that is a module."""
    module = module_name(path)
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node, module, _is_package(path))
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
    if module.startswith("scripts."):  # scripts import their siblings by bare name
        found |= {f"scripts.{name}" for name in found}
    return {name for name in found if name in known and name != module}


def import_graph() -> tuple[dict[str, set[str]], dict[str, str]]:
    files = product_files()
    known = {module_name(p) for p in files}
    graph = {module_name(p): imports_of(p, known) for p in files}
    return graph, {module_name(p): rel(p) for p in files}


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Modules reachable from ``start`` through one import or more."""
    seen, todo = set(), list(graph[start])
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph[name])
    return seen


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles: groups of modules that each reach all the others (a few hundred
    modules: reachability from each is quick enough, and plain to read)."""
    reach = {name: _reachable(graph, name) for name in graph}
    found, done = [], set()
    for name in sorted(graph):
        if name in reach[name] and name not in done:
            group = sorted(other for other in reach[name] if name in reach[other])
            done.update(group)
            found.append(group)
    return found


def is_cli_layer(module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    return module == CLI_KIT or last == "cli" or last.startswith("cli_") or last.endswith("_cli")


def page_scripts() -> list[Path]:
    """The browser pages' own JavaScript (the fetched runtime in vendor/ is not ours)."""
    return sorted(p for p in (ROOT / "edge").rglob("*.js") if "vendor" not in p.parts)


def test_no_product_file_is_over_the_line_limit():
    assert page_scripts(), "the page scripts moved: update page_scripts()"
    long = {rel(p): n for p in product_files() + page_scripts()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
            and not _exempt(rel(p))}
    assert not long, f"split these by responsibility (over {MAX_LINES} lines): {long}"


def test_no_import_circles_between_product_modules():
    graph, paths = import_graph()
    found = [c for c in circles(graph) if not any(_exempt(paths[m]) for m in c)]
    assert not found, f"import circles (TYPE_CHECKING and in-function imports count): {found}"


def test_library_code_never_imports_the_cli_layer():
    graph, paths = import_graph()
    bad = {paths[m]: sorted(t for t in targets if is_cli_layer(t))
           for m, targets in graph.items() if not is_cli_layer(m) and not _exempt(paths[m])}
    bad = {m: t for m, t in bad.items() if t}
    assert not bad, f"library modules importing the CLI layer (use edge.deps, edge.signals): {bad}"


# ---------------------------------------------------------------- the checker itself


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


@pytest.fixture
def fake_root(tmp_path, monkeypatch):
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    return tmp_path


def test_circles_count_type_checking_and_in_function_imports(fake_root):
    _write(fake_root, {
        "edge/__init__.py": "",
        "edge/a.py": "from typing import TYPE_CHECKING\n"
                     "if TYPE_CHECKING:\n    from edge.b import B\n",
        "edge/b.py": "def f():\n    from edge import a\n",
        "edge/c.py": "from . import a\n",
    })
    graph, _ = import_graph()
    assert graph["edge.c"] == {"edge.a"}
    assert circles(graph) == [["edge.a", "edge.b"]]


def test_scripts_import_their_siblings_by_bare_name(fake_root):
    _write(fake_root, {"scripts/a.py": "import b\n", "scripts/b.py": "def f():\n    import a\n"})
    assert circles(import_graph()[0]) == [["scripts.a", "scripts.b"]]


def test_the_cli_layer_is_cli_modules_and_clikit():
    assert is_cli_layer("edge.cli") and is_cli_layer("edge.clikit")
    assert is_cli_layer("train.cli_subcommands") and not is_cli_layer("edge.loop")
