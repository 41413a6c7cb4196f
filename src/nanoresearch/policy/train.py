"""One SDPO round for a user: pending feedback -> a checked, versioned adapter (or a flag, or a rollback).

A round: collect the feedback not yet dealt with; drop (and flag) feedback the teacher cannot use;
mix in a few triples from the replay buffer; measure; train; measure again; save the adapter as a
new version with its figures; make it active unless it drifted too far from the base, in which
case the previous adapter stays active and the result says why.

Entry points for the pipeline: `after_feedback` (call when a stage's feedback is stored; trains in
a background thread when `policy.when = "background"`) and `at_end_of_run` (trains when
`policy.when = "end_of_run"`, or waits for a background round). `train_user` runs one round now.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel

from nanoresearch.config import PolicySettings, Settings
from nanoresearch.policy.adapters import (
    LoraShape,
    PlannerBase,
    PolicyPaths,
    VersionMeta,
    active_version,
    attach_adapter,
    check_version,
    fresh_base,
    new_adapter,
    next_version,
    now,
    planner_base,
    policy_paths,
    save_version,
    set_active,
    training_lock,
)
from nanoresearch.policy.metrics import Flagged, ProbeSet, Training, UpdateMetrics
from nanoresearch.policy.triples import (
    PLACEBO,
    ReplayBuffer,
    Skipped,
    Triple,
    TripleError,
    to_example,
    triples_from_store,
)
from nanoresearch.store import Store

log = logging.getLogger(__name__)


class TrainResult(BaseModel):
    status: Literal["trained", "rolled_back", "flagged", "nothing"]
    message: str  # one line for the user
    version: int | None = None  # the version written, kept or rolled back
    metrics: UpdateMetrics | None = None
    flagged: list[Flagged] = []
    skipped: list[Skipped] = []


def train_user(
    settings: Settings, store: Store, user: str | None = None, *, probes: ProbeSet | None = None,
    on_step: Callable[[Any], None] | None = None,
) -> TrainResult:
    """One round on `user`'s pending feedback (default: settings.user)."""
    user = user or settings.user
    paths = policy_paths(settings, user)
    base = planner_base(settings)
    with training_lock(paths):
        return Round(settings, store, user, paths, base).run(probes, on_step)


