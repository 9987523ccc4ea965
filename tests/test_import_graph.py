"""The module graph of the three packages (prefdata, prefdata.validators, prefdata.align) has no cycle.

Read from the source with `ast`, lazy imports inside functions included: a cycle that only a lazy import
keeps from failing at import time is still two modules that each need the other. A submodule's import of its
own parent package is Python's doing, not a dependency, and `from pkg import name` depends on `pkg.name` when
that is a module, else on `pkg` itself.
"""

import ast
from pathlib import Path

from conftest import ROOT

PACKAGES = {"prefdata": ROOT / "prefdata", "prefdata.validators": ROOT / "validators",
            "prefdata.align": ROOT / "align"}


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = [p for p in path.relative_to(folder).with_suffix("").parts if p != "__init__"]
            if package == "prefdata" and parts and parts[0] in ("validators", "align"):
                continue
            found[".".join([package, *parts])] = path
    return found


def _imported(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1] + [node.module or ""]).strip(".") \
                if node.level else node.module
            for alias in node.names:
                targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    edges = set()
    for target in targets:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name and not name.startswith(target + "."):  # not its own parent package
            edges.add(target)
    return edges


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iteratively)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def test_no_module_imports_itself_back():
    modules = _modules()
    graph = {name: _imported(name, path, modules) for name, path in modules.items()}
    assert len(graph) > 100 and "prefdata.align.iterate" in graph  # the whole tree was read
    assert graph["prefdata.align.train"] >= {"prefdata.align.data", "prefdata.align.evaluate"}
    assert _cycles(graph) == []


def _package(module: str) -> str:
    return next((p for p in ("prefdata.validators", "prefdata.align") if module == p or module.startswith(p + ".")),
                "prefdata")


def test_dependencies_between_the_three_packages_run_one_way():
    """DESIGN.md: validators and align may use the core; the core uses neither (it reaches the validators through
    an entry point, prefdata/extensions.py), so the package graph has no cycle either."""
    modules = _modules()
    graph = {name: _imported(name, path, modules) for name, path in modules.items()}
    into = sorted(f"{name} -> {target}" for name, targets in graph.items() for target in targets
                  if _package(name) == "prefdata" and _package(target) != "prefdata")
    assert into == []
    packages = {p: set() for p in ("prefdata", "prefdata.validators", "prefdata.align")}
    for name, targets in graph.items():
        packages[_package(name)] |= {_package(t) for t in targets} - {_package(name)}
    assert _cycles(packages) == []
    assert packages["prefdata.align"] >= {"prefdata"} and packages["prefdata.validators"] == {"prefdata"}


def test_the_core_finds_the_validators_through_its_entry_point():
    from prefdata.extensions import validators

    hooks = validators()
    assert hooks.__name__ == "prefdata.validators.hooks"
    assert {"command", "validate", "row_flags", "stamp_path"} <= set(dir(hooks))


def test_the_cycle_finder_finds_a_planted_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
