"""The package's shape: stage packages without import cycles, function-local imports included.

A cycle hidden by an import inside a function is still a cycle (the two modules cannot be read or
tested apart), so the graph is built from every ``import`` statement in the source, not from what
Python happens to load at start-up.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grader

PACKAGE = Path(grader.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every grader module that ``path`` imports, wherever the import statement sits."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from grader.x import y` imports module grader.x.y when y is a submodule.
            targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph = {name: _imports(name, path, known) for name, path in modules.items()}
    # Importing a package's module runs the package's __init__ first: that is not an edge of the
    # module's own making, so a package __init__ that re-exports its modules is not a cycle.
    for name, deps in graph.items():
        deps.discard(name.rpartition(".")[0])
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in graph.get(node, ()):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_graph_sees_function_local_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from grader.model import evidence\n")
    assert _imports("grader.x", source, {"grader.model", "grader.model.evidence"}) == {"grader.model.evidence"}


def test_no_import_cycle_between_grader_modules():
    assert _cycles(_graph()) == []


def test_the_package_reads_like_the_pipeline():
    """Top-level modules are few and shared; every stage is a package."""
    top_modules = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    assert top_modules == ["config", "errors", "printable", "resources"]
    stages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert {"collect", "notebook", "execute", "kernel", "static", "clean", "checks", "pipeline",
            "batch", "report", "store", "rubric", "model", "data"} <= stages


def test_every_package_ships_in_the_wheel():
    """pyproject lists its packages by hand (two are renamed folders): a new stage package must be there."""
    import tomllib

    declared = set(tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {_module_name(p) for p in PACKAGE.rglob("__init__.py") if "__pycache__" not in p.parts}
    assert on_disk - declared == set()


def _package_edges(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    def stage(module: str) -> str:
        return module.split(".")[1] if "." in module else module

    edges: dict[str, set[str]] = {}
    for module, deps in graph.items():
        edges.setdefault(stage(module), set()).update(stage(d) for d in deps if stage(d) != stage(module))
    return edges


def test_the_layering_docs_architecture_promises():
    """docs/architecture.md: model/ is plain data, kernel/ runs in the student's kernel, clean/ is
    told which models to measure (it reads no rubric and no check)."""
    edges = _package_edges(_graph())
    assert edges["model"] <= {"errors"}
    assert edges["kernel"] == set()
    assert edges["clean"] & {"rubric", "checks", "pipeline", "batch", "report"} == set()
    assert edges["execute"] <= {"errors", "model"}
