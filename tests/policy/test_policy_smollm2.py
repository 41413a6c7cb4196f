"""The real planner, SmolLM2-135M-Instruct: SDPO on the feedback "always include an ablation of
each component" raises this user's probe margin on held-out prompts; a control user, trained the
same way on other feedback, gets no such rise; feedback with nothing in it is flagged.

The probe pairs are written by hand for this feedback, on prompts the training never saw, and the
consistent plan paraphrases the feedback rather than quoting it.
"""

import hashlib

import pytest

from nanoresearch.config import load_settings
from nanoresearch.llm.local import load_model
from nanoresearch.policy.adapters import load_planner, policy_paths
from nanoresearch.policy.checks import encode_pairs, margins, plan_json, probe_messages
from nanoresearch.policy.metrics import ProbePair, ProbeSet
from nanoresearch.policy.train import train_user
from tiny_planner import record_feedback

pytestmark = pytest.mark.slow

ABLATION = "always include an ablation of each component"
OTHER = "use at most a quarter of the remaining budget"
TRAINING = [
    ("improve handwritten digit classification accuracy",
     '{"objectives": ["train a small convolutional network on the digits"], "constraints": ["use three seeds"], "budget_share": "50%"}'),
    ("make a small transformer train faster on text classification",
     '{"objectives": ["tune the learning rate schedule of the transformer"], "constraints": ["keep the model size fixed"], "budget_share": "50%"}'),
]
BLUEPRINT = "write the experiment blueprint: datasets, baselines, method, metrics, ablations, seeds"
HELD_OUT = [
    ("detect anomalies in server logs with a small autoencoder", "planning", BLUEPRINT,
     "train the autoencoder and compare it with the baseline detector"),
    ("improve the sample efficiency of a reinforcement learning agent", "experiment",
     "run the closed trial loop within the budget, then the run matrix over seeds", "run the agent and the baseline on every grid world"),
    ("compress a sentiment classifier by pruning its weights", "planning", BLUEPRINT, "compare the pruned classifier with the full one"),
]
CONSISTENT = "run an ablation of each component of the method"
INCONSISTENT = "compare only the full method against the baseline"
# The control pair differs from the user's pair only in its consistent line, a preference nobody
# stated: against the same alternative, that line should not gain as the ablation line does.
UNRELATED = "report the wall-clock time of every run"


def hand_written_probes() -> ProbeSet:
    def pairs(consistent: str) -> list[ProbePair]:
        return [ProbePair(messages=probe_messages(goal, stage, description), consistent=plan_json(objective, consistent),
                          inconsistent=plan_json(objective, INCONSISTENT)) for goal, stage, description, objective in HELD_OUT]

    return ProbeSet(method="hand-written for the ablation feedback", user=pairs(CONSISTENT), control=pairs(UNRELATED))


def digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_sdpo_raises_the_margin_for_the_user_and_not_for_a_control_user(home, store):
    settings = load_settings()  # the default [policy]: r 16, full_kl against the base teacher
    lm = load_model("smollm2-135m", settings.cache_dir, engine="transformers")  # for its tokenizer
    for user, text in (("alice", ABLATION), ("bob", OTHER)):
        for goal, plan in TRAINING:
            record_feedback(store, lm, user, "smollm2-135m", goal, plan, text)
    record_feedback(store, lm, "carol", "smollm2-135m", TRAINING[0][0], TRAINING[0][1], "ok")
    probes = hand_written_probes()

    alice = train_user(settings, store, "alice", probes=probes)
    assert alice.status == "trained", alice.message
    a = alice.metrics
    print(f"\nalice: margin {a.before.margin:+.4f} -> {a.after.margin:+.4f}, control {a.before.control_margin:+.4f}"
          f" -> {a.after.control_margin:+.4f}, gap {a.before.gap} -> {a.after.gap}, drift {a.after.drift},"
          f" relevance {a.relevance}, {a.training.seconds_per_step:.2f} s/step, round {a.seconds:.0f} s")
    assert a.margin_change > 0.03  # the plan with an ablation became relatively more likely
    assert abs(a.control_change) < a.margin_change / 2  # a preference alice never stated moved far less
    assert a.after.gap.kl < 0.5 * a.before.gap.kl and a.after.gap.abs_log_ratio < a.before.gap.abs_log_ratio
    alice_files = digest(policy_paths(settings, "alice").root)

    bob = train_user(settings, store, "bob", probes=probes)
    b = bob.metrics
    print(f"bob: margin {b.before.margin:+.4f} -> {b.after.margin:+.4f}, relevance {b.relevance}")
    assert bob.status == "trained" and b.before.margin == pytest.approx(a.before.margin, abs=1e-4)
    assert b.margin_change < 0.01 and abs(b.margin_change) < a.margin_change / 2
    assert digest(policy_paths(settings, "alice").root) == alice_files

    carol = train_user(settings, store, "carol", probes=probes)
    print(f"carol: {carol.status}, relevance {[f.relevance for f in carol.flagged]}")
    assert carol.status == "flagged" and carol.flagged[0].relevance < settings.policy.min_relevance

    # The next run's planner is alice's v1, and scores the probes as the check did.
    planner = load_planner(settings, "alice")
    assert planner.version == 1
    margin, _ = margins(planner.lm.model, encode_pairs(planner.lm, planner.lm.model, probes.user))
    assert margin == pytest.approx(a.after.margin, abs=1e-3)
