"""Training rounds from the store on a tiny random planner: versions, metrics, replay, flags,
automatic rollback, rollback to exact outputs, corrupt adapters, isolation between users."""

import hashlib
import json

import pytest

from nanoresearch.llm.local import generate_text
from nanoresearch.llm.local_model import Sampling, prompt_ids
from nanoresearch.policy.adapters import (
    AdapterError,
    active_label,
    active_version,
    load_planner,
    planner_model,
    policy_paths,
    read_meta,
    reset,
    rollback,
)
from nanoresearch.policy.metrics import UpdateMetrics
from nanoresearch.policy.train import after_feedback, at_end_of_run, train_user
from nanoresearch.policy.triples import ReplayBuffer
from tiny_planner import planner_prompt, record_feedback

PLAN = '{"objectives": ["train a small network"], "constraints": ["use three seeds"], "budget_share": "50%"}'
ABLATION = "always include an ablation of each component"


def feedback(store, lm, settings, user="alice", text=ABLATION, goal="improve digit classification", **kw):
    return record_feedback(store, lm, user, settings.stage("planner").model, goal, PLAN, text, **kw)


def greedy(settings, user="alice", tokens=12):
    lm = planner_model(settings, user)
    return generate_text(lm, prompt_ids(lm, planner_prompt("a goal never trained on")), tokens, Sampling())[0]


def folder_digest(path):
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.rglob("*")) if p.is_file()}


def test_a_round_writes_an_active_version_with_its_metrics(policy_settings, store, tiny_lm):
    fid = feedback(store, tiny_lm, policy_settings)
    result = train_user(policy_settings, store)
    assert result.status == "trained" and result.version == 1
    paths = policy_paths(policy_settings)
    assert active_version(paths) == 1
    folder = paths.version(1)
    assert {"adapter_model.safetensors", "adapter_config.json", "version.json", "metrics.json"} <= {p.name for p in folder.iterdir()}
    meta = read_meta(paths, 1)
    assert meta.parent is None and meta.trained == [fid] and meta.status == "kept" and meta.lora.r == 4
    metrics = UpdateMetrics.model_validate_json((folder / "metrics.json").read_text())
    assert metrics.after.gap.kl < metrics.before.gap.kl  # the student moved toward the teacher
    assert metrics.before.drift.kl_to_base == pytest.approx(0.0, abs=1e-6)  # a new adapter starts as the base
    assert metrics.after.drift.kl_to_base > 0
    assert metrics.relevance[fid] > 0 and metrics.training.steps == 6
    assert len(metrics.probes) > 0 and metrics.margin_change == metrics.after.margin - metrics.before.margin
    # The feedback is dealt with: a second round has nothing to do.
    assert train_user(policy_settings, store).status == "nothing"
    assert ReplayBuffer(paths.buffer, 64).state.outcomes[fid] == "trained in v1"


def test_later_rounds_build_on_the_active_version_and_replay_the_buffer(policy_settings, store, tiny_lm):
    first = feedback(store, tiny_lm, policy_settings)
    train_user(policy_settings, store)
    second = feedback(store, tiny_lm, policy_settings, text="report every seed", goal="a second goal")
    result = train_user(policy_settings, store)
    meta = read_meta(policy_paths(policy_settings), 2)
    assert result.version == 2 and meta.parent == 1
    assert meta.trained == [second] and meta.replayed == [first]
    assert result.metrics.before.drift.kl_to_base > 0  # v2 started from v1, not from the base


def test_the_replay_buffer_is_capped_and_keeps_the_newest(policy_settings, store, tiny_lm):
    settings = policy_settings.model_copy(update={"policy": policy_settings.policy.model_copy(update={"buffer_size": 2})})
    ids = [feedback(store, tiny_lm, settings, text=f"feedback number {i} about seeds", goal=f"goal {i}") for i in range(3)]
    train_user(settings, store)
    buffer = ReplayBuffer(policy_paths(settings).buffer, 2)
    assert [t.feedback_id for t in buffer.triples] == ids[1:]
    assert set(buffer.state.outcomes) == set(ids)
    # Persisted: a fresh buffer object reads the same triples, with the exact output ids.
    assert buffer.triples[0].output_ids == tiny_lm.tokenizer(PLAN, add_special_tokens=False)["input_ids"]


