"""`list`, `status`, `show`, `export` and `resume` on a finished run, through the CLI."""

from __future__ import annotations

import zipfile

import pytest
from researcher import ResearcherProvider

from helpers import run_cli
from nanoresearch.pipeline.orchestrator import STAGES, Unattended, run_stage


@pytest.fixture(autouse=True)
def wide_console(monkeypatch) -> None:
    from nanoresearch.cli.common import out

    monkeypatch.setattr(out, "width", 200)  # tables must not wrap ids for the assertions


@pytest.fixture
def planned_run(make_context):
    """A run that finished its first two stages and then stopped."""
    ctx = make_context(ResearcherProvider())
    for stage in STAGES[:2]:
        run_stage(ctx, stage, Unattended())
    ctx.store.set_run_status(ctx.run.id, "paused")
    return ctx


def test_list_status_show_and_export(planned_run, capsys, monkeypatch, tmp_path) -> None:
    ctx = planned_run
    listed = run_cli(capsys, monkeypatch, "list")
    assert listed.code == 0 and ctx.run.id in listed.out and "research" in listed.out

    status = run_cli(capsys, monkeypatch, "status", ctx.run.id)
    assert status.code == 0
    assert "ideation" in status.out and "pending" in status.out and "spent:" in status.out

    shown = run_cli(capsys, monkeypatch, "show", ctx.run.id)
    assert shown.code == 0 and "hypothesis:" in shown.out and "blueprint.json" in shown.out

    target = tmp_path / "run.zip"
    exported = run_cli(capsys, monkeypatch, "export", ctx.run.id, "-o", str(target))
    assert exported.code == 0
    names = zipfile.ZipFile(target).namelist()
    assert f"{ctx.run.id}/ideas.json" in names and f"{ctx.run.id}/store/llm_calls.json" in names


def test_another_users_run_is_not_found(planned_run, capsys, monkeypatch) -> None:
    result = run_cli(capsys, monkeypatch, "--user", "bob", "status", planned_run.run.id)
    assert result.code != 0 and "no run" in result.err


def test_resume_of_a_trials_session_says_what_to_do(capsys, monkeypatch, store, settings) -> None:
    from nanoresearch.runs import new_run
    from nanoresearch.store.models import RunOptions

    user_id = store.ensure_user(settings.user)
    session = new_run(store, settings, user_id, "digits", "optimise accuracy", RunOptions(task="x"), kind="trials")
    result = run_cli(capsys, monkeypatch, "resume", session.id, "--yes")
    assert result.code != 0 and "trials run" in result.err
