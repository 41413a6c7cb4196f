"""`nanoresearch policy ...` in process, on the tiny random planner."""

import json

import pytest

from helpers import run_cli
from nanoresearch.config import load_settings
from nanoresearch.policy.adapters import active_version, policy_paths
from tiny_planner import record_feedback

PLAN = '{"objectives": ["train a small network"], "constraints": [], "budget_share": "50%"}'


@pytest.fixture
def cli_env(monkeypatch, tiny_planner_dir):
    for name, value in {
        "STAGES__PLANNER__MODEL": str(tiny_planner_dir), "POLICY__STEPS": "3", "POLICY__LR": "0.02",
        "POLICY__LORA_R": "4", "POLICY__LORA_ALPHA": "8", "POLICY__MIN_RELEVANCE": "0", "POLICY__DRIFT_KL_MAX": "100",
        "POLICY__DRIFT_PPL_RATIO_MAX": "100",
    }.items():
        monkeypatch.setenv(f"NANORESEARCH_{name}", value)
    return load_settings()


def test_train_status_history_rollback_reset(cli_env, store, tiny_lm, capsys, monkeypatch):
    settings = cli_env
    model = settings.stage("planner").model
    record_feedback(store, tiny_lm, "alice", model, "goal one", PLAN, "always include an ablation of each component")

    status = json.loads(run_cli(capsys, monkeypatch, "policy", "status", "--json").out)
    assert status["active"] == "base" and status["pending feedback"] == 1 and status["trains"] == "end_of_run"

    trained = run_cli(capsys, monkeypatch, "policy", "train", "--steps", "2")
    assert trained.code == 0, trained.err
    assert "trained" in trained.out and "v1 is active" in trained.out

    record_feedback(store, tiny_lm, "alice", model, "goal two", PLAN, "report every seed")
    assert run_cli(capsys, monkeypatch, "policy", "train").code == 0
    history = run_cli(capsys, monkeypatch, "policy", "history")
    assert "v1" in history.out and "v2" in history.out and "→" in history.out and "kept" in history.out
    rows = json.loads(run_cli(capsys, monkeypatch, "policy", "history", "--json").out)
    assert [r["version"] for r in rows] == [1, 2] and rows[1]["active"]
    assert rows[1]["meta"]["parent"] == 1 and rows[1]["metrics"]["training"]["steps"] == 3
    assert {"gap", "margin", "control_margin", "drift"} <= set(rows[0]["metrics"]["after"])

    assert run_cli(capsys, monkeypatch, "policy", "rollback", "v1").code == 0
    assert active_version(policy_paths(settings)) == 1
    missing = run_cli(capsys, monkeypatch, "policy", "rollback", "v9")
    assert missing.code == 1 and "v9 does not exist" in missing.err and "Traceback" not in missing.err
    assert run_cli(capsys, monkeypatch, "policy", "rollback", "latest").code == 1

    assert run_cli(capsys, monkeypatch, "policy", "reset").code == 0
    assert json.loads(run_cli(capsys, monkeypatch, "policy", "status", "--json").out)["active"] == "base"
    assert run_cli(capsys, monkeypatch, "policy", "reset", "--purge").code == 0
    assert "no adapter versions yet" in run_cli(capsys, monkeypatch, "policy", "history").out


def test_users_are_kept_apart_on_the_command_line(cli_env, store, tiny_lm, capsys, monkeypatch):
    record_feedback(store, tiny_lm, "bob", cli_env.stage("planner").model, "goal", PLAN, "keep the budget small")
    assert "no new feedback" in run_cli(capsys, monkeypatch, "policy", "train").out  # alice has none
    assert run_cli(capsys, monkeypatch, "--user", "bob", "policy", "train").code == 0
    assert active_version(policy_paths(cli_env, "bob")) == 1
    assert active_version(policy_paths(cli_env, "alice")) is None


def test_a_planner_that_is_not_local_cannot_be_trained(monkeypatch, capsys):
    monkeypatch.setenv("NANORESEARCH_STAGES__PLANNER__ENDPOINT", "openai")
    result = run_cli(capsys, monkeypatch, "policy", "train")
    assert result.code == 1 and "only a local planner" in result.err and "Traceback" not in result.err


def test_unreadable_probe_file_is_a_clear_error(cli_env, tmp_path, capsys, monkeypatch):
    bad = tmp_path / "probes.json"
    bad.write_text("{not json")
    result = run_cli(capsys, monkeypatch, "policy", "train", "--probes", str(bad))
    assert result.code == 1 and "cannot read probe pairs" in result.err
