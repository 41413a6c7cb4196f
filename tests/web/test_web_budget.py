"""Charges split per stage by when they were made, and bars scaled to the limit."""

from __future__ import annotations

from nanoresearch.store.models import Charge, Step
from nanoresearch.web.budget import bar, split_by_stage


def step(stage: str, when: str) -> Step:
    return Step(run_id="r", stage=stage, step="stage", status="done", updated_at=f"2026-01-01T00:00:{when}")


def charge(kind: str, amount: float, when: str) -> Charge:
    return Charge(kind=kind, amount=amount, source="llm_call:1", created_at=f"2026-01-01T00:00:{when}")


def test_a_charge_belongs_to_the_stage_running_when_it_was_made() -> None:
    steps = [step("ideation", "10.000"), step("planning", "20.000"), step("experiment", "30.000")]
    charges = [charge("tokens", 5, "05.000"), charge("tokens", 7, "15.000"), charge("usd", 0.5, "15.500"),
               charge("tokens", 1, "20.000"), charge("tokens", 3, "45.000")]
    assert split_by_stage(steps, charges) == {
        "ideation": {"tokens": 5}, "planning": {"tokens": 7, "usd": 0.5},
        "experiment": {"tokens": 4},  # one made as planning ended, one after the last stage's step: the running stage
    }


def test_a_run_without_stages_has_no_split() -> None:
    assert split_by_stage([], [charge("tokens", 2, "01.000")]) == {}  # a trial session


def test_a_bar_is_scaled_to_the_limit_or_else_to_the_largest_amount() -> None:
    assert bar("x", "tokens", 500, 2000, 0).width == 75
    over = bar("x", "usd", 3, 2, 0)
    assert over.width == 300 and over.over and over.text == "$3.0000 / $2.0000 USD"
    assert bar("x", "trial_s", 10, None, 40).width == 75  # no limit: against the largest of its kind
    alone = bar("x", "trial_s", 10, None, 0)
    assert alone.width == alone.full == 0 and alone.text == "10 trial s (no limit)"
