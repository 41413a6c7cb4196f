"""The skill bank on disk: add, version, count uses, import, export, edit, remove, and human edits."""

from __future__ import annotations

import os
import shutil
import stat
import sys
import time
from pathlib import Path

import pytest
from knowledge_helpers import AGENT_SKILLS, write_skill_md

from nanoresearch.errors import UserError
from nanoresearch.knowledge.skillbank import SkillBank, parse_skill_md, read_skill
from nanoresearch.store.knowledge_models import Provenance, Skill


def warmup_skill(**changes) -> Skill:
    fields = dict(name="lr-warmup", description="Add a linear learning-rate warmup before a large learning rate.",
                  tags=["optimisation", "learning-rate"], stages=["experiment"], body="1. warm up for 5% of the steps\n")
    return Skill(**{**fields, **changes})


def test_import_a_folder_of_existing_agent_skills(bank: SkillBank, settings) -> None:
    imported = bank.import_skills(AGENT_SKILLS)
    assert sorted(s.name for s in imported) == ["arxiv-paper-summary", "csv-profiler", "latex-table-formatting"]
    folder = settings.home / "users" / "alice" / "skills" / "csv-profiler"
    assert (folder / "scripts" / "profile.py").read_text() == (AGENT_SKILLS / "csv-profiler/scripts/profile.py").read_text()
    skill = read_skill(folder)
    assert skill.extra == {"license": "Apache-2.0"}  # what we do not know is kept
    assert skill.body == parse_skill_md((AGENT_SKILLS / "csv-profiler/SKILL.md").read_text(), "x").body
    assert (skill.version, skill.uses, skill.visibility) == (1, 0, "private")
    latex = bank.get_skill("latex-table-formatting")
    assert latex.extra["metadata"] == {"author": "lab-tools", "version": "1.2"}
    assert bank.files(bank.get_skill("arxiv-paper-summary")) == ["templates/summary.md"]
    assert [h.item.name for h in bank.search("booktabs table for the paper", k=1)] == ["latex-table-formatting"]


def test_import_one_folder_and_refuse_a_clash_unless_replacing(bank: SkillBank) -> None:
    bank.import_skills(AGENT_SKILLS / "csv-profiler")
    with pytest.raises(UserError, match="already have private skills named csv-profiler"):
        bank.import_skills(AGENT_SKILLS)
    assert [s.name for s in bank.list_skills()] == ["csv-profiler"]  # all or nothing
    assert len(bank.import_skills(AGENT_SKILLS, replace=True)) == 3


def test_import_refuses_bad_files_and_imports_nothing(bank: SkillBank, tmp_path: Path) -> None:
    source = tmp_path / "incoming"
    shutil.copytree(AGENT_SKILLS, source)
    write_skill_md(source / "broken", "---\nname: broken\n---\nno description\n")
    with pytest.raises(UserError) as caught:
        bank.import_skills(source)
    assert f"{source / 'broken' / 'SKILL.md'}: description: Field required" in caught.value.message
    assert bank.list_skills() == []
    with pytest.raises(UserError, match="no SKILL.md"):
        bank.import_skills(tmp_path / "incoming" / "csv-profiler" / "scripts")
    with pytest.raises(UserError, match="is not a folder"):
        bank.import_skills(tmp_path / "missing")


def test_import_does_not_follow_links(bank: SkillBank, tmp_path: Path) -> None:
    folder = write_skill_md(tmp_path / "linky", "---\nname: linky\ndescription: has a link\n---\n")
    (tmp_path / "secret.txt").write_text("secret")
    (folder / "leak.txt").symlink_to(tmp_path / "secret.txt")
    (skill,) = bank.import_skills(folder)
    assert not (skill.path / "leak.txt").exists()


