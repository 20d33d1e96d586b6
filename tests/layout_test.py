"""The package's layers, read with `ast` (nothing imported): imports only go down, and never in a cycle."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent / "scripts" / "parallel_executor"
LAYERS = {"system": 1, "errors": 1, "plan": 2, "agents": 3, "engine": 4, "results": 5, "claude": 6,
          "commands": 7, "server": 7, "cli": 7, "__main__": 7, "": 7}  # lowest first; "" is the package's __init__.py
PROCESS_MODULES = ("os", "signal", "subprocess", "selectors", "psutil")  # the scheduler never imports these
NOT_LOADED = ("psutil", "subprocess", "selectors")  # nor does importing it load these


class Edge(NamedTuple):
    importer: str
    imported: str  # a module of the package; for `external` edges, a top-level name
    type_only: bool  # under `if TYPE_CHECKING:`: a dependency all the same, but never executed

    def __str__(self) -> str:
        return f"{self.importer} -> {self.imported}" + (" (TYPE_CHECKING)" if self.type_only else "")


def modules(root: Path) -> dict[str, Path]:
    names = {path: [root.name, *path.relative_to(root).with_suffix("").parts] for path in sorted(root.rglob("*.py"))}
    return {".".join(parts[:-1] if parts[-1] == "__init__" else parts): path for path, parts in names.items()}


def _imports(node: ast.AST, type_only: bool = False) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node, type_only
    elif isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
        yield from (found for child in node.body for found in _imports(child, True))
        yield from (found for child in node.orelse for found in _imports(child, type_only))
    else:
        yield from (found for child in ast.iter_child_nodes(node) for found in _imports(child, type_only))


def edges(root: Path, external: bool = False) -> list[Edge]:
    """Every import of the package's modules, in functions and under TYPE_CHECKING too (or, if external, of others)."""
    mods, found = modules(root), set()
    for importer, path in mods.items():
        package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
        for node, type_only in _imports(ast.parse(path.read_text(), str(path))):
            relative = isinstance(node, ast.ImportFrom) and node.level > 0
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if relative:  # `from ..x import y`: x in the importer's package, `level - 1` levels up
                    base = ".".join(filter(None, [package.rsplit(".", node.level - 1)[0], base]))
                # `from pkg.engine import journal` is the module pkg.engine.journal when there is one
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for target in targets:
                if external and not relative:
                    found.add(Edge(importer, target.split(".")[0], type_only))
                elif not external and (target + ".").startswith(root.name + "."):
                    while target not in mods and "." in target:  # the longest prefix that is a module
                        target = target.rpartition(".")[0]
                    found.add(Edge(importer, target, type_only))
    return sorted(found)


def top(module: str) -> str:  # the folder or top-level module it is in
    return [*module.split("."), ""][1]


def layer(module: str) -> int:
    assert top(module) in LAYERS, f"{module} is in no layer: give it one in LAYERS"
    return LAYERS[top(module)]


def upward_imports(root: Path) -> list[Edge]:
    return [e for e in edges(root) if layer(e.imported) > layer(e.importer)]


def forbidden_imports(root: Path, low: str, high: tuple[str, ...]) -> list[Edge]:
    return [e for e in edges(root) if top(e.importer) == low and top(e.imported) in high]


def cycles(root: Path) -> list[list[Edge]]:
    """The strongly connected components of size > 1 or with a self-loop, each as its edges."""
    runtime = [e for e in edges(root) if not e.type_only]
    graph: dict[str, set[str]] = {m: {e.imported for e in runtime if e.importer == m} for m in modules(root)}

    def reach(start: str) -> set[str]:  # through at least one edge
        seen, stack = set(), list(graph[start])
        while stack:
            if (m := stack.pop()) not in seen:
                seen.add(m)
                stack.extend(graph[m])
        return seen

    reached = {m: reach(m) for m in graph}
    components = {frozenset(u for u in reached[m] if m in reached[u]) for m in graph if m in reached[m]}
    return [[e for e in runtime if {e.importer, e.imported} <= c] for c in sorted(components, key=sorted)]


def scheduler_imports(root: Path) -> list[Edge]:
    edges_out = edges(root, external=True)
    return [e for e in edges_out if e.importer.endswith(".engine.scheduler") and e.imported in PROCESS_MODULES]


