import json

from typer.testing import CliRunner

from helpers import run_cli
from nanoresearch.cli import app
from nanoresearch.config import load_settings
from nanoresearch.profile import PRESETS, load_profile, profile_path

# Answers in the order `init` asks: preset, risk, rigour, ablations, budget, venue, writing,
# GPU-hour cap, dollar cap, forbidden, notes. An empty line keeps the preset's answer.
INTERVIEW = "\n".join([
    "ablation-focused", "high", "", "", "trials=12,gpu_hours=4", "ICLR", "", "3", "none", "slurm",
    "I only have vision tasks",
]) + "\n"


def interview(*args: str, answers: str = INTERVIEW):
    return CliRunner().invoke(app, [*args, "init"], input=answers)


def test_the_interview_starts_from_a_preset_and_keeps_its_answers(settings):
    result = interview()
    assert result.exit_code == 0, result.output
    profile = load_profile(settings)
    base = PRESETS["ablation-focused"]
    assert profile.preset == "ablation-focused" and profile.risk_appetite == "high"
    assert profile.rigour == base.rigour and profile.ablation_strictness == "every-component"
    assert profile.compute_budget == "trials=12,gpu_hours=4" and profile.venue == "ICLR"
    assert profile.writing_style == base.writing_style and profile.notes == "I only have vision tasks"
    assert profile.hard_constraints.caps() == {"gpu_hours": 3.0} and profile.hard_constraints.forbid == ["slurm"]
    assert "gpu_hours<=3" in result.output  # what the planner will see is shown at the end


def test_a_bad_answer_is_asked_again(settings):
    answers = "exploratory\nreckless\nlow\n" + "\n" * 5 + "-2\n2\n" + "\n" * 3
    result = interview(answers=answers)
    assert result.exit_code == 0, result.output
    assert "Input should be 'low', 'medium' or 'high'" in result.output
    assert "Input should be greater than 0" in result.output
    profile = load_profile(settings)
    assert profile.risk_appetite == "low" and profile.hard_constraints.max_gpu_hours == 2


def test_init_with_a_preset_asks_nothing(capsys, monkeypatch, settings):
    result = run_cli(capsys, monkeypatch, "init", "--preset", "resource-constrained")
    assert result.code == 0 and str(profile_path(settings)) in result.err
    assert load_profile(settings) == PRESETS["resource-constrained"]
    assert run_cli(capsys, monkeypatch, "init", "--yes", "--force").code == 0
    assert load_profile(settings) == PRESETS["evidence-first"]


def test_init_never_overwrites_without_force(capsys, monkeypatch, settings):
    assert run_cli(capsys, monkeypatch, "init", "--preset", "exploratory").code == 0
    again = run_cli(capsys, monkeypatch, "init", "--preset", "dataset-driven")
    assert again.code == 1 and "already exists" in again.err and "--force" in again.err
    assert load_profile(settings).preset == "exploratory"
    assert run_cli(capsys, monkeypatch, "init", "--preset", "dataset-driven", "--force").code == 0
    assert load_profile(settings).preset == "dataset-driven"


def test_init_with_an_unknown_preset_fails_cleanly(capsys, monkeypatch, settings):
    result = run_cli(capsys, monkeypatch, "init", "--preset", "bold")
    assert result.code == 1 and "unknown preset 'bold'" in result.err and "Traceback" not in result.err
    assert not profile_path(settings).exists()


def test_a_corrupt_profile_is_named_with_its_key_and_exits_non_zero(capsys, monkeypatch, settings):
    path = profile_path(settings)
    path.parent.mkdir(parents=True)
    path.write_text('[hard_constraints]\nmax_usd = "cheap"\n')
    result = run_cli(capsys, monkeypatch, "profile", "show")
    assert result.code == 2 and str(path) in result.err and "hard_constraints.max_usd" in result.err
    assert "Traceback" not in result.err + result.out


def test_show_set_and_use(capsys, monkeypatch, settings):
    shown = run_cli(capsys, monkeypatch, "profile", "show")
    assert "no profile yet" in shown.err and 'preset = "evidence-first"' in shown.out
    assert run_cli(capsys, monkeypatch, "profile", "set", "hard_constraints.max_gpu_hours", "2").code == 0
    assert run_cli(capsys, monkeypatch, "profile", "set", "hard_constraints.forbid", "gpu,ray").code == 0
    assert run_cli(capsys, monkeypatch, "profile", "set", "notes", "prefer small models").code == 0
    data = json.loads(run_cli(capsys, monkeypatch, "profile", "show", "--json").out)
    assert data["hard_constraints"]["max_gpu_hours"] == 2 and data["hard_constraints"]["forbid"] == ["gpu", "ray"]
    prompt = run_cli(capsys, monkeypatch, "profile", "show", "--prompt").out
    assert "gpu_hours<=2" in prompt and "no gpu, no ray" in prompt and "prefer small models" in prompt
    assert run_cli(capsys, monkeypatch, "profile", "set", "hard_constraints.max_gpu_hours", "none").code == 0
    assert load_profile(settings).hard_constraints.max_gpu_hours is None
    used = run_cli(capsys, monkeypatch, "profile", "use", "exploratory")
    assert used.code == 0 and load_profile(settings) == PRESETS["exploratory"]


def test_bad_settings_are_refused_with_the_key(capsys, monkeypatch, settings):
    unknown = run_cli(capsys, monkeypatch, "profile", "set", "colour", "blue")
    assert unknown.code == 1 and "unknown profile key 'colour'" in unknown.err and "hard_constraints.max_usd" in unknown.err
    bad = run_cli(capsys, monkeypatch, "profile", "set", "rigour", "sloppy")
    assert bad.code == 1 and "key `rigour`" in bad.err and "'strict'" in bad.err
    assert run_cli(capsys, monkeypatch, "profile", "use", "bold").code == 1
    assert not profile_path(settings).exists()


def test_presets_are_listed(capsys, monkeypatch):
    listed = run_cli(capsys, monkeypatch, "profile", "presets")
    assert all(name in listed.out for name in PRESETS)
    data = json.loads(run_cli(capsys, monkeypatch, "profile", "presets", "--json").out)
    assert data["resource-constrained"]["hard_constraints"]["max_usd"] == 2


def test_the_user_option_keeps_profiles_apart(capsys, monkeypatch, settings):
    assert run_cli(capsys, monkeypatch, "--user", "bob", "init", "--preset", "exploratory").code == 0
    assert run_cli(capsys, monkeypatch, "profile", "set", "venue", "ICML").code == 0
    bob = load_profile(load_settings({"user": "bob"}))
    alice = load_profile(settings)
    assert bob.preset == "exploratory" and bob.venue == "workshop"
    assert alice.preset == "evidence-first" and alice.venue == "ICML"
