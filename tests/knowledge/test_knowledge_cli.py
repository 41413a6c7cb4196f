"""`nanoresearch skills ...` and `nanoresearch memory ...` end to end, in process."""

from __future__ import annotations

import json
import sys

import pytest
from knowledge_helpers import AGENT_SKILLS, write_skill_md

from helpers import run_cli


@pytest.fixture(autouse=True)
def wide_and_cheap(monkeypatch, cheap_default_embedder) -> None:
    from nanoresearch.cli.common import out

    monkeypatch.setattr(out, "width", 220)  # tables must not wrap what the assertions look for


def test_skills_import_list_show_search_export_remove(capsys, monkeypatch, tmp_path) -> None:
    imported = run_cli(capsys, monkeypatch, "skills", "import", str(AGENT_SKILLS))
    assert imported.code == 0 and "imported 3 skills" in imported.err

    listed = run_cli(capsys, monkeypatch, "skills", "list")
    assert listed.code == 0 and "csv-profiler" in listed.out and "latex-table-formatting" in listed.out

    shown = run_cli(capsys, monkeypatch, "skills", "show", "csv-profiler")
    assert shown.code == 0 and "scripts/profile.py" in shown.out and "# CSV profiler" in shown.out

    found = run_cli(capsys, monkeypatch, "skills", "search", "booktabs table for results", "--explain", "-k", "2")
    assert found.code == 0
    first_row = next(line for line in found.out.splitlines() if "│ 1 " in line)
    assert "latex-table-formatting" in first_row
    for column in ("bm25", "embedding", "recency", "success", "weights: bm25 0.3"):
        assert column in found.out

    exported = run_cli(capsys, monkeypatch, "skills", "export", str(tmp_path / "out"), "csv-profiler")
    assert exported.code == 0 and (tmp_path / "out" / "csv-profiler" / "scripts" / "profile.py").exists()

    removed = run_cli(capsys, monkeypatch, "skills", "remove", "csv-profiler")
    assert removed.code == 0 and "removed private skill csv-profiler" in removed.err
    assert "csv-profiler" not in run_cli(capsys, monkeypatch, "skills", "list").out


def test_skills_are_per_user_unless_shared(capsys, monkeypatch) -> None:
    run_cli(capsys, monkeypatch, "skills", "import", str(AGENT_SKILLS / "csv-profiler"))
    run_cli(capsys, monkeypatch, "skills", "import", "--shared", str(AGENT_SKILLS / "arxiv-paper-summary"))
    bob = run_cli(capsys, monkeypatch, "--user", "bob", "skills", "list")
    assert "arxiv-paper-summary" in bob.out and "csv-profiler" not in bob.out
    missing = run_cli(capsys, monkeypatch, "--user", "bob", "skills", "show", "csv-profiler")
    assert missing.code == 1 and "no skill named 'csv-profiler'" in missing.err and "Traceback" not in missing.err
    searched = run_cli(capsys, monkeypatch, "--user", "bob", "skills", "search", "profile a csv file", "-k", "5")
    assert "csv-profiler" not in searched.out


def test_skills_edit_with_an_editor(capsys, monkeypatch, tmp_path) -> None:
    run_cli(capsys, monkeypatch, "skills", "import", str(AGENT_SKILLS / "csv-profiler"))
    script = tmp_path / "edit.py"
    script.write_text("import pathlib, sys\np = pathlib.Path(sys.argv[1])\np.write_text(p.read_text() + 'Also plot it.\\n')\n")
    monkeypatch.setenv("EDITOR", f"{sys.executable} {script}")
    edited = run_cli(capsys, monkeypatch, "skills", "edit", "csv-profiler")
    assert edited.code == 0 and "csv-profiler is at version 2" in edited.err
    assert "Also plot it." in run_cli(capsys, monkeypatch, "skills", "show", "csv-profiler").out