def loaded_by_scheduler(root: Path) -> dict[str, list[str]]:
    """Which of NOT_LOADED importing the scheduler loads in a fresh interpreter, each with its importer chain."""
    code = f"""if True:
        import json, sys
        chains = {{}}
        class Spy:  # notes the chain of modules executing when each module is first looked for
            def find_spec(self, name, *args):
                frame, names = sys._getframe(1), []
                while frame:
                    names, frame = [frame.f_globals.get("__name__", "?"), *names], frame.f_back
                names = [n for n in names if not n.startswith(("importlib", "_frozen_importlib"))]
                chains.setdefault(name, [n for i, n in enumerate(names) if names[i - 1:i] != [n]] + [name])
        sys.meta_path.insert(0, Spy())
        import {root.name}.engine.scheduler
        assert sys.modules[{root.name!r}].__file__.startswith({str(root)!r}), "imported the wrong package"
        print(json.dumps({{m: chains.get(m, [m]) for m in {NOT_LOADED!r} if m in sys.modules}}))
    """
    env = {**os.environ, "PYTHONPATH": str(root.parent)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    loaded: dict[str, list[str]] = json.loads(proc.stdout)
    return loaded


def long_modules(root: Path, limit: int = 300) -> list[str]:
    return [f"{m}: {n} lines" for m, p in modules(root).items() if (n := len(p.read_text().splitlines())) > limit]


def listing(items: Iterable[object]) -> str:
    return "".join(f"\n  {item}" for item in items)


def test_no_module_imports_from_a_higher_layer() -> None:
    bad = upward_imports(ROOT)
    assert not bad, f"imports from a higher layer (importer -> imported):{listing(bad)}"


def test_plan_and_engine_stay_below_what_uses_them() -> None:
    bad = forbidden_imports(ROOT, "plan", ("engine",))
    assert not bad, f"plan/ must stay pure planning, yet imports the engine:{listing(bad)}"
    bad = forbidden_imports(ROOT, "engine", ("results", "commands"))
    assert not bad, f"engine/ imports the views or the commands above it:{listing(bad)}"


def test_only_serve_imports_the_server() -> None:
    """The [server] extra stays out of every other command's start-up (§15)."""
    outside = [e for e in edges(ROOT) + edges(ROOT, external=True)
               if top(e.importer) != "server" and not e.importer.endswith(".commands.serve")]
    bad = [e for e in outside if top(e.imported) == "server" or e.imported in ("starlette", "uvicorn")]
    assert not bad, f"imports of the server outside serve:{listing(bad)}"


def test_no_import_cycles() -> None:
    found = cycles(ROOT)
    assert not found, "import cycles (TYPE_CHECKING left out):" + "".join(f"\n cycle:{listing(c)}" for c in found)


def test_scheduler_touches_no_processes() -> None:
    bad = scheduler_imports(ROOT)
    assert not bad, f"engine/scheduler.py imports process machinery directly:{listing(bad)}"
    loaded = loaded_by_scheduler(ROOT)
    assert not loaded, f"importing engine.scheduler loads (importers):{listing(map(' -> '.join, loaded.values()))}"


def test_no_module_is_longer_than_300_lines() -> None:
    bad = long_modules(ROOT)
    assert not bad, f"modules over 300 lines:{listing(bad)}"


def test_checker_reports_violations(tmp_path: Path) -> None:
    root, pe = tmp_path / "parallel_executor", "parallel_executor."
    for name, text in {
        "__init__": "", "plan/__init__": "", "engine/__init__": "",
        "plan/model": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..engine import run\n",
        "engine/run": "def go() -> None:\n    from parallel_executor.engine import loop\n",
        "engine/loop": "import parallel_executor.engine.run\nfrom parallel_executor.engine import missing\n",
        "engine/scheduler": "import os.path\nfrom . import helper\nx = 1\n" * 101,
        "engine/helper": "import selectors\nimport typing\nif typing.TYPE_CHECKING:\n    from . import scheduler\n",
    }.items():
        (root / f"{name}.py").parent.mkdir(parents=True, exist_ok=True)
        (root / f"{name}.py").write_text(text)
    assert [str(e) for e in upward_imports(root)] == [f"{pe}plan.model -> {pe}engine.run (TYPE_CHECKING)"]
    assert forbidden_imports(root, "plan", ("engine",)) == upward_imports(root)
    assert [str(e) for e in edges(root) if e.importer.endswith("loop")] == [
        f"{pe}engine.loop -> {pe}engine", f"{pe}engine.loop -> {pe}engine.run"]
    assert [[str(e) for e in c] for c in cycles(root)] == [  # helper -> scheduler is TYPE_CHECKING: no cycle
        [f"{pe}engine.loop -> {pe}engine.run", f"{pe}engine.run -> {pe}engine.loop"]]
    assert [str(e) for e in scheduler_imports(root)] == [f"{pe}engine.scheduler -> os"]
    assert long_modules(root) == [f"{pe}engine.scheduler: 303 lines"]
    assert loaded_by_scheduler(root) == {"selectors": ["__main__", f"{pe}engine.scheduler", f"{pe}engine.helper",
                                                       "selectors"]}
