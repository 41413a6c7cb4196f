"""SDPO: distil the planner shown the user's feedback (the teacher) into the planner without it.

One example is (x, y, F): the planner prompt x, the exact token ids y the planner produced (plus
EOS), and the feedback F. The teacher scores the same ids y with F appended to the prompt in a
hindsight block; the student is the adapter without F. See SDPO.md for the derivation.

- teacher "base": the adapter disabled (peft's `disable_adapter()`), fixed for the whole round, so
  its log-probs are computed once per example and reused; "live": the adapter being trained,
  under no_grad, recomputed each step.
- loss "sampled": L = -mean_t stopgrad(A_t) log s_t(y_t), A_t = clip(log q_t(y_t) - log s_t(y_t), ±c);
  "full_kl": L = mean_t KL(s_t || q_t) over the whole vocabulary (reverse KL).
- anchor: + beta * mean_t KL(s_t || base_t), the base being the adapter disabled on the student prompt.

Batch size is 1 per forward pass (no padding on CPU); a step accumulates gradients over
`accumulate` examples, then clips the gradient norm and takes one AdamW step.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import BaseModel

# Fixed log-probs (base teacher, anchor) kept between steps of a round, at most this many bytes.
# A full-vocabulary row for SmolLM2 is 49152 floats (192 KiB), so 256 response tokens take 48 MiB.
TARGET_CACHE_BYTES = 1 << 30


@dataclass(frozen=True)
class Example:
    student_ids: list[int]  # x, rendered with the chat template
    teacher_ids: list[int]  # x with the hindsight block carrying F
    response_ids: list[int]  # y as produced, then EOS


@dataclass(frozen=True)
class LossConfig:
    loss: str = "full_kl"  # "sampled" | "full_kl"
    teacher: str = "base"  # "base" | "live"
    clip: float = 2.0
    skip_tokens: int = 2
    anchor_beta: float = 0.0

    @classmethod
    def of(cls, policy: Any) -> LossConfig:
        """From `PolicySettings`."""
        return cls(policy.loss, policy.teacher, policy.clip, policy.skip_tokens, policy.anchor_beta)


class LossStats(BaseModel):
    loss: float
    abs_advantage: float  # mean |log q - log s| at the realised tokens, before clipping
    kl: float  # mean full-vocabulary KL(s || q)
    anchor_kl: float = 0.0


class StepStats(LossStats):
    step: int
    grad_norm: float
    seconds: float


# log-probabilities


def response_log_probs(model: Any, prompt: list[int], response: list[int]) -> torch.Tensor:
    """Row t: log-probabilities over the vocabulary for response[t], given prompt + response[:t]."""
    ids = torch.tensor([prompt + response[:-1]])
    # logits_to_keep skips the prompt positions' output projection (a vocabulary-wide matmul each).
    logits = model(input_ids=ids, logits_to_keep=len(response)).logits[0]
    return logits.float().log_softmax(-1)


@contextmanager
def adapter_disabled(model: Any) -> Iterator[None]:
    """The base model: the adapter switched off when there is one, else the model as it is."""
    if hasattr(model, "disable_adapter"):
        with model.disable_adapter():
            yield
    else:
        yield


def teacher_log_probs(model: Any, example: Example, cfg: LossConfig) -> torch.Tensor:
    with torch.no_grad():
        if cfg.teacher == "base":
            with adapter_disabled(model):
                return response_log_probs(model, example.teacher_ids, example.response_ids)
        return response_log_probs(model, example.teacher_ids, example.response_ids)


def base_log_probs(model: Any, prompt: list[int], response: list[int]) -> torch.Tensor:
    with torch.no_grad(), adapter_disabled(model):
        return response_log_probs(model, prompt, response)


# the loss


def loss_mask(length: int, skip: int) -> torch.Tensor:
    """Positions that carry loss: all but the first `skip`, and always at least the last (EOS)."""
    return torch.arange(length) >= min(skip, length - 1)


def reverse_kl(p_log: torch.Tensor, q_log: torch.Tensor) -> torch.Tensor:
    """Per row: KL(p || q) = sum_v p(v) (log p(v) - log q(v))."""
    return (p_log.exp() * (p_log - q_log)).sum(-1)


def sdpo_loss(
    student: torch.Tensor, teacher: torch.Tensor, response: list[int], cfg: LossConfig, base: torch.Tensor | None = None
) -> tuple[torch.Tensor, LossStats]:
    """The SDPO loss of one example from the student's and teacher's log-probs (T x V each)."""
    mask = loss_mask(len(response), cfg.skip_tokens)
    rows = torch.arange(len(response))
    tokens = torch.tensor(response)
    s_tok, q_tok = student[rows, tokens], teacher[rows, tokens]
    gap = q_tok - s_tok.detach()
    kl = reverse_kl(student, teacher)
    if cfg.loss == "sampled":
        per_token = -(gap.clamp(-cfg.clip, cfg.clip) * s_tok)
    else:
        per_token = kl
    anchor = torch.zeros(())
    if cfg.anchor_beta > 0 and base is not None:
        anchor = reverse_kl(student, base)[mask].mean()
    loss = per_token[mask].mean() + cfg.anchor_beta * anchor
    stats = LossStats(
        loss=float(loss.detach()), abs_advantage=float(gap.abs()[mask].mean()),
        kl=float(kl.detach()[mask].mean()), anchor_kl=float(anchor.detach()),
    )
    return loss, stats


# one step, one round


class FixedTargets:
    """Log-probs of the fixed models (the base teacher, the anchor's base) for each example of a round.

    They do not change while the adapter trains, so they are computed once and reused, within a
    memory budget; past it they are recomputed each step.
    """

    def __init__(self, max_bytes: int = TARGET_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.used = 0
        self.cache: dict[tuple[str, int], torch.Tensor] = {}

    def teacher(self, model: Any, index: int, example: Example, cfg: LossConfig) -> torch.Tensor:
        if cfg.teacher == "live":
            return teacher_log_probs(model, example, cfg)
        return self._get(("teacher", index), lambda: teacher_log_probs(model, example, cfg))

    def base(self, model: Any, index: int, example: Example, cfg: LossConfig) -> torch.Tensor | None:
        if cfg.anchor_beta <= 0:
            return None
        return self._get(("base", index), lambda: base_log_probs(model, example.student_ids, example.response_ids))

    def _get(self, key: tuple[str, int], compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        if key in self.cache:
            return self.cache[key]
        value = compute()
        size = value.numel() * value.element_size()
        if self.used + size <= self.max_bytes:
            self.cache[key] = value
            self.used += size
        return value


def trainable_parameters(model: Any) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def make_optimizer(model: Any, lr: float) -> torch.optim.Optimizer:
    # No weight decay: it would pull the LoRA factors toward zero between feedback rounds.
    return torch.optim.AdamW(trainable_parameters(model), lr=lr, weight_decay=0.0)


def sdpo_step(
    model: Any,
    optimizer: torch.optim.Optimizer,
    batch: list[tuple[int, Example]],
    cfg: LossConfig,
    grad_clip: float,
    targets: FixedTargets,
    step: int = 0,
) -> StepStats:
    """One optimizer step over `batch` (index in the round, example), one example per forward."""
    started = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    stats: list[LossStats] = []
    for index, example in batch:
        teacher = targets.teacher(model, index, example, cfg)
        base = targets.base(model, index, example, cfg)
        student = response_log_probs(model, example.student_ids, example.response_ids)
        loss, example_stats = sdpo_loss(student, teacher, example.response_ids, cfg, base)
        (loss / len(batch)).backward()
        stats.append(example_stats)
    norm = torch.nn.utils.clip_grad_norm_(trainable_parameters(model), grad_clip)
    optimizer.step()
    mean = {k: sum(getattr(s, k) for s in stats) / len(stats) for k in LossStats.model_fields}
    return StepStats(**mean, step=step, grad_norm=float(norm), seconds=time.perf_counter() - started)


def batches(count: int, size: int, steps: int, seed: int) -> Iterator[list[int]]:
    """Example indices for each step: shuffled passes over the round, `size` per step."""
    rng = random.Random(seed)
    order: list[int] = []
    for _ in range(steps):
        batch: list[int] = []
        while len(batch) < min(size, count):
            if not order:
                order = rng.sample(range(count), count)
            batch.append(order.pop())
        yield batch


def train_round(
    model: Any,
    examples: list[Example],
    cfg: LossConfig,
    *,
    steps: int,
    lr: float,
    grad_clip: float = 1.0,
    accumulate: int = 1,
    seed: int = 0,
    on_step: Callable[[StepStats], None] | None = None,
) -> list[StepStats]:
    """`steps` SDPO steps over `examples`; returns each step's figures."""
    torch.manual_seed(seed)
    optimizer = make_optimizer(model, lr)
    targets = FixedTargets()
    history = []
    for step, indices in enumerate(batches(len(examples), accumulate, steps, seed), start=1):
        stats = sdpo_step(model, optimizer, [(i, examples[i]) for i in indices], cfg, grad_clip, targets, step)
        history.append(stats)
        if on_step is not None:
            on_step(stats)
    return history
