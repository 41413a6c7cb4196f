import pytest

from nanoresearch.errors import UserError
from nanoresearch.profile import DEFAULT_PRESET, PRESETS, Profile, load_profile, preset
from nanoresearch.profile.models import PresetName
from nanoresearch.profile.presets import DESCRIPTIONS

REQUIRED = {"evidence-first", "ablation-focused", "dataset-driven", "exploratory", "resource-constrained"}


def test_the_required_presets_exist_and_are_valid_profiles():
    assert REQUIRED <= set(PRESETS)
    assert set(PRESETS) == set(PresetName.__args__) == set(DESCRIPTIONS)
    for name, profile in PRESETS.items():
        assert Profile.model_validate(profile.model_dump()) == profile
        assert profile.preset == name


def test_presets_differ_in_what_they_promise():
    bodies = [p.model_dump(exclude={"preset"}) for p in PRESETS.values()]
    assert all(bodies.count(body) == 1 for body in bodies)
    assert PRESETS["ablation-focused"].ablation_strictness == "every-component"
    assert PRESETS["exploratory"].risk_appetite == "high" and PRESETS["exploratory"].ablation_strictness == "none"
    assert PRESETS["evidence-first"].rigour == "strict"
    assert PRESETS["dataset-driven"].research_style == "dataset-driven"
    caps = PRESETS["resource-constrained"].hard_constraints.caps()
    assert caps["gpu_hours"] == 1 and caps["usd"] == 2 and caps["wall_s"] == 30 * 60
    # Only the resource-constrained preset imposes caps: a style is not a limit.
    assert [name for name, p in PRESETS.items() if p.hard_constraints.caps()] == ["resource-constrained"]


def test_preset_gives_a_copy_and_rejects_unknown_names():
    copy = preset("exploratory")
    copy.hard_constraints.forbid.append("gpu")
    assert PRESETS["exploratory"].hard_constraints.forbid == []
    with pytest.raises(UserError, match="unknown preset 'bold'") as caught:
        preset("bold")
    assert "resource-constrained" in caught.value.hint


def test_no_profile_file_means_the_default_preset(settings):
    assert load_profile(settings) == PRESETS[DEFAULT_PRESET]
