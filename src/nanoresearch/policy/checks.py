"""What an update did, measured before and after every round (SDPO.md, "measure, don't assume").

- gap: on the trained triples, mean |log q - log s| at the realised tokens and the full-vocabulary
  KL(s || q) between student and teacher. Distillation should shrink both.
- probe margin: on held-out planner prompts, the length-normalised log-prob of a plan consistent
  with the feedback minus that of a plan that is not. It should rise for this user; the control
  margin (the same prompts, a plan stating something the user never asked for) should stay flat.
- drift: KL(adapter || base) per token on the held-out prompts' plans, and the perplexity of a
  small generic text (package data) relative to the base. Past `policy.drift_*` the update is
  rolled back.
- relevance, before training: KL(teacher shown F || teacher shown a contentless reply) at each token
  of y, averaged over the 8 tokens it moves most. Any comment at all moves a small model's next-token
  distribution; only the part beyond a placebo is something F teaches. Below `policy.min_relevance`
  the teacher cannot use F: flagged, not trained. The threshold is calibrated on a labelled set
  (calibration.py, bench/bench_sdpo_relevance.py).

Probe pairs come from `derive_probes` unless the caller brings its own. The LLM-free method: for
each held-out prompt (data/probes.json), the consistent plan states the feedback itself as a
constraint and the inconsistent plan states a neutral constraint instead; everything else in the
two plans (objective, budget share, JSON layout as the planner writes it) is identical. So the
margin measures how much more readily this user's planner writes the feedback into a plan for an
unseen goal. The control pair swaps the feedback for a preference the user never stated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

import torch

from nanoresearch.llm.local_model import LoadedModel, prompt_ids
from nanoresearch.llm.provider import Message
from nanoresearch.policy.metrics import Drift, Gap, ProbePair, ProbeSet, Snapshot
from nanoresearch.policy.prompt import SYSTEM
from nanoresearch.policy.sdpo import (
    Example,
    LossConfig,
    adapter_disabled,
    loss_mask,
    response_log_probs,
    reverse_kl,
    sdpo_loss,
    teacher_log_probs,
)
from nanoresearch.policy.triples import end_of_reply

GENERIC_TOKENS = 256  # enough of the generic text for a stable perplexity
RELEVANT_TOKENS = 8  # the plan tokens a comment's relevance is measured on (see `peak`)


# probes


def probe_data() -> dict[str, Any]:
    return json.loads(resources.files("nanoresearch.policy").joinpath("data/probes.json").read_text(encoding="utf-8"))


def generic_text() -> str:
    return resources.files("nanoresearch.policy").joinpath("data/generic.txt").read_text(encoding="utf-8")


def probe_messages(goal: str, stage: str, description: str) -> list[dict[str, str]]:
    """A planner prompt laid out like the pipeline's, for a run with no history and no feedback."""
    user = "\n\n".join([
        f"Research goal: {goal}", f"Stage: {stage}: {description}", "Done so far:\n(nothing yet)",
        "User feedback in this run:\n(none)", "Budget left: trials 10, wall_s 1200",
    ])
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def plan_json(objective: str, constraint: str) -> str:
    """A stage plan as the planner's JSON decoding writes it."""
    return json.dumps({"objectives": [objective], "constraints": [constraint[:160]], "budget_share": "50%"})


def derive_probes(feedback: list[str]) -> ProbeSet:
    """LLM-free probe pairs for these feedback texts (see the module docstring)."""
    data = probe_data()
    control = _unrelated(data["control"], feedback)
    user, controls = [], []
    for prompt in data["prompts"]:
        messages = probe_messages(prompt["goal"], prompt["stage"], prompt["description"])
        neutral = plan_json(prompt["objective"], data["neutral"])
        for text in feedback:
            user.append(ProbePair(messages=messages, consistent=plan_json(prompt["objective"], text), inconsistent=neutral))
        controls.append(ProbePair(messages=messages, consistent=plan_json(prompt["objective"], control), inconsistent=neutral))
    method = f"derived: feedback vs {data['neutral']!r} as a constraint; control {control!r}"
    return ProbeSet(method=method, user=user, control=controls)


def _unrelated(candidates: list[str], feedback: list[str]) -> str:
    """The first control preference sharing no word of four letters or more with the feedback."""
    words = {w for text in feedback for w in text.lower().split() if len(w) >= 4}
    for candidate in candidates:
        if not words & {w for w in candidate.lower().split() if len(w) >= 4}:
            return candidate
    return candidates[0]


@dataclass(frozen=True)
class ProbeText:
    prompt: list[int]
    plan: list[int]  # the plan's ids, then EOS
    base: torch.Tensor  # the base model's log-probs over the plan: fixed, so computed once per round


@dataclass(frozen=True)
class EncodedPair:
    consistent: ProbeText
    inconsistent: ProbeText


def encode_pairs(lm: LoadedModel, model: Any, pairs: list[ProbePair]) -> list[EncodedPair]:
    def text(prompt: list[int], plan: str) -> ProbeText:
        ids = [*lm.tokenizer(plan, add_special_tokens=False)["input_ids"], end_of_reply(lm)]
        with torch.no_grad(), adapter_disabled(model):
            return ProbeText(prompt, ids, response_log_probs(model, prompt, ids))

    encoded = []
    for pair in pairs:
        prompt = prompt_ids(lm, [Message(**m) for m in pair.messages])
        encoded.append(EncodedPair(text(prompt, pair.consistent), text(prompt, pair.inconsistent)))
    return encoded