def test_add_update_and_record_use(bank: SkillBank) -> None:
    added = bank.add_skill(warmup_skill(provenance=[Provenance(run_id="run-a", trial_ids=[3])]),
                           files={"scripts/warmup.py": "print('warm')\n"})
    assert added.version == 1 and (added.path / "scripts" / "warmup.py").exists()
    with pytest.raises(UserError, match="already exists"):
        bank.add_skill(warmup_skill())
    with pytest.raises(UserError, match="inside the skill's folder"):
        bank.add_skill(warmup_skill(name="other"), files={"../escape.txt": "x"})

    updated = bank.update_skill("lr-warmup", body="1. warm up for 10% of the steps\n",
                                provenance=[Provenance(run_id="run-a", trial_ids=[5, 3]), Provenance(run_id="run-b")])
    assert updated.version == 2 and updated.updated >= added.updated and updated.created == added.created
    assert [(p.run_id, p.trial_ids) for p in updated.provenance] == [("run-a", [3, 5]), ("run-b", [])]
    assert read_skill(updated.path).body == "1. warm up for 10% of the steps\n"

    bank.record_use("lr-warmup", succeeded=True)
    bank.record_use(bank.get_skill("lr-warmup"), succeeded=False)
    counted = read_skill(updated.path)  # the file is the truth
    assert (counted.uses, counted.successes, counted.version) == (2, 1, 2)
    assert bank.search("learning-rate warmup")[0].components["success"] == pytest.approx(2 / 4, abs=1e-3)


def test_success_rate_feeds_retrieval(bank: SkillBank) -> None:
    bank.add_skill(warmup_skill(name="warmup-a"))
    bank.add_skill(warmup_skill(name="warmup-b"))
    for _ in range(4):
        bank.record_use("warmup-a", succeeded=False)
        bank.record_use("warmup-b", succeeded=True)
    hits = bank.search("learning-rate warmup")
    assert [h.item.name for h in hits] == ["warmup-b", "warmup-a"]
    assert hits[0].components["success"] == pytest.approx(5 / 6, abs=1e-3)
    assert hits[1].components["success"] == pytest.approx(1 / 6, abs=1e-3)


def test_a_hand_edit_is_picked_up(bank: SkillBank, settings, store, embedder) -> None:
    skill = bank.add_skill(warmup_skill())
    text = (skill.path / "SKILL.md").read_text().replace("Add a linear", "Add a cosine-shaped")
    (skill.path / "SKILL.md").write_text(text + "2. watch for gradient spikes\n")
    fresh = SkillBank(settings, store, embedder=embedder)
    assert fresh.get_skill("lr-warmup").description.startswith("Add a cosine-shaped")
    assert "gradient spikes" in fresh.search("gradient spikes")[0].item.body

    shutil.rmtree(skill.path)  # deleted by hand
    assert SkillBank(settings, store, embedder=embedder).list_skills() == []


def test_a_broken_hand_edit_is_reported_and_left_out(bank: SkillBank, settings, store, embedder) -> None:
    skill = bank.add_skill(warmup_skill())
    bank.add_skill(warmup_skill(name="other"))
    (skill.path / "SKILL.md").write_text("---\nname: lr-warmup\n---\n")
    fresh = SkillBank(settings, store, embedder=embedder)
    assert [s.name for s in fresh.list_skills()] == ["other"]
    assert len(fresh.problems) == 1 and "lr-warmup/SKILL.md: description: Field required" in fresh.problems[0]


def test_an_unchanged_file_is_not_read_again(bank: SkillBank, settings, store, embedder) -> None:
    skill = bank.add_skill(warmup_skill())
    version = store.knowledge_version("skill")
    os.utime(skill.path / "SKILL.md", (time.time() + 5, time.time() + 5))  # touched, same bytes
    SkillBank(settings, store, embedder=embedder)
    SkillBank(settings, store, embedder=embedder)
    assert store.knowledge_version("skill") == version


def test_shared_and_private_skills(bank: SkillBank, settings, store, embedder) -> None:
    bank.add_skill(warmup_skill(visibility="shared", description="The lab's warmup recipe."))
    bank.add_skill(warmup_skill())
    assert [(s.name, s.visibility) for s in bank.list_skills()] == [("lr-warmup", "private"), ("lr-warmup", "shared")]
    assert (settings.home / "shared" / "skills" / "lr-warmup" / "SKILL.md").exists()
    assert bank.get_skill("lr-warmup").visibility == "private"
    assert bank.get_skill("lr-warmup", shared=True).description == "The lab's warmup recipe."
    bob = SkillBank(settings, store, user="bob", embedder=embedder)
    assert [(s.name, s.visibility, s.owner) for s in bob.list_skills()] == [("lr-warmup", "shared", None)]
    assert [h.item.visibility for h in bob.search("warmup")] == ["shared"]
    bob.record_use("lr-warmup", succeeded=True)  # shared counts are everyone's
    assert bank.get_skill("lr-warmup", shared=True).uses == 1


