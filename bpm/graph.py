"""The order of a saga's steps as a graph: who waits for whom. Pure: no Django, no I/O.

A step names the steps it runs after (`after`); None means the step before it in the list, an
empty list that it starts with the saga. The planner, the validation and the diagram read the
same resolved graph from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

Graph = Mapping[str, tuple[str, ...]]
"""Each step's predecessors, in the order of the steps."""


def predecessors(steps: Iterable[tuple[str, Sequence[str] | None]]) -> dict[str, tuple[str, ...]]:
    """Return each step's predecessors from (name, after) pairs, the default resolved."""
    graph: dict[str, tuple[str, ...]] = {}
    previous: str | None = None
    for name, after in steps:
        if after is None:
            graph[name] = (previous,) if previous is not None else ()
        else:
            graph[name] = tuple(after)
        previous = name
    return graph


def is_linear(graph: Graph) -> bool:
    """Return whether every step waits for exactly the one before it (the saga is a line)."""
    names = list(graph)
    return all(graph[name] == ((names[i - 1],) if i else ()) for i, name in enumerate(names))


def successors(graph: Graph) -> dict[str, tuple[str, ...]]:
    """Return each step's direct successors, in the order of the steps."""
    following: dict[str, list[str]] = {name: [] for name in graph}
    for name, before in graph.items():
        for predecessor in before:
            if predecessor in following:
                following[predecessor].append(name)
    return {name: tuple(after) for name, after in following.items()}


def reachable(edges: Graph, start: str) -> set[str]:
    """Return every step reachable from `start` along `edges`, `start` itself excluded."""
    seen: set[str] = set()
    stack = list(edges.get(start, ()))
    while stack:
        name = stack.pop()
        if name in seen or name not in edges:
            continue
        seen.add(name)
        stack.extend(edges[name])
    return seen


def ancestors(graph: Graph, name: str) -> set[str]:
    """Return the steps `name` waits for, directly or not."""
    return reachable(graph, name)


def descendants(graph: Graph, name: str) -> set[str]:
    """Return the steps that wait for `name`, directly or not."""
    return reachable(successors(graph), name)


def find_cycle(graph: Graph) -> list[str]:
    """Return the steps of one cycle, first step repeated at the end, or [] when there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(name: str) -> list[str]:
        state[name] = 1
        path.append(name)
        for before in graph.get(name, ()):
            if before not in graph:
                continue
            if state.get(before) == 1:
                # The path follows predecessors; the cycle reads in running order.
                start = path.index(before)
                return [before, *reversed(path[start + 1 :]), before]
            if before not in state:
                found = visit(before)
                if found:
                    return found
        path.pop()
        state[name] = 2
        return []

    for name in graph:
        if name not in state:
            found = visit(name)
            if found:
                return found
    return []


def layers(graph: Graph) -> list[list[str]]:
    """Return the steps by depth: each step one layer below its deepest predecessor."""
    depth: dict[str, int] = {}

    def depth_of(name: str) -> int:
        if name not in depth:
            before = [b for b in graph.get(name, ()) if b in graph]
            depth[name] = 1 + max((depth_of(b) for b in before), default=-1)
        return depth[name]

    for name in graph:
        depth_of(name)
    result: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for name in graph:
        result[depth[name]].append(name)
    return result