def test_feedback_the_teacher_cannot_use_is_flagged_not_trained(policy_settings, store, tiny_lm):
    settings = policy_settings.model_copy(update={"policy": policy_settings.policy.model_copy(update={"min_relevance": 1e6})})
    fid = feedback(store, tiny_lm, settings, text="ok")
    result = train_user(settings, store)
    assert result.status == "flagged" and result.version is None
    assert result.flagged[0].feedback_id == fid and "cannot use" in result.message
    assert active_version(policy_paths(settings)) is None
    assert not policy_paths(settings).versions.exists()
    assert train_user(settings, store).status == "nothing"  # remembered, not retried silently


def test_feedback_without_token_ids_or_from_another_model_is_skipped(policy_settings, store, tiny_lm):
    no_ids = feedback(store, tiny_lm, policy_settings, output_ids=[])
    other = record_feedback(store, tiny_lm, "alice", "some-other-model", "goal", PLAN, ABLATION)
    # A plan from an earlier adapter version of this planner is a triple like any other.
    label = f"{policy_settings.stage('planner').model}+lora:v3"
    versioned = record_feedback(store, tiny_lm, "alice", label, "goal", PLAN, ABLATION)
    result = train_user(policy_settings, store)
    reasons = {s.feedback_id: s.reason for s in result.skipped}
    assert result.status == "trained" and result.metrics.trained == [versioned]
    assert "no token ids" in reasons[no_ids] and "some-other-model" in reasons[other]


def test_a_changed_chat_template_is_detected_not_trained_on(policy_settings, store, tiny_lm):
    fid = feedback(store, tiny_lm, policy_settings)
    store._conn.execute("UPDATE stage_plans SET prompt_ids_json = '[1, 2, 3]'")
    store._conn.commit()
    result = train_user(policy_settings, store)
    assert result.status == "nothing" and result.version is None
    assert any(s.feedback_id == fid and "renders to other ids" in s.reason for s in result.skipped)


def test_too_much_drift_rolls_the_update_back_and_says_so(policy_settings, store, tiny_lm):
    feedback(store, tiny_lm, policy_settings)
    train_user(policy_settings, store)
    strict = policy_settings.model_copy(update={"policy": policy_settings.policy.model_copy(update={"drift_kl_max": 1e-6})})
    feedback(store, tiny_lm, strict, text="report every seed")
    result = train_user(strict, store)
    paths = policy_paths(strict)
    assert result.status == "rolled_back" and result.version == 2
    assert "rolled back automatically" in result.message and "KL to the base" in result.message
    assert active_version(paths) == 1  # the previous adapter stays in use
    assert read_meta(paths, 2).status == "rolled_back"
    assert UpdateMetrics.model_validate_json((paths.version(2) / "metrics.json").read_text()).rolled_back


def test_rollback_restores_the_exact_previous_outputs(policy_settings, store, tiny_lm):
    base_output = greedy(policy_settings)
    feedback(store, tiny_lm, policy_settings)
    train_user(policy_settings, store)
    v1_output = greedy(policy_settings)
    feedback(store, tiny_lm, policy_settings, text="report every seed and keep the budget small")
    train_user(policy_settings, store)
    v2_output = greedy(policy_settings)
    assert len({tuple(base_output), tuple(v1_output), tuple(v2_output)}) == 3  # each version plans differently
    rollback(policy_settings, 1)
    assert greedy(policy_settings) == v1_output
    assert load_planner(policy_settings).version == 1
    assert active_label(policy_settings) == "v1"
    reset(policy_settings)
    assert greedy(policy_settings) == base_output and load_planner(policy_settings).version is None
    assert active_label(policy_settings) == "base"
    rollback(policy_settings, 2)
    assert greedy(policy_settings) == v2_output


