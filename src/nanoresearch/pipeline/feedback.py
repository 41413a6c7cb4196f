"""Feedback on a stage after the fact: the one path the `feedback` command and the dashboard share.

It is checked, then stored with the stage's planner call (the plan the user saw), which makes it a
training triple for the user's planner policy.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from nanoresearch.config import Settings
from nanoresearch.errors import UserError
from nanoresearch.pipeline.orchestrator import STAGE_NAMES, Answer
from nanoresearch.policy.train import BackgroundRound, after_feedback
from nanoresearch.store import Store
from nanoresearch.store.models import Feedback, FeedbackAction, Run, StagePlanRecord

ACTIONS: tuple[FeedbackAction, ...] = ("comment", "redirect", "approve")


def checked_feedback(stage: str, action: str, text: str) -> str:
    """The feedback's text, stripped; a bad stage, action or empty comment raises UserError naming it."""
    if stage not in STAGE_NAMES:
        raise UserError(f"unknown stage {stage!r}", hint=f"stages are: {', '.join(STAGE_NAMES)}")
    feedback_action(action)
    if action != "approve" and not text.strip():
        raise UserError("the feedback text is empty")
    return text.strip()


def feedback_action(action: str) -> FeedbackAction:
    """The action as the store types it; an unknown one raises UserError naming it."""
    known = next((a for a in ACTIONS if a == action), None)
    if known is None:
        raise UserError(f"unknown action {action!r}", hint="use comment, redirect or approve")
    return known


def record_feedback(store: Store, user_id: int, run: Run, stage: str, action: str, text: str) -> Feedback:
    """Store the user's answer on a stage of `run` with the plan it judges."""
    text = checked_feedback(stage, action, text)
    if run.kind != "research":
        raise UserError(f"feedback applies to research runs; {run.id} is a trial session",
                        hint="`nanoresearch list` shows your runs and their kinds")
    plan = judged_plan(store, user_id, run.id, stage)
    finished = any(s.stage == stage and s.step == "stage" and s.status == "done" for s in store.steps(run.id))
    if plan is None and not finished:  # a finished stage may have had no plan: no model reads one there
        raise UserError(f"run {run.id} has no {stage} stage yet", hint=f"`nanoresearch status {run.id}` shows its stages")
    feedback_id = store.add_feedback(user_id, run.id, stage, feedback_action(action), text, plan.id if plan else None)
    return next(f for f in store.feedback(user_id, run.id) if f.id == feedback_id)


def judged_plan(store: Store, user_id: int, run_id: str, stage: str) -> StagePlanRecord | None:
    """The plan the user saw last for the stage: the finished stage's own, else the latest one."""
    plans = [p for p in store.stage_plans(user_id, run_id) if p.stage == stage]
    done = next((s for s in store.steps(run_id) if s.stage == stage and s.step == "stage" and s.status == "done"), None)
    chosen = next((p for p in plans if done is not None and p.id == done.payload.get("plan_id")), None)
    return chosen or (plans[-1] if plans else None)


def trains_on(settings: Settings, feedback: Feedback) -> bool:
    """Written feedback trains the planner, unless the user trains by hand (`policy.when = "manual"`)."""
    return bool(feedback.text) and settings.policy.when != "manual"


def train_in_background(settings: Settings) -> BackgroundRound | None:
    """A round in a thread (joined by feedback that arrives meanwhile): for callers that cannot wait for it."""
    background = settings.policy.model_copy(update={"when": "background"})
    return after_feedback(settings.model_copy(update={"policy": background}))


class DashboardGate:
    """`run --feedback web`: at each stage end the run waits for the answer given on the dashboard page.

    The page stores its answer through `record_feedback`, as the `feedback` command does; this gate polls
    the store for an answer on the stage newer than any it has seen, and hands it to the run already
    recorded (the page also started the planner's training). Ctrl-C while it waits pauses the run."""

    def __init__(self, store: Store, user_id: int, run_id: str, page_url: str, say: Callable[[str], None],
                 poll_s: float = 0.5) -> None:
        self.store, self.user_id, self.run_id = store, user_id, run_id
        self.page_url, self.say, self.poll_s = page_url, say, poll_s
        self.seen = self._latest_id()  # answers given before the run asked are about earlier stages

    def ask(self, stage: str, summary: str) -> Answer:
        self.say(f"  waiting for your answer on the {stage} stage at {self.page_url}#stage-{stage} "
                 "(`nanoresearch ui` serves the page; Ctrl-C pauses the run)")
        while (answer := self._answer_on(stage)) is None:
            time.sleep(self.poll_s)
        self.seen = answer.id
        self.say(f"  {answer.action} from the page" + (f": {answer.text}" if answer.text else ""))
        return Answer(action=answer.action, text=answer.text, recorded=True)

    def _answer_on(self, stage: str) -> Feedback | None:
        return next((f for f in self.store.feedback(self.user_id, self.run_id) if f.id > self.seen and f.stage == stage), None)

    def _latest_id(self) -> int:
        return max((f.id for f in self.store.feedback(self.user_id, self.run_id)), default=0)
