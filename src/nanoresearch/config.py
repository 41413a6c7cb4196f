"""Typed settings: defaults < TOML file under the home folder < environment < CLI flags.

The home folder is `~/.nanoresearch/` unless `NANORESEARCH_HOME` says otherwise; the file is
`config.toml` inside it. Every section rejects unknown keys, so a typo is reported instead of
silently ignored.
"""

from __future__ import annotations

import contextvars
import getpass
import os
import re
import tomllib
from collections.abc import Collection
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from nanoresearch.errors import ConfigError

# The model roles configured under `[stages.<role>]` (which model serves which kind of call); the
# pipeline's own stages are `pipeline.orchestrator.STAGES`.
MODEL_ROLES = ("ideation", "planning", "coding", "analysis", "writing", "review", "planner")
ENV_PREFIX = "NANORESEARCH_"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


# A server on this machine may run the model on a CPU: single calls of a 1.5B model took 13-430 s,
# so a minute would time out healthy calls. A hosted API that is silent for a minute is in trouble.
LOOPBACK_TIMEOUT_S = 600.0
REMOTE_TIMEOUT_S = 60.0


def is_loopback_url(url: str | None) -> bool:
    return (urlparse(url or "").hostname or "") in ("localhost", "127.0.0.1", "::1")


class EndpointSettings(Section):
    """A named LLM endpoint. `kind` picks the provider implementation from the registry."""

    # openai, anthropic, local, or a kind a plug-in registers. Checked against the registry by
    # llm.provider (check_endpoint_kinds, create_provider): config sits below llm/ and cannot ask it.
    kind: str = Field(min_length=1)
    base_url: str | None = None
    # Used when a command picks this endpoint without naming a model.
    default_model: str | None = None
    # The key is read from this environment variable at call time; it is never written to disk.
    api_key_env: str | None = None
    # Seconds to wait for one answer; unset: LOOPBACK_TIMEOUT_S for a server on this machine,
    # REMOTE_TIMEOUT_S for any other. See answer_timeout_s().
    timeout_s: float | None = Field(None, gt=0)
    # How to ask for schema-shaped output. json_schema: OpenAI's response_format; json_object:
    # the {"type": "json_object", "schema": ...} dialect of llama.cpp's server; prompt: only the
    # instruction, then validate + repair. auto tries them in that order and keeps what works.
    structured: Literal["auto", "json_schema", "json_object", "prompt"] = "auto"

    def answer_timeout_s(self) -> float:
        """The configured timeout, or the default for where the server runs."""
        if self.timeout_s is not None:
            return self.timeout_s
        return LOOPBACK_TIMEOUT_S if is_loopback_url(self.base_url) else REMOTE_TIMEOUT_S


class StageModel(Section):
    endpoint: str = "local"
    model: str = "smollm2-135m"
    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int = Field(512, gt=0)


class StageModels(Section):
    ideation: StageModel = StageModel()
    planning: StageModel = StageModel()
    coding: StageModel = StageModel()
    analysis: StageModel = StageModel()
    writing: StageModel = StageModel()
    review: StageModel = StageModel()
    planner: StageModel = StageModel()


class PipelineSettings(Section):
    """Shape of a research run; budgets come from the command line."""

    papers: int = Field(8, ge=1, le=50)  # literature kept per run
    evidence_papers: int = Field(4, ge=1, le=20)  # papers whose abstracts go into evidence extraction
    hypotheses: int = Field(3, ge=1, le=8)
    seeds: int = Field(3, ge=1, le=10)  # default seeds per run-matrix condition, when the task takes a seed
    max_ablations: int = Field(3, ge=0, le=10)
    review_rounds: int = Field(1, ge=0, le=5)  # revise-and-re-review rounds after the first review
    section_max_tokens: int = Field(200, ge=32, le=4000)
    compile_timeout_s: int = Field(180, ge=10)
    # Trial proposers are told the task's declared [search] ranges, which random search draws from;
    # off, they see the description and the code only (how the recorded runs were made).
    show_search_space: bool = True


