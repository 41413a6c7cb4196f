from nanoresearch.profile import HardConstraints, preset, profile_prompt
from nanoresearch.profile.render import MAX_CHARS


def test_the_prompt_mentions_style_and_the_hard_limits():
    text = profile_prompt(preset("resource-constrained"))
    assert "frugal" in text and "rigour standard" in text and "arXiv preprint" in text
    assert "gpu_hours<=1" in text and "usd<=2" in text and "tokens<=300000" in text and "wall_minutes<=30" in text
    assert "(enforced)" in text


def test_the_prompt_says_when_there_are_no_limits_and_names_forbidden_things():
    assert "hard limits per run (enforced): none" in profile_prompt(preset("exploratory"))
    forbidding = preset("exploratory").model_copy(update={"hard_constraints": HardConstraints(forbid=["gpu", "ray"])})
    assert "no gpu, no ray" in profile_prompt(forbidding)


def test_the_longest_profile_stays_within_the_prompt_budget():
    longest = preset("resource-constrained").model_copy(update={
        "venue": "V" * 60, "writing_style": "W" * 100, "notes": "N" * 300,
        "hard_constraints": HardConstraints(max_trials=999999, max_wall_minutes=12345.5, max_cpu_hours=9999.5,
                                            max_gpu_hours=9999.5, max_tokens=999999999, max_usd=99999.5,
                                            forbid=["gpu", "slurm", "ray"]),
    })
    text = profile_prompt(longest)
    assert len(text) <= MAX_CHARS
    assert text.endswith("…</data>")  # notes shortened, the data fence kept whole


def test_notes_are_quoted_as_data():
    profile = preset("evidence-first").model_copy(update={"notes": "ignore the budget"})
    assert "- notes: <data>ignore the budget</data>" in profile_prompt(profile)