def test_bad_skill_input_gets_a_message_not_a_traceback(capsys, monkeypatch, tmp_path, home) -> None:
    write_skill_md(tmp_path / "bad", "---\nname: Not Valid\ndescription: x\n---\n")
    result = run_cli(capsys, monkeypatch, "skills", "import", str(tmp_path / "bad"))
    assert result.code == 1 and "bad/SKILL.md: name" in result.err and "hint:" in result.err
    assert "Traceback" not in result.err
    assert run_cli(capsys, monkeypatch, "skills", "import", str(tmp_path / "nowhere")).code == 1

    run_cli(capsys, monkeypatch, "skills", "import", str(AGENT_SKILLS / "csv-profiler"))
    broken = home / "users" / "alice" / "skills" / "csv-profiler" / "SKILL.md"
    broken.write_text("no front matter\n")
    listed = run_cli(capsys, monkeypatch, "skills", "list")
    assert listed.code == 0 and "warning: skipped" in listed.err and "csv-profiler/SKILL.md: no YAML front matter" in listed.err


def test_memory_add_list_search_show_export_forget(capsys, monkeypatch, tmp_path, store) -> None:
    store.ensure_project(store.ensure_user("alice"), "digits")
    added = run_cli(capsys, monkeypatch, "memory", "add", "always include an ablation of each component")
    assert added.code == 0 and "remembered #1 (preference)" in added.err
    run_cli(capsys, monkeypatch, "memory", "add", "dropout 0.5 lowered accuracy on digits", "--type",
            "failed_hypothesis", "--project", "digits", "--importance", "0.9")

    listed = run_cli(capsys, monkeypatch, "memory", "list", "--type", "failed_hypothesis")
    assert "dropout 0.5 lowered accuracy" in listed.out and "ablation" not in listed.out and "digits" in listed.out

    found = run_cli(capsys, monkeypatch, "memory", "search", "dropout accuracy", "--explain", "--project", "digits")
    assert found.code == 0 and "#2 failed_hypothesis" in found.out and "importance" in found.out

    shown = run_cli(capsys, monkeypatch, "memory", "show", "2")
    assert shown.code == 0 and "importance 0.90" in shown.out

    target = tmp_path / "memory.json"
    assert run_cli(capsys, monkeypatch, "memory", "export", "-o", str(target)).code == 0
    assert [r["text"] for r in json.loads(target.read_text())][1] == "dropout 0.5 lowered accuracy on digits"

    assert run_cli(capsys, monkeypatch, "--user", "bob", "memory", "show", "2").code == 1
    assert run_cli(capsys, monkeypatch, "--user", "bob", "memory", "forget", "2").code == 1
    forgot = run_cli(capsys, monkeypatch, "memory", "forget", "2")
    assert forgot.code == 0 and "forgot #2" in forgot.err
    assert run_cli(capsys, monkeypatch, "memory", "show", "2").code == 1


def test_bad_memory_input(capsys, monkeypatch) -> None:
    unknown = run_cli(capsys, monkeypatch, "memory", "add", "x", "--type", "rumour")
    assert unknown.code == 1 and "unknown memory type 'rumour'" in unknown.err and "failed_hypothesis" in unknown.err
    assert "no project named 'nope'" in run_cli(capsys, monkeypatch, "memory", "list", "--project", "nope").err
    assert "the text is empty" in run_cli(capsys, monkeypatch, "memory", "add", "  ").err
    assert run_cli(capsys, monkeypatch, "memory", "search", "x").err.strip() == "no record matched"


def test_import_refuses_another_users_private_skills(capsys, monkeypatch, home):
    """bob's private skill folder is bob's: ann cannot copy it in by path, directly or by a link."""
    assert run_cli(capsys, monkeypatch, "--user", "bob", "skills", "import", str(AGENT_SKILLS / "csv-profiler")).code == 0
    bobs = home / "users" / "bob" / "skills"
    assert (bobs / "csv-profiler" / "SKILL.md").is_file()
    link = home.parent / "innocent-looking"
    link.symlink_to(bobs / "csv-profiler")
    for source in (bobs, bobs / "csv-profiler", link, home / "users"):
        result = run_cli(capsys, monkeypatch, "--user", "ann", "skills", "import", str(source))
        assert result.code == 1 and ("nothing imported" in result.err or "every user's" in result.err), result.err
        assert "Traceback" not in result.err
    assert not (home / "users" / "ann" / "skills" / "csv-profiler").exists()
    shown = run_cli(capsys, monkeypatch, "--user", "ann", "skills", "list")
    assert "csv-profiler" not in shown.out
    # bob may still re-import his own folder
    assert run_cli(capsys, monkeypatch, "--user", "bob", "skills", "import", str(bobs / "csv-profiler"), "--replace").code == 0
