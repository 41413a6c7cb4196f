"""The SDPO relevance check, calibrated: on a labelled set of feedback texts x stages (actionable vs
contentless, data/relevance_labelled.json) the real planner's check keeps the actionable ones and
flags the contentless ones; a refusal says the measured value and the setting; `policy train` says
what it will do before doing it (issue 15 item 7, issue 14 item 6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import run_cli
from nanoresearch.config import load_settings
from nanoresearch.llm.local import load_model
from nanoresearch.policy.calibration import calibrate, measure, read_labelled
from nanoresearch.policy.sdpo import LossConfig
from tiny_planner import record_feedback

LABELLED = Path(__file__).parent / "data" / "relevance_labelled.json"
# on the demo's own planning plan, where it was refused (relevance 0.0073 < 0.015)
README_EXAMPLE = ("planning-demo", "always include an ablation of each component")
OLD_SETTING = 0.015  # before the calibration: min_relevance on the mean over every plan token
# Measured on CPU: contentless feedback up to 0.035, actionable from 0.046, so 0.04 kept every actionable
# text and flagged every contentless one; before (the mean, 0.015): precision 0.95, recall 0.82.
PRECISION_FLOOR, RECALL_FLOOR = 0.9, 0.9
PLAN = '{"objectives": ["train a small network"], "constraints": [], "budget_share": "50%"}'


@pytest.fixture
def cli_env(monkeypatch, tiny_planner_dir):
    for name, value in {
        "STAGES__PLANNER__MODEL": str(tiny_planner_dir), "POLICY__STEPS": "2", "POLICY__LR": "0.02",
        "POLICY__LORA_R": "4", "POLICY__LORA_ALPHA": "8", "POLICY__DRIFT_KL_MAX": "100",
        "POLICY__DRIFT_PPL_RATIO_MAX": "100",
    }.items():
        monkeypatch.setenv(f"NANORESEARCH_{name}", value)
    return load_settings()


def test_train_with_nothing_pending_says_so_without_announcing_training(cli_env, capsys, monkeypatch):
    result = run_cli(capsys, monkeypatch, "policy", "train")
    assert result.code == 0 and "no new feedback" in result.out
    assert "training" not in result.err and "steps" not in result.err


def test_train_announces_the_check_first_and_a_refusal_shows_the_value_and_the_setting(
        cli_env, store, tiny_lm, capsys, monkeypatch):
    monkeypatch.setenv("NANORESEARCH_POLICY__MIN_RELEVANCE", "1000")
    record_feedback(store, tiny_lm, "alice", cli_env.stage("planner").model, "goal", PLAN, "ok")
    result = run_cli(capsys, monkeypatch, "policy", "train")
    assert result.code == 0, result.err
    first = result.err.splitlines()[0]
    assert first.startswith("checking 1 new feedback for relevance (policy.min_relevance = 1000.0)")
    assert "flagged" in result.out and "policy.min_relevance = 1000.0" in result.out
    assert "(relevance 0." in result.out  # the measured value, next to the setting
    flagged = next(line for line in result.err.splitlines() if "flagged" in line)
    assert "relevance 0." in flagged and "< policy.min_relevance = 1000.0" in flagged


@pytest.mark.slow  # the real planner, SmolLM2-135M, scores every labelled item
def test_the_calibrated_threshold_keeps_actionable_feedback_and_flags_contentless_feedback(home) -> None:
    settings = load_settings()
    labelled = read_labelled(LABELLED)
    assert len(labelled.items) >= 30 and {i.actionable for i in labelled.items} == {True, False}
    lm = load_model("smollm2-135m", settings.cache_dir, engine="transformers")
    measured = measure(lm, lm.model, labelled, LossConfig.of(settings.policy), "smollm2-135m")

    for m in sorted(measured, key=lambda m: m.relevance):
        print(f"{m.relevance:.4f} (mean {m.mean:.4f}) {'actionable' if m.item.actionable else 'contentless'}: {m.item}")
    calibrated = calibrate(measured, settings.policy.min_relevance)
    old = calibrate(measured, OLD_SETTING, mean=True)
    print(f"min_relevance {calibrated.threshold}: precision {calibrated.precision:.2f}, recall {calibrated.recall:.2f};"
          f" before (mean, {OLD_SETTING}): precision {old.precision:.2f}, recall {old.recall:.2f}")
    assert calibrated.precision >= PRECISION_FLOOR and calibrated.recall >= RECALL_FLOOR
    readme = next(m for m in measured if (m.item.plan, m.item.feedback) == README_EXAMPLE)
    assert readme.relevance >= settings.policy.min_relevance, readme
    # The floors are what the check before the calibration failed: it refused the README's example.
    assert old.recall < RECALL_FLOOR and readme.mean < OLD_SETTING