class PolicySettings(Section):
    """SDPO training of the planner's per-user LoRA adapter (see SDPO.md and policy/)."""

    lora_r: int = Field(16, ge=1, le=256)
    lora_alpha: int = Field(32, ge=1)
    lora_targets: list[str] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    # 5e-4 moves SmolLM2-135M's probe margin measurably in 24 steps (1e-4, the papers' rate for
    # larger models, barely does); the drift check guards against too much.
    lr: float = Field(5e-4, gt=0, le=1)
    steps: int = Field(24, ge=1, le=1000)  # optimizer steps per round
    accumulate: int = Field(1, ge=1, le=64)  # triples per step (batch 1 per forward, gradients accumulated)
    replay: int = Field(4, ge=0, le=64)  # past triples from the replay buffer mixed into each round
    buffer_size: int = Field(64, ge=1, le=4096)
    clip: float = Field(2.0, gt=0)  # advantages are clipped to ±clip
    skip_tokens: int = Field(2, ge=0)  # the first k response tokens carry no loss
    # full_kl: reverse KL to the teacher over the whole vocabulary; sampled: advantage-weighted
    # log-prob of the realised tokens. A fixed (base) teacher with full_kl suits multi-step rounds.
    loss: Literal["sampled", "full_kl"] = "full_kl"
    teacher: Literal["base", "live"] = "base"  # base: adapter disabled; live: the adapter being trained
    anchor_beta: float = Field(0.0, ge=0)  # weight of KL(student || base)
    grad_clip: float = Field(1.0, gt=0)
    # KL(teacher with F || teacher with a contentless reply) on the 8 response tokens F moves most:
    # how far F moves the teacher beyond any comment at all. Below this the feedback is flagged, not
    # trained on. Calibrated on tests/policy/data/relevance_labelled.json (bench/bench_sdpo_relevance.py).
    min_relevance: float = Field(0.04, ge=0)
    drift_kl_max: float = Field(0.5, gt=0)  # nats/token to the base on held-out planner prompts
    drift_ppl_ratio_max: float = Field(1.5, gt=1)  # perplexity on generic text, relative to the base
    when: Literal["background", "end_of_run", "manual"] = "end_of_run"
    seed: int = 0


class CoevolutionSettings(Section):
    """Which co-evolution levels a run uses (`run --no-skills/--no-memory/--no-policy` turn one off for
    a run, and the run records what was on in its options). skills: recall and distillation; memory:
    recall and writing; policy: the user's planner adapter and its SDPO training."""

    skills: bool = True
    memory: bool = True
    policy: bool = True

    def levels_on(self) -> list[str]:
        return [name for name in type(self).model_fields if getattr(self, name)]

    @classmethod
    def of(cls, levels_on: Collection[str]) -> CoevolutionSettings:
        return cls(**{name: name in levels_on for name in cls.model_fields})