def test_export_then_import_elsewhere(bank: SkillBank, settings, store, embedder, tmp_path: Path) -> None:
    bank.import_skills(AGENT_SKILLS)
    bank.record_use("csv-profiler", succeeded=True)
    written = bank.export_skills(tmp_path / "out", ["csv-profiler"])
    assert written == [tmp_path / "out" / "csv-profiler"] and (written[0] / "scripts" / "profile.py").exists()
    with pytest.raises(UserError, match="already has folders named csv-profiler"):
        bank.export_skills(tmp_path / "out")
    bob = SkillBank(settings, store, user="bob", embedder=embedder)
    (skill,) = bob.import_skills(tmp_path / "out")
    assert (skill.name, skill.uses, skill.successes, skill.owner) == ("csv-profiler", 1, 1, "bob")


def test_remove(bank: SkillBank) -> None:
    skill = bank.add_skill(warmup_skill())
    assert bank.remove_skill("lr-warmup").name == "lr-warmup"
    assert not skill.path.exists() and bank.list_skills() == [] and bank.search("warmup") == []
    with pytest.raises(UserError, match="no skill named 'lr-warmup'"):
        bank.remove_skill("lr-warmup")


def editor(tmp_path: Path, python: str) -> str:
    """An $EDITOR that runs `python` with the file's path in `path`."""
    script = tmp_path / "editor.py"
    script.write_text(f"import pathlib, sys\npath = pathlib.Path(sys.argv[1])\n{python}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return f"{sys.executable} {script}"


def test_edit_validates_versions_and_reindexes(bank: SkillBank, tmp_path: Path, monkeypatch) -> None:
    bank.add_skill(warmup_skill())
    monkeypatch.setenv("EDITOR", editor(tmp_path, "path.write_text(path.read_text() + '2. check the loss curve\\n')"))
    monkeypatch.delenv("VISUAL", raising=False)
    edited = bank.edit_skill("lr-warmup")
    assert edited.version == 2 and edited.body.endswith("2. check the loss curve\n")
    assert bank.search("check the loss curve")[0].item.version == 2


def test_a_bad_edit_changes_nothing_and_keeps_the_draft(bank: SkillBank, tmp_path: Path, monkeypatch) -> None:
    skill = bank.add_skill(warmup_skill())
    before = (skill.path / "SKILL.md").read_text()
    monkeypatch.setenv("EDITOR", editor(tmp_path, "path.write_text('---\\nname: lr-warmup\\nversion: x\\n---\\n')"))
    with pytest.raises(UserError) as caught:
        bank.edit_skill("lr-warmup")
    assert "lr-warmup is unchanged" in caught.value.message and "version" in caught.value.message
    assert (skill.path / "SKILL.md").read_text() == before
    draft = Path(caught.value.hint.rsplit(" ", 1)[-1])
    assert draft.read_text().startswith("---\nname: lr-warmup\nversion: x")
    monkeypatch.setenv("EDITOR", editor(tmp_path, "sys.exit(3)"))
    with pytest.raises(UserError, match="exited with code 3"):
        bank.edit_skill("lr-warmup")


def test_an_edit_may_rename_or_share_a_skill(bank: SkillBank, settings, tmp_path: Path, monkeypatch) -> None:
    bank.add_skill(warmup_skill())
    rename = "path.write_text(path.read_text().replace('name: lr-warmup', 'name: warmup').replace('private', 'shared'))"
    monkeypatch.setenv("EDITOR", editor(tmp_path, rename))
    edited = bank.edit_skill("lr-warmup")
    assert (edited.name, edited.visibility) == ("warmup", "shared")
    assert edited.path == settings.home / "shared" / "skills" / "warmup"
    assert [(s.name, s.visibility) for s in bank.list_skills()] == [("warmup", "shared")]
    assert not (settings.home / "users" / "alice" / "skills" / "lr-warmup").exists()
