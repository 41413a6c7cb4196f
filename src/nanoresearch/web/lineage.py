"""The trial lineage laid out for an SVG drawn by the template: depth down, leaves left to right."""

from __future__ import annotations

from pydantic import BaseModel

from nanoresearch.store.models import Trial

X_STEP = 90  # pixels between neighbouring leaves
Y_STEP = 70  # pixels between generations
MARGIN = 40


class Node(BaseModel):
    id: int
    x: int
    y: int
    kind: str  # kept | reverted | failed | pending: the class that colours the node
    label: str  # the failure label on failed nodes, the score otherwise
    hypothesis: str
    is_head: bool


class Edge(BaseModel):
    x1: int
    y1: int
    x2: int
    y2: int


class Layout(BaseModel):
    nodes: list[Node]
    edges: list[Edge]
    width: int
    height: int


def node_kind(trial: Trial) -> str:
    if trial.failure or trial.status == "failed":
        return "failed"
    if trial.status in ("proposed", "running"):
        return "pending"
    return "kept" if trial.kept else "reverted"


def node_label(trial: Trial) -> str:
    if trial.failure:
        return trial.failure
    return "" if trial.score is None else f"{trial.score:.4g}"


def layout(trials: list[Trial], head_id: int | None) -> Layout:
    children = _children(trials)
    positions: dict[int, tuple[float, int]] = {}
    next_column = 0
    # Iterative depth-first walk (a long chain of trials would overflow recursion): a leaf takes the
    # next column, a parent sits above the middle of its children.
    for root in children[None]:
        stack: list[tuple[Trial, int, bool]] = [(root, 0, False)]
        while stack:
            trial, depth, expanded = stack.pop()
            kids = children.get(trial.id, [])
            if not kids:
                positions[trial.id] = (next_column, depth)
                next_column += 1
            elif expanded:
                columns = [positions[k.id][0] for k in kids]
                positions[trial.id] = ((columns[0] + columns[-1]) / 2, depth)
            else:
                stack.append((trial, depth, True))
                stack.extend((k, depth + 1, False) for k in reversed(kids))
    return _drawn(trials, positions, head_id, next_column)


def _children(trials: list[Trial]) -> dict[int | None, list[Trial]]:
    """Children per parent id. A parent must come earlier in the list (trials are listed by id), so a
    trial whose parent is missing or later is drawn as a root and a corrupt cycle cannot hide nodes."""
    seen: set[int] = set()
    children: dict[int | None, list[Trial]] = {None: []}
    for trial in trials:
        parent = trial.parent_id if trial.parent_id in seen else None
        children.setdefault(parent, []).append(trial)
        seen.add(trial.id)
    return children


def _drawn(trials: list[Trial], positions: dict[int, tuple[float, int]], head_id: int | None, columns: int) -> Layout:
    def point(trial_id: int) -> tuple[int, int]:
        column, depth = positions[trial_id]
        return round(MARGIN + column * X_STEP), MARGIN + depth * Y_STEP

    nodes, edges = [], []
    for trial in trials:
        x, y = point(trial.id)
        nodes.append(Node(id=trial.id, x=x, y=y, kind=node_kind(trial), label=node_label(trial),
                          hypothesis=trial.hypothesis[:200], is_head=trial.id == head_id))
        if trial.parent_id in positions:
            px, py = point(trial.parent_id)
            edges.append(Edge(x1=px, y1=py, x2=x, y2=y))
    depth = max((d for _, d in positions.values()), default=0)
    return Layout(nodes=nodes, edges=edges, width=2 * MARGIN + max(columns - 1, 0) * X_STEP,
                  height=2 * MARGIN + depth * Y_STEP)
