"""Variant isolation: each lane starts from an empty home and never sees another lane's state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eval_recorded import lane_db, lane_workspace, recorded_eval

from nanoresearch.evaluation.cells import lane_folder, lane_settings
from nanoresearch.evaluation.spec import parse_spec


def lane_home(out: Path, variant: str) -> Path:
    return out / "lanes" / "ablation" / variant / "seed-0" / "home"


@pytest.mark.slow  # the recorded evaluation (four research runs)
def test_the_static_lane_keeps_no_state_and_shares_none_with_the_full_lane(tmp_path_factory) -> None:
    out = recorded_eval(tmp_path_factory)
    full, static = lane_db(out, "full"), lane_db(out, "static")
    count = {name: {table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in ("memories", "skills")}
             for name, db in (("full", full), ("static", static))}
    assert count["static"] == {"memories": 0, "skills": 0}  # all levels off: nothing written
    assert count["full"]["memories"] > 0  # the persona's comments and the run's lessons, in its own store only
    assert not (lane_home(out, "static") / "users" / "ablation" / "policy").exists() or not any(
        (lane_home(out, "static") / "users" / "ablation" / "policy").rglob("adapter*"))

    full_runs = {r for (r,) in full.execute("SELECT id FROM runs")}
    static_runs = {r for (r,) in static.execute("SELECT id FROM runs")}
    assert len(full_runs) == len(static_runs) == 2 and not full_runs & static_runs
    # Round 2 of the full lane recalled what round 1 of that lane wrote; the static lane recalled nothing.
    for variant, db in (("full", full), ("static", static)):
        (stored,) = db.execute("SELECT workspace FROM runs ORDER BY created_at DESC LIMIT 1").fetchone()
        workspace = lane_workspace(out, variant, stored)
        assert workspace.is_relative_to(lane_home(out, variant)) and workspace.is_dir()
        recalled = [json.loads(p.read_text()) for p in (workspace / "plans").glob("*.recall.json")]
        memories = {m["id"] for r in recalled for m in r["memories"]}
        if variant == "static":
            assert memories == set() and all(r["skills"] == [] for r in recalled)
        else:
            own = {i for (i,) in db.execute("SELECT id FROM memories")}
            assert memories and memories <= own


def test_every_lane_has_its_own_home_store_and_user(tmp_path: Path) -> None:
    digits = Path(__file__).resolve().parents[2] / "examples" / "tasks" / "digits-classifier"
    spec = parse_spec({"name": "s", "variants": ["full", "no_memory", "static"], "seeds": [0, 1],
                       "personas": [{"name": "ann", "preset": "exploratory"}, {"name": "bo", "preset": "evidence-first"}],
                       "rounds": [{"goal": "improve digit accuracy", "task": str(digits)}],
                       "settings": {"policy": {"steps": 3}}}, tmp_path, "spec")
    homes = set()
    for persona in spec.personas:
        for variant in spec.variants:
            for seed in spec.seeds:
                folder = lane_folder(tmp_path, persona.name, variant, seed)
                settings = lane_settings(spec, persona, seed, folder / "home", replay=False)
                assert settings.user == persona.name and settings.policy.seed == seed and settings.policy.steps == 3
                homes.add(settings.db_path)
    assert len(homes) == 2 * 3 * 2
