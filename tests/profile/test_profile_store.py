import pytest

from nanoresearch.config import load_settings
from nanoresearch.errors import ConfigError
from nanoresearch.profile import HardConstraints, load_profile, preset, profile_path, save_profile


def test_round_trip_keeps_every_key(settings, home):
    profile = preset("dataset-driven").model_copy(update={
        "notes": "tabular data only", "venue": "KDD",
        "hard_constraints": HardConstraints(max_gpu_hours=2.5, max_tokens=100_000, forbid=["slurm"]),
    })
    path = save_profile(settings, profile)
    assert path == home / "users" / "alice" / "profile.toml"
    assert load_profile(settings) == profile
    assert not list(path.parent.glob("*.part"))


def test_a_partial_file_is_filled_from_its_preset(settings):
    path = profile_path(settings)
    path.parent.mkdir(parents=True)
    path.write_text('preset = "resource-constrained"\nvenue = "ICLR"\n')
    profile = load_profile(settings)
    assert profile.venue == "ICLR" and profile.research_style == "frugal"
    assert profile.hard_constraints == preset("resource-constrained").hard_constraints


def test_a_hard_constraints_table_is_taken_whole(settings):
    # Clearing a cap of the preset must stick: a cap left out of the table is no cap.
    path = profile_path(settings)
    path.parent.mkdir(parents=True)
    path.write_text('preset = "resource-constrained"\n[hard_constraints]\nmax_usd = 5\n')
    assert load_profile(settings).hard_constraints.caps() == {"usd": 5.0}


@pytest.mark.parametrize(("text", "expected"), [
    ("rigour = \n", "not valid TOML"),
    ('rigour = "sloppy"\n', "key `rigour`: Input should be 'quick', 'standard' or 'strict'"),
    ("[hard_constraints]\nmax_gpu_hours = -1\n", "key `hard_constraints.max_gpu_hours`: Input should be greater than 0"),
    ('colour = "blue"\n', "key `colour`: unknown key; valid keys here: preset, research_style"),
    ("[hard_constraints]\nmax_gpus = 1\n", "key `hard_constraints.max_gpus`: unknown key; valid keys here: max_trials"),
    ('compute_budget = "trials=lots"\n', "key `compute_budget`: Value error, budget value 'lots' is not a number"),
    ('preset = "bold"\n', "key `preset` = 'bold' is not a preset"),
    ('[hard_constraints]\nforbid = ["gpu", "tpu"]\n', "key `hard_constraints.forbid` (item 2)"),
])
def test_a_corrupt_file_names_itself_and_the_bad_key(settings, text, expected):
    path = profile_path(settings)
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_profile(settings)
    assert str(path) in caught.value.message and expected in caught.value.message
    assert caught.value.hint  # how to fix it: edit, start again, or which presets exist


def test_each_user_has_their_own_profile(settings, home):
    save_profile(settings, preset("exploratory"))
    bob = load_settings({"user": "bob"})
    assert load_profile(bob).preset == "evidence-first"
    save_profile(bob, preset("ablation-focused"))
    assert load_profile(settings).preset == "exploratory"
    assert profile_path(bob) == home / "users" / "bob" / "profile.toml"
