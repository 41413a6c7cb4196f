from pathlib import Path

import pytest

from nanoresearch.config import MODEL_ROLES, init_config_file, load_settings
from nanoresearch.errors import ConfigError


def write_config(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.toml"
    path.write_text(text)
    return path


def test_defaults_give_every_stage_a_model(home):
    settings = load_settings()
    assert settings.home == home
    for stage in MODEL_ROLES:
        assert settings.stage(stage).endpoint == "local"


def test_file_then_env_then_flags(home, monkeypatch):
    write_config(home, '[stages.writing]\nmodel = "from-file"\ntemperature = 0.5\n[stages.review]\nmodel = "file-review"\n')
    assert load_settings().stages.writing.model == "from-file"

    monkeypatch.setenv("NANORESEARCH_STAGES__WRITING__MODEL", "from-env")
    settings = load_settings()
    assert settings.stages.writing.model == "from-env"
    assert settings.stages.writing.temperature == 0.5  # the file still fills what env leaves out

    settings = load_settings({"stages": {"writing": {"model": "from-flag"}}})
    assert settings.stages.writing.model == "from-flag"
    assert settings.stages.review.model == "file-review"


def test_adding_an_endpoint_keeps_the_builtin_ones(home):
    write_config(home, '[endpoints.vllm]\nkind = "openai"\nbase_url = "http://127.0.0.1:8000/v1"\n')
    endpoints = load_settings().endpoints
    assert {"local", "openai", "anthropic", "deepseek", "vllm"} <= set(endpoints)


def test_an_endpoint_may_name_any_provider_kind(home):
    # Plug-ins register kinds the settings cannot know (config sits below llm/): llm checks them.
    write_config(home, '[endpoints.echo]\nkind = "echo-test"\n')
    assert load_settings().endpoint("echo").kind == "echo-test"


def test_an_empty_provider_kind_names_the_field(home):
    write_config(home, '[endpoints.echo]\nkind = ""\n')
    with pytest.raises(ConfigError, match="endpoints.echo.kind") as caught:
        load_settings()
    assert caught.value.exit_code == 2


def test_bad_value_names_field_and_file(home):
    path = write_config(home, '[stages.writing]\ntemperature = "hot"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "stages.writing.temperature" in caught.value.message
    assert str(path) in caught.value.message
    assert caught.value.exit_code == 2


def test_unknown_key_lists_valid_ones(home):
    write_config(home, "[stages.writing]\nmodle = 3\n")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "stages.writing.modle" in caught.value.message
    assert "valid keys here: endpoint, max_tokens, model, temperature" in caught.value.message


def test_bad_env_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("NANORESEARCH_LLM__MAX_ATTEMPTS", "many")
    with pytest.raises(ConfigError, match="NANORESEARCH_LLM__MAX_ATTEMPTS"):
        load_settings()


def test_toml_syntax_error(home):
    path = write_config(home, "[stages.writing\nmodel=1")
    with pytest.raises(ConfigError, match="not valid TOML") as caught:
        load_settings()
    assert str(path) in caught.value.message


def test_init_writes_a_file_that_loads_back(home):
    path = init_config_file(home)
    assert load_settings().stages.planner.model == "smollm2-135m"
    assert "API keys are never stored here" in path.read_text()
    with pytest.raises(ConfigError, match="already exists"):
        init_config_file(home)


@pytest.mark.parametrize("name", ["../bob", "..", ".", "...", "a/b", ".hidden", "-rf", "", "x" * 65])
def test_user_name_is_validated(monkeypatch, name):
    monkeypatch.setenv("NANORESEARCH_USER", name)
    with pytest.raises(ConfigError, match="user"):
        load_settings()


@pytest.mark.parametrize("name", ["ada", "ada.lovelace", "_svc", "a-1", "x" * 64])
def test_plain_user_names_pass(monkeypatch, name):
    monkeypatch.setenv("NANORESEARCH_USER", name)
    assert load_settings().user == name