class Price(Section):
    """US dollars per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


class LLMSettings(Section):
    max_attempts: int = Field(4, ge=1, le=20)
    backoff_initial_s: float = Field(1.0, ge=0)
    backoff_max_s: float = Field(30.0, ge=0)
    max_repairs: int = Field(2, ge=0, le=10)
    # off: always call live; prefer: reuse a recorded answer when one exists (resume never pays
    # twice); only: never call live, a missing recording is an error (offline replay).
    replay: Literal["off", "prefer", "only"] = "prefer"
    # The sampling seed of every call that names none; None: the provider's own. With a stage
    # temperature above 0, runs of one goal differ by seed and each one is reproducible.
    seed: int | None = None


class LocalModelSettings(Section):
    threads: int = Field(0, ge=0, description="0 = all cores")
    # Which library runs the forward pass. transformers reads the de-quantized fp32 weights;
    # llama_cpp reads the GGUF as it is (about 3x faster decoding on CPU) and needs
    # llama-cpp-python. auto: llama_cpp for GGUF models when it is installed.
    engine: Literal["auto", "transformers", "llama_cpp"] = "auto"
    # Small models loop under greedy decoding; llama.cpp uses the same default.
    repetition_penalty: float = Field(1.1, ge=1.0, le=2.0)
    repetition_window: int = Field(64, ge=0)


class SlurmSettings(Section):
    partition: str = "debug"
    # Site-specific sbatch flags such as --account or --qos, passed through unchanged.
    extra_args: list[str] = []


def default_endpoints() -> dict[str, EndpointSettings]:
    return {
        "local": EndpointSettings(kind="local", default_model="smollm2-135m"),
        "openai": EndpointSettings(
            kind="openai", base_url="https://api.openai.com/v1", api_key_env="OPENAI_API_KEY",
            default_model="gpt-4o-mini",
        ),
        "deepseek": EndpointSettings(
            kind="openai", base_url="https://api.deepseek.com/v1", api_key_env="DEEPSEEK_API_KEY",
            default_model="deepseek-chat",
        ),
        "anthropic": EndpointSettings(
            kind="anthropic", base_url="https://api.anthropic.com", api_key_env="ANTHROPIC_API_KEY",
            default_model="claude-3-5-haiku-latest",
        ),
    }


def default_prices() -> dict[str, Price]:
    # Public list prices at the time of writing; override in config.toml under [prices].
    return {
        "gpt-4o-mini": Price(input=0.15, output=0.60),
        "gpt-4o": Price(input=2.50, output=10.0),
        "deepseek-chat": Price(input=0.27, output=1.10),
        "claude-3-5-haiku-latest": Price(input=0.80, output=4.0),
        "claude-sonnet-4-5": Price(input=3.0, output=15.0),
    }


def default_home() -> Path:
    return Path(os.environ.get(f"{ENV_PREFIX}HOME") or Path.home() / ".nanoresearch")


USER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")


def default_user() -> str:
    """The login name, or "default" where there is none (containers) or it is no valid user name."""
    try:
        name = getpass.getuser()
    except Exception:
        return "default"
    return name if USER_NAME.fullmatch(name) else "default"


_toml_data: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("toml", default=None)


class _TomlSource(PydanticBaseSettingsSource):
    """Feeds the already-parsed config file into pydantic-settings at the lowest priority."""

    def get_field_value(self, field, field_name):  # required by the base class, unused
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return _toml_data.get() or {}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    home: Path = Field(default_factory=default_home)
    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "nanoresearch")
    user: str = Field(default_factory=default_user)
    endpoints: dict[str, EndpointSettings] = Field(default_factory=default_endpoints)
    stages: StageModels = StageModels()
    llm: LLMSettings = LLMSettings()
    local: LocalModelSettings = LocalModelSettings()
    slurm: SlurmSettings = SlurmSettings()
    pipeline: PipelineSettings = PipelineSettings()
    policy: PolicySettings = PolicySettings()
    coevolution: CoevolutionSettings = CoevolutionSettings()
    prices: dict[str, Price] = Field(default_factory=default_prices)

    @field_validator("user")
    @classmethod
    def _user_is_a_plain_name(cls, value: str) -> str:
        # The name becomes a folder under users/: "..", "." or "/x" would write outside it.
        if not USER_NAME.fullmatch(value):
            raise ValueError(
                "user names use letters, digits, '.', '_' or '-', start with a letter, digit or '_' (at most 64)"
            )
        return value

    @field_validator("endpoints", mode="before")
    @classmethod
    def _keep_default_endpoints(cls, value: Any) -> Any:
        # A config file that adds one endpoint should not lose the built-in ones.
        if isinstance(value, dict):
            merged: dict[str, Any] = {k: v.model_dump() for k, v in default_endpoints().items()}
            for name, endpoint in value.items():
                base = merged.get(name, {})
                extra = endpoint.model_dump() if isinstance(endpoint, BaseModel) else endpoint
                merged[name] = {**base, **extra} if isinstance(extra, dict) else extra
            return merged
        return value

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        return (init_settings, env_settings, _TomlSource(settings_cls))

    @property
    def config_file(self) -> Path:
        return self.home / "config.toml"

    @property
    def db_path(self) -> Path:
        return self.home / "nanoresearch.db"

    def for_run(self, levels_on: Collection[str]) -> Settings:
        """These settings with the co-evolution levels a run records (its options) as the ones on."""
        return self.model_copy(update={"coevolution": CoevolutionSettings.of(levels_on)})

    def stage(self, name: str) -> StageModel:
        if name not in MODEL_ROLES:
            raise ConfigError(f"unknown stage {name!r}", hint=f"stages are: {', '.join(MODEL_ROLES)}")
        return getattr(self.stages, name)

    def endpoint(self, name: str) -> EndpointSettings:
        try:
            return self.endpoints[name]
        except KeyError:
            raise ConfigError(
                f"unknown endpoint {name!r}",
                hint=f"configured endpoints: {', '.join(sorted(self.endpoints))}; "
                f"add one under [endpoints.{name}] in {self.config_file}",
            ) from None


def config_file_for(home: Path | None) -> Path:
    return (home or default_home()) / "config.toml"


def read_toml(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}", hint="fix the syntax or run `nanoresearch config init --force`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from None


def load_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """Build the settings; CLI flags arrive as `overrides` (highest priority)."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    home = Path(overrides["home"]) if "home" in overrides else default_home()
    path = config_file_for(home)
    data = read_toml(path)
    token = _toml_data.set(data)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe_validation_error(exc, data, path)) from None
    finally:
        _toml_data.reset(token)


