"""SKILL.md parsing and rendering: the Agent Skills format plus our fields, and clear errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from nanoresearch.errors import UserError
from nanoresearch.knowledge.skillbank import parse_skill_md, render_skill_md
from nanoresearch.store.knowledge_models import Provenance, Skill

AGENT_SKILL = """---
name: pdf-tables
description: Extract tables from PDF files.
license: MIT
metadata:
  author: someone
---
# Tables

Use pdfplumber.
"""


def test_an_agent_skills_file_parses_as_it_is_and_keeps_unknown_keys() -> None:
    skill = parse_skill_md(AGENT_SKILL, "x/SKILL.md")
    assert (skill.name, skill.description, skill.version, skill.uses) == ("pdf-tables", "Extract tables from PDF files.", 1, 0)
    assert skill.extra == {"license": "MIT", "metadata": {"author": "someone"}}
    assert skill.body == "# Tables\n\nUse pdfplumber.\n"
    again = parse_skill_md(render_skill_md(skill), "y/SKILL.md")
    assert again.extra == skill.extra and again.body == skill.body and again.name == skill.name


def test_our_fields_round_trip() -> None:
    skill = Skill(name="seed-variance", description="Report three seeds.", tags=["Statistics", "seeds"],
                  stages=["analysis"], version=3, provenance=[Provenance(run_id="run-1", trial_ids=[2, 5])],
                  uses=4, successes=3, created=datetime(2026, 1, 2, tzinfo=UTC), visibility="shared",
                  body="1. three seeds\n")
    text = render_skill_md(skill)
    assert text.startswith("---\nname: seed-variance\ndescription: Report three seeds.\n")
    parsed = parse_skill_md(text, "SKILL.md")
    assert parsed.model_dump(exclude={"updated"}) == skill.model_dump(exclude={"updated"})
    assert parsed.tags == ["statistics", "seeds"]  # labels are normalised once, on the way in
    assert parsed.success_rate == pytest.approx(4 / 6)


def test_a_yaml_date_becomes_a_time() -> None:
    skill = parse_skill_md("---\nname: a\ndescription: b\ncreated: 2025-03-04\n---\n", "SKILL.md")
    assert skill.created == datetime(2025, 3, 4, tzinfo=UTC)


@pytest.mark.parametrize(("text", "problem"), [
    ("# no front matter\n", "no YAML front matter"),
    ("---\nname: a\ndescription: [unclosed\n---\n", "not valid YAML"),
    ("---\n- a list\n---\n", "must be a mapping"),
    ("---\ndescription: no name\n---\n", "name: Field required"),
    ("---\nname: Bad Name\ndescription: x\n---\n", "not a skill name"),
    ("---\nname: ok\ndescription: '  '\n---\n", "description is empty"),
    ("---\nname: ok\ndescription: x\nversion: two\n---\n", "version: Input should be a valid integer"),
    ("---\nname: ok\ndescription: x\nprovenance: [{run: r1}]\n---\n", "provenance.0.run_id: Field required"),
])
def test_a_bad_skill_file_names_the_file_and_the_problem(text: str, problem: str) -> None:
    with pytest.raises(UserError) as caught:
        parse_skill_md(text, "skills/broken/SKILL.md")
    assert caught.value.message.startswith("skills/broken/SKILL.md: ")
    assert problem in caught.value.message
    assert caught.value.hint