def test_a_corrupt_adapter_falls_back_to_the_base_planner_with_a_clear_message(policy_settings, store, tiny_lm):
    base_output = greedy(policy_settings)
    feedback(store, tiny_lm, policy_settings)
    train_user(policy_settings, store)
    (policy_paths(policy_settings).version(1) / "adapter_model.safetensors").write_bytes(b"not a safetensors file")
    planner = load_planner(policy_settings)
    assert planner.version is None and "v1 cannot be loaded" in planner.problem
    assert greedy(policy_settings) == base_output
    with pytest.raises(AdapterError, match="cannot be loaded"):
        rollback(policy_settings, 1)
    with pytest.raises(AdapterError, match="v7 does not exist"):
        rollback(policy_settings, 7)


def test_an_adapter_for_another_base_model_is_refused(policy_settings, store, tiny_lm):
    feedback(store, tiny_lm, policy_settings)
    train_user(policy_settings, store)
    meta_file = policy_paths(policy_settings).version(1) / "version.json"
    meta = json.loads(meta_file.read_text())
    meta["base_fingerprint"] = "0123456789abcdef"
    meta_file.write_text(json.dumps(meta))
    planner = load_planner(policy_settings)
    assert planner.version is None and "was trained on" in planner.problem
    feedback(store, tiny_lm, policy_settings, text="report every seed")
    with pytest.raises(AdapterError, match="was trained on"):
        train_user(policy_settings, store)  # never build on top of it


def test_training_one_user_never_touches_another(policy_settings, store, tiny_lm):
    feedback(store, tiny_lm, policy_settings, user="alice")
    train_user(policy_settings, store, "alice")
    alice = policy_paths(policy_settings, "alice").root
    before = folder_digest(alice)
    alice_output = greedy(policy_settings, "alice")
    feedback(store, tiny_lm, policy_settings, user="bob", text="keep the budget small")
    assert train_user(policy_settings, store, "bob").version == 1
    bob = load_planner(policy_settings, "bob")
    assert bob.version == 1 and bob.lm is not load_planner(policy_settings, "alice").lm
    assert folder_digest(alice) == before
    assert greedy(policy_settings, "alice") == alice_output
    # Bob's round trained on bob's feedback only.
    assert read_meta(policy_paths(policy_settings, "bob"), 1).replayed == []
    assert train_user(policy_settings, store, "carol").status == "nothing"


def test_the_shared_base_model_never_gets_lora_layers(policy_settings, store, tiny_lm):
    shared = load_planner(policy_settings, "nobody").lm
    feedback(store, tiny_lm, policy_settings)
    train_user(policy_settings, store)
    load_planner(policy_settings)
    assert not any("lora" in name for name, _ in shared.model.named_modules())
    assert load_planner(policy_settings, "nobody").lm is shared


def test_end_of_run_trains_and_manual_does_not(policy_settings, store, tiny_lm):
    feedback(store, tiny_lm, policy_settings)
    manual = policy_settings.model_copy(update={"policy": policy_settings.policy.model_copy(update={"when": "manual"})})
    assert at_end_of_run(manual, store) == []
    results = at_end_of_run(policy_settings, store)  # the default: end_of_run
    assert [r.status for r in results] == ["trained"]


def test_background_training_runs_after_feedback_and_the_run_end_waits_for_it(policy_settings, store, tiny_lm):
    settings = policy_settings.model_copy(update={"policy": policy_settings.policy.model_copy(update={"when": "background"})})
    feedback(store, tiny_lm, settings)
    job = after_feedback(settings)
    results = at_end_of_run(settings, store)
    assert not job.thread.is_alive() and job.errors == []
    assert [r.status for r in results] == ["trained"] and load_planner(settings).version == 1
    assert after_feedback(policy_settings) is None  # end_of_run: nothing starts on feedback