class Round:
    def __init__(self, settings: Settings, store: Store, user: str, paths: PolicyPaths, base: PlannerBase) -> None:
        self.policy: PolicySettings = settings.policy
        self.settings, self.store, self.user, self.paths, self.base = settings, store, user, paths, base
        self.buffer = ReplayBuffer(paths.buffer, self.policy.buffer_size)
        self.version = next_version(paths)
        self.started = time.perf_counter()

    def run(self, probes: ProbeSet | None, on_step: Callable[[Any], None] | None) -> TrainResult:
        # Feedback the store cannot turn into a triple is reported each time, not remembered: it may
        # become usable (the planner model set back, say).
        triples, skipped = triples_from_store(self.store, self.store.ensure_user(self.user), self.base.spec)
        pending = self.buffer.pending(triples)
        if not pending:
            return TrainResult(status="nothing", message="no new feedback to learn from", skipped=skipped)
        self._threads()
        from nanoresearch.policy.sdpo import LossConfig

        self.cfg = LossConfig.of(self.policy)
        self.lm, self.model, self.parent = self._model()
        usable, examples, relevance, flagged = self._relevant(pending, skipped)
        if not usable:
            self.buffer.save()
            if not flagged:
                return TrainResult(status="nothing", message="no usable feedback to learn from", skipped=skipped)
            return TrainResult(status="flagged", message=_flag_message(flagged, self.policy.min_relevance), flagged=flagged, skipped=skipped)
        result = self._train(usable, examples, relevance, flagged, probes, on_step)
        result.skipped = skipped
        return result

    def _threads(self) -> None:
        import torch

        if self.settings.local.threads and threading.current_thread() is threading.main_thread():
            torch.set_num_threads(self.settings.local.threads)

    def _model(self) -> tuple[Any, Any, int | None]:
        """A private base copy with the active adapter (trainable) or a fresh one."""
        lm = fresh_base(self.base)
        parent = active_version(self.paths)
        if parent is None:
            shape = LoraShape(r=self.policy.lora_r, alpha=self.policy.lora_alpha, targets=self.policy.lora_targets)
            return lm, new_adapter(lm.model, shape, self.policy.seed), None
        check_version(self.paths, parent, self.base)  # training on a broken adapter would only spread it
        return lm, attach_adapter(lm.model, self.paths.version(parent), trainable=True), parent

    def _relevant(self, pending: list[Triple], skipped: list[Skipped]) -> tuple[list[Triple], list[Any], dict[int, float], list[Flagged]]:
        """The pending triples the teacher can use, as examples; the others flagged (and remembered)."""
        from nanoresearch.policy.checks import relevance

        usable, examples, scores, flagged = [], [], {}, []
        for triple in pending:
            try:
                example, placebo = to_example(self.lm, triple), to_example(self.lm, triple, PLACEBO)
            except TripleError as exc:
                skipped.append(Skipped(feedback_id=triple.feedback_id, reason=exc.message))
                self.buffer.record(triple.feedback_id, f"skipped: {exc.message}")
                continue
            scores[triple.feedback_id] = value = relevance(self.model, example, placebo, self.cfg)
            if value < self.policy.min_relevance:
                reason = f"the teacher barely changes with it (relevance {value:.4f} < policy.min_relevance = {self.policy.min_relevance})"
                flagged.append(Flagged(feedback_id=triple.feedback_id, feedback=triple.feedback, relevance=value, reason=reason))
                self.buffer.record(triple.feedback_id, f"flagged: {reason}")
            else:
                usable.append(triple)
                examples.append(example)
        return usable, examples, scores, flagged

    def _replay(self, usable: list[Triple]) -> tuple[list[Triple], list[Any]]:
        rng = random.Random(self.policy.seed * 1000 + self.version)
        chosen = self.buffer.sample(self.policy.replay, rng, exclude={t.feedback_id for t in usable})
        replayed, examples = [], []
        for triple in chosen:
            try:
                examples.append(to_example(self.lm, triple))
                replayed.append(triple)
            except TripleError as exc:  # e.g. made before a template change: it cannot be scored any more
                log.warning("dropping a replayed triple: %s", exc.message)
        return replayed, examples

    def _train(
        self, usable: list[Triple], examples: list[Any], relevance: dict[int, float], flagged: list[Flagged],
        probes: ProbeSet | None, on_step: Callable[[Any], None] | None,
    ) -> TrainResult:
        from nanoresearch.policy.checks import derive_probes, drift_problem, prepare_probes, snapshot
        from nanoresearch.policy.sdpo import train_round

        replayed, replay_examples = self._replay(usable)
        probe_set = probes or derive_probes([t.feedback for t in usable])
        prepared = prepare_probes(self.lm, self.model, probe_set)
        before = snapshot(self.model, examples, prepared, self.cfg)
        steps = train_round(
            self.model, examples + replay_examples, self.cfg, steps=self.policy.steps, lr=self.policy.lr,
            grad_clip=self.policy.grad_clip, accumulate=self.policy.accumulate, seed=self.policy.seed + self.version,
            on_step=on_step,
        )
        after = snapshot(self.model, examples, prepared, self.cfg)
        problem = drift_problem(after.drift, self.policy.drift_kl_max, self.policy.drift_ppl_ratio_max)
        metrics = UpdateMetrics(
            version=self.version, trained=[t.feedback_id for t in usable], replayed=[t.feedback_id for t in replayed],
            relevance=relevance, flagged=flagged, probes=probe_set.method, before=before, after=after,
            training=_training(steps, len(examples) + len(replay_examples)),
            seconds=time.perf_counter() - self.started, rolled_back=bool(problem), reason=problem,
        )
        self._save(metrics, usable, replayed)
        return _result(metrics, flagged, self.policy.min_relevance)

    def _save(self, metrics: UpdateMetrics, usable: list[Triple], replayed: list[Triple]) -> None:
        meta = VersionMeta(
            version=self.version, parent=self.parent, created_at=now(), base_model=self.base.spec,
            base_fingerprint=self.base.fingerprint, lora=_shape(self.model), policy=self.policy.model_dump(),
            trained=metrics.trained, replayed=metrics.replayed,
            status="rolled_back" if metrics.rolled_back else "kept", note=metrics.reason,
        )
        save_version(self.paths, self.model, meta, metrics)
        outcome = f"rolled back in v{self.version}: {metrics.reason}" if metrics.rolled_back else f"trained in v{self.version}"
        for triple in usable:
            self.buffer.record(triple.feedback_id, outcome)
        if not metrics.rolled_back:
            set_active(self.paths, self.version)
            self.buffer.add(usable)
        self.buffer.save()


def _shape(model: Any) -> LoraShape:
    config = model.peft_config["default"]
    return LoraShape(r=config.r, alpha=config.lora_alpha, targets=sorted(config.target_modules))


