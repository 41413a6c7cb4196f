"""Lineage layout: parents above children, leaves in their own columns, kinds and labels per trial."""

from __future__ import annotations

from nanoresearch.store.models import Trial
from nanoresearch.web.lineage import layout


def trial(trial_id: int, parent: int | None, **fields: object) -> Trial:
    base = {"id": trial_id, "run_id": "r", "parent_id": parent, "proposer": "llm", "command": "x",
            "executor": "local", "status": "done"}
    return Trial(**{**base, **fields})


def test_a_parent_sits_above_and_between_its_children() -> None:
    tree = layout([trial(1, None, kept=True, score=1.0), trial(2, 1, score=0.5), trial(3, 1, kept=True, score=2.0),
                   trial(4, 3, status="failed", failure="timeout")], head_id=3)
    nodes = {n.id: n for n in tree.nodes}
    assert nodes[2].y == nodes[3].y > nodes[1].y and nodes[4].y > nodes[3].y
    assert nodes[2].x < nodes[1].x <= nodes[3].x  # the parent is centred over its children's columns
    assert [n.kind for n in tree.nodes] == ["kept", "reverted", "kept", "failed"]
    assert nodes[4].label == "timeout" and nodes[3].label == "2" and nodes[3].is_head and not nodes[1].is_head
    assert len(tree.edges) == 3
    assert all(0 < n.x < tree.width and 0 < n.y < tree.height for n in tree.nodes)


def test_a_long_chain_and_a_missing_parent_are_drawn() -> None:
    chain = [trial(1, None)] + [trial(i, i - 1) for i in range(2, 3001)] + [trial(5000, 4999)]
    tree = layout(chain, head_id=None)  # 3000 deep: no recursion limit; 5000's parent is unknown: a root
    assert len(tree.nodes) == 3001 and len(tree.edges) == 2999
    assert {n.id: n for n in tree.nodes}[5000].y == tree.nodes[0].y


def test_no_trials_gives_an_empty_drawing() -> None:
    assert layout([], head_id=None).nodes == []