# measurements (no gradients)


def example_gap(model: Any, example: Example, cfg: LossConfig) -> Gap:
    with torch.no_grad():
        student = response_log_probs(model, example.student_ids, example.response_ids)
        _, stats = sdpo_loss(student, teacher_log_probs(model, example, cfg), example.response_ids, cfg)
    return Gap(abs_log_ratio=stats.abs_advantage, kl=stats.kl)


def gap(model: Any, examples: list[Example], cfg: LossConfig) -> Gap:
    gaps = [example_gap(model, e, cfg) for e in examples]
    return Gap(abs_log_ratio=_mean(g.abs_log_ratio for g in gaps), kl=_mean(g.kl for g in gaps))


def relevance(model: Any, example: Example, placebo: Example, cfg: LossConfig) -> float:
    """How much F moves the teacher beyond a contentless reply: see `peak`."""
    return peak(token_relevance(model, example, teacher_log_probs(model, placebo, cfg), cfg))


def token_relevance(model: Any, example: Example, placebo_log_probs: torch.Tensor, cfg: LossConfig) -> torch.Tensor:
    """KL(teacher with F || teacher with the placebo reply) at each of y's loss positions. The placebo's
    log-probs are passed in, so several comments on one plan share them."""
    with_feedback = teacher_log_probs(model, example, cfg)
    mask = loss_mask(len(example.response_ids), cfg.skip_tokens)
    return reverse_kl(with_feedback, placebo_log_probs)[mask]


def peak(kl: torch.Tensor) -> float:
    """The mean of the RELEVANT_TOKENS largest per-token values. A comment moves the few tokens it is
    about (a constraint, a knob); the mean over every token of y divided that by the plan's length, so
    on the demo's 284-token plan "always include an ablation of each component" scored below "nice work,
    thank you" on a 35-token plan (calibration.py)."""
    return float(kl.topk(min(RELEVANT_TOKENS, len(kl))).values.mean())


@dataclass(frozen=True)
class Scored:
    log_prob: float  # mean log-probability of the plan's tokens
    kl_to_base: float  # mean KL(model || base) over the plan's positions


def score(model: Any, text: ProbeText) -> Scored:
    with torch.no_grad():
        own = response_log_probs(model, text.prompt, text.plan)
    tokens = own[torch.arange(len(text.plan)), torch.tensor(text.plan)]
    return Scored(float(tokens.mean()), float(reverse_kl(own, text.base).mean()))


def margins(model: Any, pairs: list[EncodedPair]) -> tuple[float, float]:
    """(mean margin consistent - inconsistent, mean KL to the base over both plans)."""
    values, kls = [], []
    for pair in pairs:
        good, bad = score(model, pair.consistent), score(model, pair.inconsistent)
        values.append(good.log_prob - bad.log_prob)
        kls += [good.kl_to_base, bad.kl_to_base]
    return _mean(values), _mean(kls)


def generic_ids(lm: LoadedModel) -> list[int]:
    return lm.tokenizer(generic_text(), add_special_tokens=False)["input_ids"][:GENERIC_TOKENS]


def perplexity(model: Any, ids: list[int], base: bool = False) -> float:
    with torch.no_grad():
        if base:
            with adapter_disabled(model):
                log_probs = response_log_probs(model, ids[:1], ids[1:])
        else:
            log_probs = response_log_probs(model, ids[:1], ids[1:])
    tokens = log_probs[torch.arange(len(ids) - 1), torch.tensor(ids[1:])]
    return float(torch.exp(-tokens.mean()))


@dataclass
class Probes:
    """Everything a snapshot needs besides the model, encoded once per round."""

    user: list[EncodedPair]
    control: list[EncodedPair]
    generic: list[int]
    base_perplexity: float


def prepare_probes(lm: LoadedModel, model: Any, probes: ProbeSet) -> Probes:
    generic = generic_ids(lm)
    user, control = encode_pairs(lm, model, probes.user), encode_pairs(lm, model, probes.control)
    return Probes(user, control, generic, perplexity(model, generic, base=True))


def snapshot(model: Any, examples: list[Example], probes: Probes, cfg: LossConfig) -> Snapshot:
    margin, kl_user = margins(model, probes.user)
    control, kl_control = margins(model, probes.control)
    drift = Drift(
        kl_to_base=(kl_user * len(probes.user) + kl_control * len(probes.control)) / (len(probes.user) + len(probes.control)),
        perplexity=perplexity(model, probes.generic), base_perplexity=probes.base_perplexity,
    )
    return Snapshot(gap=gap(model, examples, cfg), margin=margin, control_margin=control, drift=drift)


def drift_problem(drift: Drift, kl_max: float, ratio_max: float) -> str:
    """Why the drift is too large, or "" when it is within the thresholds."""
    if drift.kl_to_base > kl_max:
        return f"KL to the base on held-out planner prompts is {drift.kl_to_base:.3f} nats/token (limit {kl_max})"
    if drift.perplexity_ratio > ratio_max:
        return f"perplexity on generic text rose {drift.perplexity_ratio:.2f}x over the base (limit {ratio_max}x)"
    return ""


def _mean(values: Any) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0