def _training(steps: list[Any], examples: int) -> Training:
    return Training(
        steps=len(steps), examples=examples, first_loss=steps[0].loss, last_loss=steps[-1].loss,
        seconds_per_step=sum(s.seconds for s in steps) / len(steps), max_grad_norm=max(s.grad_norm for s in steps),
    )


def _result(metrics: UpdateMetrics, flagged: list[Flagged], setting: float) -> TrainResult:
    v = metrics.version
    if metrics.rolled_back:
        message = f"v{v} was rolled back automatically: {metrics.reason}; the planner keeps its previous adapter"
        return TrainResult(status="rolled_back", message=message, version=v, metrics=metrics, flagged=flagged)
    message = (
        f"v{v} is active: probe margin {_change(metrics.before.margin, metrics.after.margin)}, "
        f"control {_change(metrics.before.control_margin, metrics.after.control_margin)}, "
        f"KL to base {metrics.after.drift.kl_to_base:.3f}"
    )
    if flagged:
        message += f"; {_flag_message(flagged, setting)}"
    return TrainResult(status="trained", message=message, version=v, metrics=metrics, flagged=flagged)


def _change(before: float, after: float) -> str:
    return f"{before:+.3f} -> {after:+.3f}"


def _flag_message(flagged: list[Flagged], setting: float) -> str:
    measured = ", ".join(f"{f.feedback_id} (relevance {f.relevance:.4f})" for f in flagged)
    return f"not trained on feedback {measured}: the planner's teacher cannot use it (relevance below policy.min_relevance = {setting})"


# when to train


class BackgroundRound:
    """Trains a user's adapter in a thread; feedback that arrives meanwhile gets one more round."""

    def __init__(self, settings: Settings, user: str) -> None:
        self.settings, self.user = settings, user
        self.results: list[TrainResult] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._again = False
        self.thread = threading.Thread(target=self._loop, name=f"policy-{user}", daemon=False)

    def poke(self) -> bool:
        """Ask for another round; False if the thread has finished (start a new one)."""
        with self._lock:
            if not self.thread.is_alive():
                return False
            self._again = True
            return True

    def wait(self, timeout: float | None = None) -> list[TrainResult]:
        self.thread.join(timeout)
        return self.results

    def _loop(self) -> None:
        while True:
            with self._lock:
                self._again = False
            self._once()
            with self._lock:
                if not self._again:
                    return

    def _once(self) -> None:
        from nanoresearch.errors import NanoResearchError

        try:
            with Store(self.settings.db_path) as store:
                self.results.append(train_user(self.settings, store, self.user))
        except NanoResearchError as exc:
            self.errors.append(str(exc))
            log.warning("policy update for %s failed: %s", self.user, exc)
        except Exception as exc:  # a bug: keep the run going, keep the traceback in the log
            self.errors.append(f"{type(exc).__name__}: {exc}")
            log.exception("policy update for %s crashed", self.user)


_background: dict[tuple[str, str], BackgroundRound] = {}
_background_lock = threading.Lock()


def after_feedback(settings: Settings, user: str | None = None) -> BackgroundRound | None:
    """Call once a stage's feedback is stored. With `policy.when = "background"` a round starts in a
    thread (or the running one is asked for another round); otherwise nothing happens now, nor with
    the policy level switched off for the run (`coevolution.policy = false`, `run --no-policy`)."""
    if settings.policy.when != "background" or not settings.coevolution.policy:
        return None
    user = user or settings.user
    key = (str(settings.home), user)
    with _background_lock:
        job = _background.get(key)
        if job is not None and job.poke():
            return job
        job = _background[key] = BackgroundRound(settings, user)
        job.thread.start()
        return job


def at_end_of_run(settings: Settings, store: Store, user: str | None = None) -> list[TrainResult]:
    """Call when a run ends. Trains now with `policy.when = "end_of_run"`; waits for a background
    round with "background"; does nothing with "manual" (use `nanoresearch policy train`), nor with the
    policy level switched off for the run: its feedback stays pending for a later round."""
    if not settings.coevolution.policy:
        return []
    user = user or settings.user
    if settings.policy.when == "end_of_run":
        return [train_user(settings, store, user)]
    if settings.policy.when != "background":
        return []
    job = _background.get((str(settings.home), user))
    # No round in this process (a resumed run, say): the feedback it would have trained on is still pending.
    return job.wait() if job is not None else [train_user(settings, store, user)]