def _describe_validation_error(exc: ValidationError, file_data: dict[str, Any], path: Path) -> str:
    lines = []
    for err in exc.errors():
        loc = [str(part) for part in err["loc"]]
        field = ".".join(loc) or "(top level)"
        origin = _where_set(loc, file_data, path)
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = f"unknown setting{_valid_keys_hint(loc)}"
        lines.append(f"invalid setting `{field}` ({origin}): {message}")
    return "\n".join(lines)


def _where_set(loc: list[str], file_data: dict[str, Any], path: Path) -> str:
    node: Any = file_data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            env_name = ENV_PREFIX + "__".join(loc).upper()
            return f"environment variable {env_name}" if env_name in os.environ else "command line or default"
    return f"in {path}"


def _valid_keys_hint(loc: list[str]) -> str:
    model: Any = Settings
    for part in loc[:-1]:
        fields = getattr(model, "model_fields", {})
        if part in fields:
            model = fields[part].annotation
        elif model is not Settings and hasattr(model, "model_fields"):
            return ""
    names = sorted(getattr(model, "model_fields", {}))
    return f"; valid keys here: {', '.join(names)}" if names else ""


def init_config_file(home: Path | None = None, force: bool = False) -> Path:
    """Write a commented starting config that reproduces the defaults."""
    path = config_file_for(home)
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists", hint="pass --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "user": default_user(),
        "stages": StageModels().model_dump(),
        "llm": LLMSettings().model_dump(),
        "endpoints": {k: v.model_dump(exclude_none=True) for k, v in default_endpoints().items()},
        "prices": {k: v.model_dump() for k, v in default_prices().items()},
    }
    header = (
        "# NanoResearch configuration. Precedence: this file < NANORESEARCH_* environment\n"
        "# variables (nested with __, e.g. NANORESEARCH_STAGES__WRITING__MODEL) < CLI flags.\n"
        "# API keys are never stored here: each endpoint names the variable that holds its key.\n\n"
    )
    path.write_text(header + tomli_w.dumps(_without_none(body)), encoding="utf-8")
    return path


def settings_as_toml(settings: Settings) -> str:
    """The settings as a config file; unset (None) values are left out, since TOML has no null."""
    return tomli_w.dumps(_without_none(settings.model_dump(mode="json")))


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value if v is not None]
    return value
