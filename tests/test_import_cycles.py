"""No import cycle between the modules inside an app (import-linter checks the apps' layers).

A cycle is a strongly connected set of modules of one app (tests and migrations
left out), imports inside functions included, imports only for type checking
not (they run nothing). KNOWN lists cycles allowed to remain (none now); the
test fails on any cycle not listed, and on a listed one that is gone, so the
list only shrinks.
"""

from __future__ import annotations

import grimp

APPS = ("platformkit", "accounts", "notifications", "tracks", "consent", "labels", "downstream", "public")

KNOWN: set[frozenset[str]] = set()


def _strongly_connected(nodes: set[str], edges: dict[str, set[str]]) -> list[frozenset[str]]:
    """Tarjan's algorithm, iterative; only components of two or more modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    counter = 0
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(frozenset(component))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def _is_code(module: str) -> bool:
    parts = module.split(".")
    return "tests" not in parts and "migrations" not in parts


def cycles_inside_apps() -> set[frozenset[str]]:
    graph = grimp.build_graph(*APPS, cache_dir=None, exclude_type_checking_imports=True)
    cycles: set[frozenset[str]] = set()
    for app in APPS:
        modules = {m for m in graph.find_descendants(app) | {app} if _is_code(m)}
        edges = {m: graph.find_modules_directly_imported_by(m) & modules for m in modules}
        cycles.update(_strongly_connected(modules, edges))
    return cycles


def test_strongly_connected_finds_a_cycle_and_nothing_else():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _strongly_connected(set(edges), edges) == [frozenset({"a", "b", "c"})]


def test_no_import_cycle_inside_an_app():
    cycles = cycles_inside_apps()
    new = sorted(sorted(c) for c in cycles - KNOWN)
    gone = sorted(sorted(c) for c in KNOWN - cycles)
    assert not new, f"import cycles inside an app: {new}"
    assert not gone, f"these cycles are gone: remove them from KNOWN: {gone}"
