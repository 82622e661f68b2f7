"""No two project modules import each other, not even inside a function.

Two modules that import each other are a sign that a concept wants its own home (one owner per
concept): a lazy import inside a function hides the cycle from Python but not from a reader. The
graph is read with `ast` from every module under the packages below: module-level, function-level
and TYPE_CHECKING imports alike, absolute and relative. A package's `__init__` counts only where
names are imported from it: importing `core.gan.train` is not an edge to `core.gan`.
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "models", "ui", "vectorstore")


def project_modules(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under `packages`."""
    out = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def import_graph(root: Path, packages=PACKAGES) -> dict[str, set[str]]:
    """Module -> the project modules it imports anywhere in its source."""
    mods = project_modules(root, packages)

    def known(name: str) -> str | None:  # "core.x.y" where y is a name in core/x.py -> "core.x"
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        found: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                found |= {known(a.name) for a in node.names if a.name.split(".")[0] in packages}
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(here[: len(here) - node.level + 1] + [node.module or ""]).strip(".") if node.level else node.module
                if base and base.split(".")[0] in packages:
                    # `from pkg import sub` imports the submodule pkg.sub; `from mod import name` the module
                    found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in mods else known(base) for a in node.names}
        graph[name] = {m for m in found if m and m != name}
    return graph


def mutual_pairs(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Every (a, b), a < b, where a imports b and b imports a."""
    return sorted({tuple(sorted((a, b))) for a, deps in graph.items() for b in deps if a in graph.get(b, ())})


def test_no_two_modules_import_each_other():
    pairs = mutual_pairs(import_graph(REPO))
    assert not pairs, "modules that import each other (give the concept both need one home, imported by both): " + \
        "; ".join(f"{a} <-> {b}" for a, b in pairs)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of two or more modules (Tarjan), each a set of modules importing in a ring."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while not group or group[-1] != v:
                group.append(stack.pop())
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def test_no_longer_import_rings():
    """A -> B -> C -> A is the same smell as A <-> B, one module further apart."""
    rings = [g for g in cycles(import_graph(REPO)) if len(g) > 2]
    assert not rings, "modules importing each other in a ring: " + "; ".join(" / ".join(g) for g in rings)


def test_the_graph_sees_lazy_relative_and_package_imports(tmp_path):
    """The check itself: a cycle through a function-level relative import is found and named."""
    pkg = tmp_path / "core" / "things"
    pkg.mkdir(parents=True)
    (tmp_path / "core" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("from core.things.a import A\n")
    (pkg / "a.py").write_text("A = 1\n\ndef f():\n    from .b import B\n    return B\n")
    (pkg / "b.py").write_text("from core.things import a\nB = 2\n")
    (pkg / "c.py").write_text("import core.things.b\nfrom core import things\n")
    graph = import_graph(tmp_path, ("core",))
    assert graph["core.things.b"] == {"core.things.a"}
    assert graph["core.things.c"] == {"core.things.b", "core.things"}
    assert graph["core.things"] == {"core.things.a"}
    assert mutual_pairs(graph) == [("core.things.a", "core.things.b")]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    # and on the real tree it reads real edges, so an empty answer above is not an empty graph
    real = import_graph(REPO)
    assert {"core.chat.agent", "core.chat.chain"} <= real["core.chat.reply"]
    assert "core.chat.agent" not in real["core.chat.chain"]
