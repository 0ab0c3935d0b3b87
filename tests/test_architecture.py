"""The plan of the house, checked: no import cycle between modules, a handful of base modules
beside the rooms, no module too large to read. (Which room may import what is import-linter's
job: the contracts in pyproject.toml, run by `make test`.)"""

from __future__ import annotations

import grimp

from tests.conftest import ROOT

PACKAGE = ROOT / "runner"
ROOMS = {"alerts", "catalog", "routing", "runs", "store", "notify", "web", "cli"}
MAX_BASE_MODULES = 12
MAX_LINES = 450


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycles_between_modules_not_even_inside_functions() -> None:
    assert cycles(grimp.build_graph("runner")) == []


def test_the_cycle_finder_finds_one() -> None:
    graph = grimp.ImportGraph()
    for name in ("a", "a.x", "a.y", "a.z"):
        graph.add_module(name)
    graph.add_import(importer="a.x", imported="a.y")
    graph.add_import(importer="a.y", imported="a.x")
    graph.add_import(importer="a.y", imported="a.z")
    assert cycles(graph) == [["a.x", "a.y"]]


def test_the_rooms_and_a_handful_of_base_modules() -> None:
    rooms = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert rooms >= ROOMS, f"missing rooms: {sorted(ROOMS - rooms)}"
    base = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(base) <= MAX_BASE_MODULES, base


def test_no_module_too_large_to_read() -> None:
    large = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py")
             if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert large == {}
