"""`eval run`: a small spec end to end, replayed offline from its recording; resume; bad specs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from eval_recorded import lane_db, recorded_eval

from helpers import ScriptedProvider, run_cli

# Measures a replay reproduces exactly: everything but the clocks (and the new runs' ids).
CLOCKS = {"run_id", "wall_s", "cpu_hours", "gpu_hours"}


def rows(out: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in CLOCKS} for r in json.loads((out / "report.json").read_text())["runs"]]


@pytest.mark.slow  # two small evaluations: four research runs each, a tiny planner trained between rounds
def test_a_small_spec_replays_offline_from_its_recording(capsys, monkeypatch, tmp_path_factory, tmp_path) -> None:
    recorded = recorded_eval(tmp_path_factory)
    replayed = tmp_path / "replayed"
    result = run_cli(capsys, monkeypatch, "eval", "run", str(recorded.parent / "spec.toml"), "--out", str(replayed),
                     "--replay", str(recorded))
    assert result.code == 0, result.err

    for name in ("spec.toml", "spec.json", "report.md", "report.json", "figures/cost_per_round.png",
                 "figures/success_per_round.png"):
        assert (replayed / name).is_file(), name
    for variant in ("full", "static"):
        lanes = [json.loads((out / "lanes" / "ablation" / variant / "seed-0" / "lane.json").read_text())
                 for out in (recorded, replayed)]
        ended = [[(r["round"], r["status"]) for r in lane["rounds"]] for lane in lanes]
        assert ended[0] == ended[1] and ended[1][0] == (1, "done"), ended  # as recorded (a tiny planner may fail round 2)
    report = json.loads((replayed / "report.json").read_text())
    assert [(r["variant"], r["round"]) for r in report["runs"]] == [("full", 1), ("full", 2), ("static", 1), ("static", 2)]
    assert rows(replayed) == rows(recorded)  # the replay is the recorded evaluation, measure for measure
    assert all(r["llm_calls"] > 0 and r["tokens"] > 0 for r in report["runs"])

    # The planner really trained between rounds in the full lane only (here, in the replay): round 2 asked the adapter.
    policy = {variant: replayed / "lanes" / "ablation" / variant / "seed-0" / "home" / "users" / "ablation" / "policy"
              for variant in ("full", "static")}
    assert (policy["full"] / "active").is_file() and not (policy["static"] / "active").exists()
    models = {variant: [m for (m,) in lane_db(replayed, variant).execute(
        "SELECT DISTINCT model FROM llm_calls WHERE stage = 'planner'")] for variant in ("full", "static")}
    assert any(m.endswith("+lora:v1") for m in models["full"]), models
    assert not any("+lora:" in m for m in models["static"]), models


@pytest.mark.slow
def test_resume_keeps_finished_rounds_and_runs_the_missing_lane(capsys, monkeypatch, tmp_path_factory, tmp_path) -> None:
    recorded = recorded_eval(tmp_path_factory)
    copy = tmp_path / "copy"
    shutil.copytree(recorded, copy)
    before = {v: lane_db(copy, "full").execute("SELECT COUNT(*) FROM runs").fetchone()[0] for v in ("full",)}
    shutil.rmtree(copy / "lanes" / "ablation" / "static")

    result = run_cli(capsys, monkeypatch, "eval", "resume", str(copy), "--replay", str(recorded))
    assert result.code == 0, result.err
    assert lane_db(copy, "full").execute("SELECT COUNT(*) FROM runs").fetchone()[0] == before["full"]  # not run again
    assert rows(copy) == rows(recorded)  # the static lane ran again, from the recording, to the same measures


def spec_text(top: str = "", persona: str = 'preset = "exploratory"', task: str = "") -> str:
    digits = task or str(Path(__file__).resolve().parents[2] / "examples" / "tasks" / "digits-classifier")
    return (f'name = "x"\n{top}\n[[personas]]\nname = "p"\n{persona}\n'
            f'[[rounds]]\ngoal = "improve digit accuracy"\ntask = "{digits}"\n')


def test_bad_specs_get_a_message_naming_the_problem(capsys, monkeypatch, tmp_path) -> None:
    cases = {
        "variant": (spec_text(top='variants = ["full", "sometimes"]'), "variants"),
        "task": (spec_text(task="no/such/task"), "task folder"),
        "preset": (spec_text(persona='preset = "lazy"'), "unknown preset"),
        "both": (spec_text(persona='preset = "exploratory"\nprofile = "p.toml"'), "either `preset` or `profile`"),
        "toml": ("name = ", "not a readable TOML"),
        "offline": (spec_text(top="offline = true"), "offline needs a local corpus"),
        "stage": (spec_text() + "[models.painter]\nmodel = 'x'\n", "unknown stage"),
        "budget": (spec_text(top='budget = "trials=lots"'), "budget"),
    }
    for name, (text, message) in cases.items():
        spec = tmp_path / f"{name}.toml"
        spec.write_text(text)
        result = run_cli(capsys, monkeypatch, "eval", "run", str(spec), "--out", str(tmp_path / f"out-{name}"))
        assert result.code != 0, name
        assert message in result.err and "Traceback" not in result.err, (name, result.err)

    missing = run_cli(capsys, monkeypatch, "eval", "report", str(tmp_path / "nothing"))
    assert missing.code != 0 and "holds no eval run" in missing.err


def test_the_scripted_persona_speaks_from_its_profile() -> None:
    from nanoresearch.evaluation.persona import ScriptedUser
    from nanoresearch.profile import PRESETS

    ablation, exploratory = ScriptedUser(PRESETS["ablation-focused"]), ScriptedUser(PRESETS["exploratory"])
    assert "always include an ablation of each component" in ablation.ask("planning", "blueprint written").text
    assert "skip ablations" in exploratory.ask("planning", "blueprint written").text
    assert ablation.ask("analysis", "statistics computed").action == "approve"


def test_a_model_can_play_the_persona_and_a_bad_reply_is_an_approval(settings, store) -> None:
    from nanoresearch.evaluation.persona import ModelUser
    from nanoresearch.llm.client import LLM
    from nanoresearch.profile import PRESETS

    provider = ScriptedProvider('{"action": "comment", "text": "ablate the optimiser too"}', "no json", "no json", "no json")
    llm = LLM(settings, store, store.ensure_user(settings.user), providers={"local": provider})
    user = ModelUser(PRESETS["ablation-focused"], llm)
    answer = user.ask("planning", "blueprint with two conditions")
    assert (answer.action, answer.text) == ("comment", "ablate the optimiser too")
    assert "ablation-focused" in provider.history[0].messages[-1].content  # it was shown the persona's profile
    assert user.ask("writing", "paper written").action == "approve"  # no valid reply after the repairs
    assert len(store.llm_calls(store.ensure_user(settings.user))) == 4  # stored like any call


class Interrupting:
    """Ctrl-C while the first stage's planner waits for its answer."""

    name = "local"

    def complete(self, request):
        raise KeyboardInterrupt


def test_an_interrupted_run_stops_the_evaluation_for_resume_instead_of_ending_its_round(tmp_path) -> None:
    from nanoresearch.errors import RunInterrupted
    from nanoresearch.evaluation.cells import Harness, lane_folder, read_lane, start_eval

    corpus = Path(__file__).resolve().parents[2] / "examples" / "corpus"
    spec = tmp_path / "spec.toml"
    spec.write_text(spec_text(top=f'offline = true\ncorpus = "{corpus}"') + '[[rounds]]\ngoal = "improve digit accuracy again"\n'
                    f'task = "{Path(__file__).resolve().parents[2] / "examples" / "tasks" / "digits-classifier"}"\n')
    with pytest.raises(RunInterrupted):
        start_eval(spec, Harness(out=tmp_path / "out", providers={"local": Interrupting()}))
    lane = read_lane(lane_folder(tmp_path / "out", "p", "full", 0))
    assert lane is not None and [r.round for r in lane.rounds] == [1]  # round 2 never started
    assert read_lane(lane_folder(tmp_path / "out", "p", "static", 0)) is None  # nor the next lane
