"""Shared by the knowledge tests: the folder of existing Agent Skills, and writing a SKILL.md."""

from __future__ import annotations

from pathlib import Path

AGENT_SKILLS = Path(__file__).parent / "agent_skills"


def write_skill_md(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "SKILL.md").write_text(text, encoding="utf-8")
    return folder
