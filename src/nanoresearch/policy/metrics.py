"""The figures stored with every adapter version (`metrics.json`); no torch, so `policy history` is fast."""

from __future__ import annotations

from pydantic import BaseModel


class ProbePair(BaseModel):
    messages: list[dict[str, str]]  # a planner prompt the user's triples never contained
    consistent: str  # a plan that follows the feedback
    inconsistent: str  # the same plan without it


class ProbeSet(BaseModel):
    method: str
    user: list[ProbePair]
    control: list[ProbePair]


class Gap(BaseModel):
    abs_log_ratio: float  # mean |log q - log s| at the realised tokens
    kl: float  # mean KL(s || q) over the vocabulary


class Drift(BaseModel):
    kl_to_base: float  # nats per token on the held-out plans
    perplexity: float  # of the generic text
    base_perplexity: float

    @property
    def perplexity_ratio(self) -> float:
        return self.perplexity / self.base_perplexity


class Snapshot(BaseModel):
    gap: Gap
    margin: float  # probe margin for the user's feedback
    control_margin: float  # probe margin for a preference the user never stated
    drift: Drift


class Flagged(BaseModel):
    feedback_id: int
    feedback: str
    relevance: float
    reason: str


class Training(BaseModel):
    steps: int
    examples: int  # new triples plus replayed ones
    first_loss: float
    last_loss: float
    seconds_per_step: float
    max_grad_norm: float


class UpdateMetrics(BaseModel):
    version: int
    trained: list[int]  # feedback ids
    replayed: list[int]
    relevance: dict[int, float]  # feedback id -> KL(teacher with F || teacher with a placebo reply)
    flagged: list[Flagged] = []
    probes: str  # how the probe pairs were made
    before: Snapshot
    after: Snapshot
    training: Training
    seconds: float  # the whole round, loading and checks included
    rolled_back: bool = False
    reason: str = ""  # why it was rolled back

    @property
    def margin_change(self) -> float:
        return self.after.margin - self.before.margin

    @property
    def control_change(self) -> float:
        return self.after.control_margin - self.before.control_margin
