"""`eval run`: every persona × variant × seed is a lane, an isolated home that starts empty and runs
the spec's rounds in order, each a real research run through the pipeline `nanoresearch run` drives.

Output folder layout (docs/evaluation.md#the-output-folder):

    spec.toml                   the spec as given; spec.json, as resolved
    lanes/<persona>/<variant>/seed-<s>/
        home/                   the lane's own home: store, profile, skills, memory, planner adapters
        lane.json               the lane's rounds: run id and how each ended
        recording.json          every model call per round (`eval run --replay DIR` answers from it)
        judge/round-<n>.json    the judge's prompt, answer and scores
    report.md, report.json, figures/   written by `eval report`

Variants never see each other's state: each lane has its own home, so its own store, skills,
memories and adapters. A lane's rounds accumulate in that home. A round whose run finished is never
run again; `eval resume` continues the rest (an interrupted run resumes where it stopped).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from nanoresearch.compute.budget import ModelCallGate, parse_budget
from nanoresearch.config import Settings, load_settings
from nanoresearch.errors import (
    BudgetExhausted,
    EndpointUnavailableError,
    NanoResearchError,
    RunInterrupted,
    UserError,
)
from nanoresearch.evaluation.judge import judge_run
from nanoresearch.evaluation.persona import ModelUser, ScriptedUser, Silent
from nanoresearch.evaluation.spec import VARIANT_LEVELS, EvalSpec, Persona, load_spec
from nanoresearch.llm.client import LLM, Provider
from nanoresearch.pipeline.context import RunContext
from nanoresearch.pipeline.orchestrator import FeedbackGate, run_pipeline
from nanoresearch.policy.adapters import adapter_loader
from nanoresearch.profile import (
    PRESETS,
    Profile,
    cap_budget_text,
    check_allowed,
    load_profile,
    profile_path,
    save_profile,
)
from nanoresearch.runs import drive, new_run
from nanoresearch.store import Store
from nanoresearch.store.models import LLMCall, Run, RunOptions
from nanoresearch.trials.task import load_task

RECORDING_VERSION = 1


class RoundState(BaseModel):
    round: int  # 1-based
    run_id: str
    status: str = "created"  # the run's status when the round ended: done, failed, stopped: budget
    error: str = ""


class Lane(BaseModel):
    persona: str
    variant: str
    seed: int
    levels: list[str]
    rounds: list[RoundState] = []

    def state(self, index: int) -> RoundState | None:
        return next((r for r in self.rounds if r.round == index), None)


@dataclass
class Harness:
    """What an eval run is given besides its spec: where to write, how many lanes at once, and for
    replay the folder of an earlier eval run whose recordings answer every model call."""

    out: Path
    parallel: int = 1
    replay_from: Path | None = None
    providers: dict[str, Provider] = field(default_factory=dict)  # model providers by endpoint (tests, plug-ins)
    say: Callable[[str], None] = lambda message: None


def start_eval(spec_path: Path, harness: Harness) -> EvalSpec:
    """A new output folder for the spec, then its lanes."""
    spec = load_spec(spec_path)
    if harness.out.exists() and any(harness.out.iterdir()):
        raise UserError(f"{harness.out} is not empty", hint=f"continue it with `nanoresearch eval resume {harness.out}`, "
                        "or name a new folder with --out")
    harness.out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(spec_path, harness.out / "spec.toml")
    (harness.out / "spec.json").write_text(spec.model_dump_json(indent=2) + "\n", encoding="utf-8")
    run_lanes(spec, harness)
    return spec


def resume_eval(harness: Harness) -> EvalSpec:
    """The lanes of an earlier `eval run` in `harness.out`, continued where they stopped."""
    spec = read_spec(harness.out)
    run_lanes(spec, harness)
    return spec


def read_spec(out: Path) -> EvalSpec:
    path = out / "spec.json"
    if not path.is_file():
        raise UserError(f"{out} holds no eval run (no spec.json)", hint="start one with `nanoresearch eval run SPEC.toml --out DIR`")
    return EvalSpec.model_validate_json(path.read_text(encoding="utf-8"))


def lane_keys(spec: EvalSpec) -> list[tuple[Persona, str, int]]:
    return [(p, v, s) for p in spec.personas for v in spec.variants for s in spec.seeds]


def lane_folder(out: Path, persona: str, variant: str, seed: int) -> Path:
    return out / "lanes" / persona / variant / f"seed-{seed}"


def run_lanes(spec: EvalSpec, harness: Harness) -> None:
    keys = lane_keys(spec)
    if harness.parallel <= 1:
        for key in keys:
            run_lane(spec, *key, harness)
        return
    with ThreadPoolExecutor(max_workers=harness.parallel) as pool:  # each lane has its own home and store
        for finished in [pool.submit(run_lane, spec, *key, harness) for key in keys]:
            finished.result()


def run_lane(spec: EvalSpec, persona: Persona, variant: str, seed: int, harness: Harness) -> Lane:
    folder = lane_folder(harness.out, persona.name, variant, seed)
    lane = read_lane(folder) or Lane(persona=persona.name, variant=variant, seed=seed, levels=list(VARIANT_LEVELS[variant]))
    settings = lane_settings(spec, persona, seed, folder / "home", replay=harness.replay_from is not None)
    profile = install_profile(persona, settings)
    for index in range(1, len(spec.rounds) + 1):
        state = lane.state(index)
        if state is not None and state.status not in ("created", "running", "paused"):
            continue  # this round ended (done, failed or stopped by its budget): never run again
        harness.say(f"[eval] {persona.name}/{variant}/seed {seed}: round {index} of {len(spec.rounds)}")
        lane = run_round(spec, persona, lane, index, settings, profile, folder, harness)
    return lane


def read_lane(folder: Path) -> Lane | None:
    path = folder / "lane.json"
    return Lane.model_validate_json(path.read_text(encoding="utf-8")) if path.is_file() else None


def write_lane(folder: Path, lane: Lane) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / "lane.json.part"
    partial.write_text(lane.model_dump_json(indent=2) + "\n", encoding="utf-8")
    partial.replace(folder / "lane.json")


def lane_settings(spec: EvalSpec, persona: Persona, seed: int, home: Path, replay: bool) -> Settings:
    """The lane's settings: its own home and user, the spec's models and settings, the seed for the policy."""
    base = load_settings({"home": str(home), "user": persona.name})
    overrides: dict[str, Any] = {"home": str(home), "user": persona.name}
    for section, values in {**spec.settings, "stages": spec.models}.items():
        current = getattr(base, section, None)
        if not isinstance(current, BaseModel) or not isinstance(values, dict):
            overrides[section] = values
            continue
        overrides[section] = merged(current.model_dump(mode="json"), values)
    overrides["policy"] = {**overrides.get("policy", base.policy.model_dump(mode="json")), "seed": seed}
    if replay:
        overrides["llm"] = {**overrides.get("llm", base.llm.model_dump(mode="json")), "replay": "only"}
    return load_settings(overrides)


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def install_profile(persona: Persona, settings: Settings) -> Profile:
    """The persona's profile written into its lane's home, where every stage reads it (load_profile)."""
    if persona.profile is not None:
        target = profile_path(settings)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(persona.profile, target)
        return load_profile(settings)  # a bad file is reported as for `nanoresearch profile`
    assert persona.preset is not None  # the spec holds one or the other
    save_profile(settings, PRESETS[persona.preset].model_copy(deep=True))
    return load_profile(settings)


def run_round(spec: EvalSpec, persona: Persona, lane: Lane, index: int, settings: Settings, profile: Profile,
              folder: Path, harness: Harness) -> Lane:
    with Store(settings.db_path) as store:
        user_id = store.ensure_user(settings.user)
        outside_before = len(outside_calls(store, user_id))
        state = lane.state(index)
        if state is None:
            record = new_round_run(spec, lane, index, settings, profile, store, user_id)
            state = RoundState(round=index, run_id=record.id)
            lane = lane.model_copy(update={"rounds": [*lane.rounds, state]})
            write_lane(folder, lane)
            if harness.replay_from is not None:
                import_round(store, user_id, record.id, recording_of(harness.replay_from, lane), index)
        record = store.get_run(state.run_id)
        ended = drive_round(persona, index, settings.for_run(record.options.coevolution), store, user_id, record, profile,
                            harness)
        if spec.judge.enabled and ended.status == "done":
            judge_run(settings, store, user_id, store.get_run(record.id), profile, spec.judge, folder / "judge" / f"round-{index}.json")
        if harness.replay_from is None:
            add_to_recording(folder, store, user_id, record.id, index, outside_calls(store, user_id)[outside_before:])
    rounds = [ended if r.round == index else r for r in lane.rounds]
    lane = lane.model_copy(update={"rounds": rounds})
    write_lane(folder, lane)
    return lane


def new_round_run(spec: EvalSpec, lane: Lane, index: int, settings: Settings, profile: Profile, store: Store,
                  user_id: int) -> Run:
    """The round's run, created as `nanoresearch run` creates one: the profile's caps on the budget."""
    goal = spec.rounds[index - 1]
    task = load_task(goal.task)
    check_allowed(profile, gpus=task.resources.gpus, executor=spec.executor)
    budget, _ = cap_budget_text(spec.budget, profile)
    options = RunOptions(
        task=str(task.folder), budget=parse_budget(budget), executor=spec.executor, offline=spec.offline,
        corpus=str(spec.corpus) if spec.corpus else None, coevolution=lane.levels,
    )
    return new_run(store, settings, user_id, task.name, goal.goal, options, kind="research")


def drive_round(persona: Persona, index: int, settings: Settings, store: Store, user_id: int, record: Run,
                profile: Profile, harness: Harness) -> RoundState:
    """The round's run driven to its end; a stop that is the run's outcome (its budget, a failure) ends the round."""
    llm = LLM(settings, store, user_id, run_id=record.id, replay_within_run=True, adapters=adapter_loader(settings),
              budget=ModelCallGate(store, user_id, record.id), providers=dict(harness.providers))
    context = RunContext(settings, store, user_id, record, llm, record.options,
                         task=load_task(record.options.task) if record.options.task else None, say=harness.say)
    error = ""
    try:
        with drive(store, record, again=f"nanoresearch eval resume {harness.out}"):
            run_pipeline(context, simulated_user(persona, settings, store, user_id, profile, harness))
    except (EndpointUnavailableError, RunInterrupted, KeyboardInterrupt):
        raise  # not the run's outcome (an outage, Ctrl-C, SIGTERM): the run is paused and `eval resume` continues it
    except BudgetExhausted:
        pass
    except NanoResearchError as exc:
        error = exc.message
    except Exception as exc:  # noqa: BLE001 - a bug fails this cell's run (recorded with it), not the whole evaluation
        error = f"{type(exc).__name__}: {exc}"
    ended = store.get_run(record.id)
    status = f"stopped: {ended.stop_reason}" if ended.stop_reason else ended.status
    return RoundState(round=index, run_id=record.id, status=status, error=error)


def simulated_user(persona: Persona, settings: Settings, store: Store, user_id: int, profile: Profile,
                   harness: Harness) -> FeedbackGate:
    if persona.feedback == "none":
        return Silent()
    if persona.feedback == "llm":  # its calls are the persona's, outside the run: not charged to the run it judges
        return ModelUser(profile, LLM(settings, store, user_id, providers=dict(harness.providers)))
    return ScriptedUser(profile)


def outside_calls(store: Store, user_id: int) -> list[LLMCall]:
    """The calls charged to no run: the simulated user's and the judge's."""
    return [c for c in store.llm_calls(user_id) if c.run_id is None]


def recording_path(folder: Path) -> Path:
    return folder / "recording.json"


def add_to_recording(folder: Path, store: Store, user_id: int, run_id: str, index: int, outside: list[LLMCall]) -> None:
    path = recording_path(folder)
    data: dict[str, Any] = (json.loads(path.read_text(encoding="utf-8")) if path.is_file()
                            else {"version": RECORDING_VERSION, "rounds": {}})
    data["rounds"][str(index)] = {
        "run": [c.model_dump(exclude={"user_id", "run_id"}) for c in store.llm_calls(user_id, run_id)],
        "outside": [c.model_dump(exclude={"user_id", "run_id"}) for c in outside],
    }
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def recording_of(replay_from: Path, lane: Lane) -> dict:
    path = recording_path(lane_folder(replay_from, lane.persona, lane.variant, lane.seed))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise UserError(f"no readable recording {path} to replay lane {lane.persona}/{lane.variant}/seed {lane.seed}",
                        hint="--replay names the output folder of an earlier `eval run` of the same spec") from None
    if data.get("version") != RECORDING_VERSION:
        raise UserError(f"{path} is not an eval recording of version {RECORDING_VERSION}")
    return data


def import_round(store: Store, user_id: int, run_id: str, recording: dict, index: int) -> None:
    """The round's recorded calls, charged to its new run as they were to the recorded one (so the
    replayed run's calls, tokens and cost are the recorded run's); the persona's and judge's to no run."""
    calls = recording["rounds"].get(str(index))
    if calls is None:
        raise UserError(f"the recording has no round {index}", hint="replay a recording of the same spec")
    for call in calls["run"]:
        store.record_llm_call(LLMCall.model_validate({**call, "user_id": user_id, "run_id": run_id}))
    for call in calls["outside"]:
        store.record_llm_call(LLMCall.model_validate({**call, "user_id": user_id, "run_id": None}))
