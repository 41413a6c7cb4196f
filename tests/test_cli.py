import json
import shutil

import pytest

from helpers import run_cli
from nanoresearch import __version__


def test_version(capsys, monkeypatch):
    result = run_cli(capsys, monkeypatch, "--version")
    assert result.code == 0 and __version__ in result.out


def test_config_init_then_show(capsys, monkeypatch, home):
    assert run_cli(capsys, monkeypatch, "config", "init").code == 0
    assert (home / "config.toml").exists()
    shown = run_cli(capsys, monkeypatch, "config", "show", "--json")
    assert json.loads(shown.out)["stages"]["writing"]["model"] == "smollm2-135m"


def test_config_show_prints_toml_that_loads_back(capsys, monkeypatch, home):
    """Unset settings (None) have no TOML form: they are left out instead of crashing."""
    import tomllib

    for setup in ([], ["config", "init"]):
        if setup:
            assert run_cli(capsys, monkeypatch, *setup).code == 0
        shown = run_cli(capsys, monkeypatch, "config", "show")
        assert shown.code == 0, shown.err
        assert "Traceback" not in shown.err
        parsed = tomllib.loads(shown.out)
        assert parsed["stages"]["writing"]["model"] == "smollm2-135m"
        assert parsed["user"] == json.loads(run_cli(capsys, monkeypatch, "config", "show", "--json").out)["user"]


@pytest.mark.parametrize("name", ["..", ".", "a/b"])
def test_user_flag_refuses_names_that_leave_the_users_folder(capsys, monkeypatch, home, name):
    before = sorted(home.parent.rglob("*"))
    result = run_cli(capsys, monkeypatch, "--user", name, "skills", "list")
    assert result.code == 2 and "user" in result.err and "Traceback" not in result.err
    assert sorted(home.parent.rglob("*")) == before  # refused before anything was written


def test_user_flag_beats_environment(capsys, monkeypatch):
    shown = run_cli(capsys, monkeypatch, "--user", "bob", "config", "show", "--json")
    assert json.loads(shown.out)["user"] == "bob"


def test_bad_config_file_exits_2_without_traceback(capsys, monkeypatch, home):
    home.mkdir(parents=True)
    (home / "config.toml").write_text('[llm]\nmax_attempts = "lots"\n')
    result = run_cli(capsys, monkeypatch, "config", "show")
    assert result.code == 2
    assert "llm.max_attempts" in result.err and str(home / "config.toml") in result.err
    assert "Traceback" not in result.err + result.out


def test_unknown_provider(capsys, monkeypatch):
    result = run_cli(capsys, monkeypatch, "llm", "ask", "hi", "--provider", "nope")
    assert result.code == 2
    assert "unknown endpoint 'nope'" in result.err and "[endpoints.nope]" in result.err


def test_missing_api_key_names_the_variable(capsys, monkeypatch):
    result = run_cli(capsys, monkeypatch, "llm", "ask", "hi", "--provider", "openai")
    assert result.code == 1
    assert "OPENAI_API_KEY is not set" in result.err


def test_bad_schema_files(capsys, monkeypatch, tmp_path):
    missing = run_cli(capsys, monkeypatch, "llm", "ask", "hi", "--schema", str(tmp_path / "none.json"))
    assert missing.code == 1 and "does not exist" in missing.err
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    result = run_cli(capsys, monkeypatch, "llm", "ask", "hi", "--schema", str(broken))
    assert result.code == 1 and "is not JSON" in result.err
    invalid = tmp_path / "invalid.json"
    invalid.write_text('{"type": "banana"}')
    result = run_cli(capsys, monkeypatch, "llm", "ask", "hi", "--schema", str(invalid))
    assert result.code == 1 and "not a valid JSON schema" in result.err


def test_replay_miss_from_the_cli(capsys, monkeypatch):
    result = run_cli(capsys, monkeypatch, "llm", "ask", "never asked", "--provider", "replay:local")
    assert result.code == 1 and "no recording" in result.err


def test_doctor_json_tells_the_truth_about_tools(capsys, monkeypatch):
    result = run_cli(capsys, monkeypatch, "doctor", "--json", "--no-model")
    checks = {c["name"]: c for c in json.loads(result.out)}
    assert checks["store"]["ok"] and checks["python"]["ok"]
    assert checks["LaTeX (papers)"]["ok"] == (shutil.which("pdflatex") is not None)
    assert checks["sandbox (bubblewrap)"]["ok"] == (shutil.which("bwrap") is not None)
    if checks["sandbox (bubblewrap)"]["ok"]:  # what a job sees, not "read-only root"
        assert "homes and the NanoResearch home absent" in checks["sandbox (bubblewrap)"]["detail"]
        assert "read-only root" not in checks["sandbox (bubblewrap)"]["detail"]
    openai = checks["endpoint openai (openai)"]
    assert not openai["ok"] and "OPENAI_API_KEY" in openai["detail"] and openai["hint"]
    assert result.code == 0


@pytest.mark.slow
def test_llm_ask_local_then_replay(capsys, monkeypatch, tmp_path):
    question = "What is the capital of France? Answer in one sentence."
    live = run_cli(capsys, monkeypatch, "llm", "ask", question, "--provider", "local", "--max-tokens", "16")
    assert live.code == 0 and "Paris" in live.out
    replayed = run_cli(capsys, monkeypatch, "llm", "ask", question, "--provider", "replay:local", "--max-tokens", "16")
    assert replayed.code == 0 and replayed.out == live.out
    assert "replayed from the store" in replayed.err
    schema = tmp_path / "city.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"city": {"type": "string", "maxLength": 30}},
                                  "required": ["city"]}))
    structured = run_cli(capsys, monkeypatch, "llm", "ask", question, "--schema", str(schema), "--max-tokens", "20")
    assert structured.code == 0 and isinstance(json.loads(structured.out)["city"], str)
